"""MONAI's 3D ``UNet`` as the no-dendrite reference model of the ``brain-tumour`` task.

The layers are plain ``torch.nn.Conv3d`` / ``ConvTranspose3d`` inside MONAI's ``Convolution`` and
``ResidualUnit`` blocks, so the ``gd`` engine can convert the Conv3d layers. ``width`` scales every
level's channel count (``int(round(c * width))``, at least 1), keeping depth and strides, so the wide
and compressed arms differ from the baseline only in capacity.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class UNet3DConfig:
    """One MONAI UNet layout: channels per level (encoder), strides between levels, residual units."""

    channels: tuple[int, ...]
    strides: tuple[int, ...]
    num_res_units: int = 1
    norm: str = "instance"
    dropout: float = 0.0

    @property
    def divisor(self) -> int:
        """Spatial sizes must be multiples of this (the product of the strides)."""
        d = 1
        for s in self.strides:
            d *= int(s)
        return d


# CPU-sized, three downsamplings: TINY 4 -> 32 channels (38 k parameters for 1 -> 3 channels),
# SMALL 8 -> 64 channels (151 k).
TINY_UNET = UNet3DConfig(channels=(4, 8, 16, 32), strides=(2, 2, 2), num_res_units=1)
SMALL_UNET = UNet3DConfig(channels=(8, 16, 32, 64), strides=(2, 2, 2), num_res_units=1)
# Three downsamplings, 16 -> 128 channels, two residual units (1.2 M).
MEDIUM_UNET = UNet3DConfig(channels=(16, 32, 64, 128), strides=(2, 2, 2), num_res_units=2)
# The MONAI tutorials' 3D UNet (spleen / BraTS-style): 16 -> 256 channels, two residual units each (4.8 M).
MONAI_TUTORIAL_UNET = UNet3DConfig(channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2), num_res_units=2)


def scaled(channels: tuple[int, ...], width: float) -> tuple[int, ...]:
    """Channel counts times ``width``, rounded, at least 1 each."""
    return tuple(max(1, int(round(c * width))) for c in channels)


def build_unet3d(config: UNet3DConfig, in_channels: int, out_channels: int, width: float = 1.0,
                 channels_last: bool = False) -> nn.Module:
    """A ``monai.networks.nets.UNet`` (3D) with ``config``'s layout scaled by ``width``.

    ``channels_last``: the convolution weights in NDHWC memory order (``torch.channels_last_3d``),
    after the same initialisation; fed NDHWC inputs, oneDNN's 3D convolutions run about 1.9x
    faster on CPU for these small UNets (a training step of 4 patches of 32 x 24 x 32, one thread:
    66-73 -> 35-36 ms; docs/scaling.md). The sums round differently, so a task that turns it on bumps
    its version."""
    from monai.networks.nets import UNet

    if width <= 0:
        raise ValueError(f"width must be positive, got {width!r}")
    net = UNet(
        spatial_dims=3,
        in_channels=int(in_channels),
        out_channels=int(out_channels),
        channels=scaled(config.channels, width),
        strides=config.strides,
        num_res_units=config.num_res_units,
        norm=config.norm,
        dropout=config.dropout,
    )
    return net.to(memory_format=torch.channels_last_3d) if channels_last else net
