"""Dendrite modules and the wrapper that adds them to a layer.

A dendrite maps the layer's *input* to one value per output channel; its activated output enters
the layer's output through a per-channel weight that starts at zero, so adding a dendrite never
changes what the model computes at that moment. Users add their own dendrite kinds through the
entry-point group ``dendrobench.dendrites``: a class with ``build(layer, **params) -> nn.Module``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

ACTIVATIONS = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU, "gelu": nn.GELU, "identity": nn.Identity}


def out_channels(layer: nn.Module) -> int:
    return layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels


def channel_view(layer: nn.Module) -> list[int]:
    """How a per-channel vector is shaped to broadcast against the layer's output."""
    if isinstance(layer, nn.Linear):
        return [-1]
    spatial = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}[type(layer)]
    return [1, -1] + [1] * spatial


class StandardDendrite:
    """A fresh copy of the layer itself (same shape, newly initialised): PAI's default dendrite."""

    @staticmethod
    def build(layer: nn.Module, **params) -> nn.Module:
        if params:
            raise TypeError(f"the standard dendrite takes no parameters, got {sorted(params)}")
        dendrite = copy.deepcopy(layer)
        dendrite.reset_parameters()
        return dendrite


class Branch(nn.Module):
    """One dendrite: ``act(dendrite(x)) * scale`` with ``scale`` per output channel, zero at birth."""

    def __init__(self, dendrite: nn.Module, layer: nn.Module, activation: str):
        super().__init__()
        self.dendrite = dendrite
        self.act = ACTIVATIONS[activation]()
        self.scale = nn.Parameter(torch.zeros(out_channels(layer), device=next(layer.parameters()).device))
        self.view: list[int] = channel_view(layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.dendrite(x)) * self.scale.view(self.view)


class DendriticLayer(nn.Module):
    """A converted layer: its own output plus the sum of its dendrite branches."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer
        self.branches = nn.ModuleList()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layer(x)
        for branch in self.branches:
            # one fused multiply-add instead of a product and a sum: a dendrite's cost should be
            # its FLOPs, not extra passes over the layer's output (exact when the scale is zero)
            out = torch.addcmul(out, branch.act(branch.dendrite(x)), branch.scale.view(branch.view))
        return out

    def add_branch(self, branch: Branch) -> None:
        self.branches.append(branch.to(next(self.layer.parameters()).device))

    @property
    def n_dendrites(self) -> int:
        return len(self.branches)


def convert_layers(model: nn.Module, names: list[str]) -> None:
    """Replace each named layer by a :class:`DendriticLayer` around it (no dendrite yet, so the
    model computes exactly what it did)."""
    from dendrobench.dendrites.convert import replace_module

    for name in names:
        replace_module(model, name, DendriticLayer(model.get_submodule(name)))


def count_dendrites(model: nn.Module) -> int:
    return sum(m.n_dendrites for m in model.modules() if isinstance(m, DendriticLayer))
