"""A user's own dendrite kind, as a third party would ship it: a copy of the layer whose output
goes through ``sin`` (a periodic non-linearity the built-in kinds do not have). Registered under
the entry-point group ``dendrobench.dendrites`` as ``sine``; used with
``dendrites=gd dendrites.dendrite=sine dendrites.dendrite_params.frequency=2.0``."""

from __future__ import annotations

import copy

import torch
from torch import nn


class _Sine(nn.Module):
    def __init__(self, inner: nn.Module, frequency: float):
        super().__init__()
        self.inner = inner
        self.frequency = float(frequency)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.frequency * self.inner(x))


class SineDendrite:
    @staticmethod
    def build(layer: nn.Module, frequency: float = 1.0) -> nn.Module:
        inner = copy.deepcopy(layer)
        inner.reset_parameters()
        return _Sine(inner, frequency)
