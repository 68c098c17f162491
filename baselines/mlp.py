"""A plain multilayer perceptron for tabular data (the ``credit-default`` task's base model).

Linear -> ReLU -> Dropout per hidden layer, then a linear head. Every dense layer is a plain
``torch.nn.Linear`` so the dendrite engines can convert all of them; ``width`` scales each hidden
size (``int(round(h * width))``, at least 1) for the capacity-matched ``wide`` and the
``compressed`` arms. No BatchNorm on purpose: with small tabular training sets (600 rows for German
credit) the last partial batch can be tiny, and batch statistics then add noise that differs
between arms whose batches are otherwise identical.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class MLPConfig:
    """Hidden sizes and dropout of an :class:`MLP`."""

    hidden: tuple[int, ...] = (64, 32)
    dropout: float = 0.1

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def scaled(size: int, width: float) -> int:
    """A hidden size for a width multiplier: ``int(round(size * width))``, at least 1."""
    if not width > 0:
        raise ValueError(f"width must be positive, got {width!r}")
    return max(1, int(round(size * width)))


class MLP(nn.Module):
    """``in_features`` -> hidden layers -> ``out_features`` (logits)."""

    def __init__(self, in_features: int, out_features: int, config: MLPConfig = MLPConfig(), width: float = 1.0):
        super().__init__()
        layers: list[nn.Module] = []
        size = in_features
        for h in config.hidden:
            h = scaled(h, width)
            layers += [nn.Linear(size, h), nn.ReLU()]
            if config.dropout > 0:
                layers.append(nn.Dropout(config.dropout))
            size = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(size, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def build_mlp(in_features: int, out_features: int, config: MLPConfig = MLPConfig(), width: float = 1.0) -> MLP:
    return MLP(in_features, out_features, config, width)
