"""ResNet-style CNNs for small images (the ``cifar10`` task's base model).

Built from torchvision's own building blocks (:class:`torchvision.models.resnet.BasicBlock`,
``conv1x1``) so the residual block is exactly torchvision's. The stem is the CIFAR adaptation used
by nearly every CIFAR-10 ResNet-18 result (Kuang Liu's ``pytorch-cifar`` and the like): one 3x3
stride-1 convolution and no max-pool, because ImageNet's 7x7 stride-2 stem plus max-pool would shrink
a 32x32 image to 8x8 before the first block.

Why it is written out instead of calling ``torchvision.models.resnet18``: torchvision's ``ResNet``
hard-codes the stage widths (64, 128, 256, 512) and ``BasicBlock`` refuses ``base_width != 64``, so
it has no width multiplier. :func:`build_resnet` lays out stages the same way (first stage stride 1,
then stride 2, a 1x1-conv + BatchNorm shortcut where the shape changes) and scales every channel
count by ``width``; with :data:`RESNET18_CIFAR` at ``width=1`` it has exactly the parameters of
torchvision's ``resnet18`` with the CIFAR stem (11,173,962 for 10 classes; checked in the tests).

Every convolution and the classifier are plain ``torch.nn.Conv2d`` / ``torch.nn.Linear``, which the
dendrite engines convert. ``forward(x)`` takes one image tensor ``(N, C, H, W)``.

``channels_last=True`` keeps the convolution weights and activations in NHWC memory order
(``torch.channels_last``; the values and shapes are the same). On CPU, oneDNN's convolutions run
about 1.6x faster that way for these small ResNets (a training step of 64 CIFAR images, one
thread: 138-174 -> 85-100 ms; docs/scaling.md), and on CUDA it is the layout tensor cores want.
It changes the rounding of the sums, not the model, so a task that turns it on bumps its version.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, conv1x1


@dataclass(frozen=True)
class ResNetConfig:
    """Layout of a ResNet of basic blocks: stem channels, then one stage per ``widths`` entry."""

    stem: int = 16
    widths: tuple[int, ...] = (16, 32, 64)
    blocks: tuple[int, ...] = (1, 1, 1)

    def __post_init__(self) -> None:
        if len(self.widths) != len(self.blocks) or not self.widths:
            raise ValueError(f"widths {self.widths} and blocks {self.blocks} must be non-empty and equally long")

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


# A ResNet-8-like net (one basic block per stage, 16/32/64 channels, ~78k parameters): seconds of CPU
# per epoch on 8x8 digits, the quick and smoke budgets' model.
SMALL_RESNET = ResNetConfig(stem=16, widths=(16, 32, 64), blocks=(1, 1, 1))
# He et al. 2016's CIFAR ResNet-20 layout (3 blocks per stage, 16/32/64 channels, ~0.27M parameters).
RESNET20_CIFAR = ResNetConfig(stem=16, widths=(16, 32, 64), blocks=(3, 3, 3))
# torchvision's resnet18 layout (2 blocks per stage, 64/128/256/512 channels) with the CIFAR stem.
RESNET18_CIFAR = ResNetConfig(stem=64, widths=(64, 128, 256, 512), blocks=(2, 2, 2, 2))


def scaled(channels: int, width: float) -> int:
    """Channels for a width multiplier: ``int(round(channels * width))``, at least 1."""
    if not width > 0:
        raise ValueError(f"width must be positive, got {width!r}")
    return max(1, int(round(channels * width)))


class ResNet(nn.Module):
    """CIFAR-stem ResNet of torchvision ``BasicBlock`` stages, global average pool, linear head."""

    def __init__(self, config: ResNetConfig, in_channels: int, num_classes: int, width: float = 1.0,
                 channels_last: bool = False):
        super().__init__()
        self.config = config
        self.channels_last = channels_last
        stem = scaled(config.stem, width)
        self.conv1 = nn.Conv2d(in_channels, stem, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        stages = []
        inplanes = stem
        for i, (channels, n_blocks) in enumerate(zip(config.widths, config.blocks)):
            planes = scaled(channels, width)
            stride = 1 if i == 0 else 2
            stages.append(self._stage(inplanes, planes, n_blocks, stride))
            inplanes = planes
        self.layers = nn.Sequential(*stages)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)
        # torchvision's ResNet initialisation: Kaiming-normal convolutions, BatchNorm weight 1 / bias 0.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if channels_last:  # after initialisation: the same random draws, only the memory order moves
            self.to(memory_format=torch.channels_last)

    @staticmethod
    def _stage(inplanes: int, planes: int, n_blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or inplanes != planes:
            downsample = nn.Sequential(conv1x1(inplanes, planes, stride), nn.BatchNorm2d(planes))
        blocks = [BasicBlock(inplanes, planes, stride, downsample)]
        blocks += [BasicBlock(planes, planes) for _ in range(1, n_blocks)]
        return nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layers(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build_resnet(config: ResNetConfig, in_channels: int, num_classes: int, width: float = 1.0,
                 channels_last: bool = False) -> ResNet:
    """A :class:`ResNet` whose every channel count is scaled by ``width`` (``channels_last``: NHWC
    memory order, see the module docstring)."""
    return ResNet(config, in_channels, num_classes, width, channels_last)


def torchvision_resnet18_cifar(num_classes: int = 10) -> nn.Module:
    """torchvision's own ``resnet18`` with the CIFAR stem (3x3 stride-1 conv, no max-pool).

    The reference that :data:`RESNET18_CIFAR` reproduces; kept for checks and for users who want
    torchvision's module names.
    """
    from torchvision.models import resnet18

    model = resnet18(num_classes=num_classes)
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model
