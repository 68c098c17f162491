"""A tiny synthetic task for testing the harness without real data: two interleaved spirals that a
narrow MLP underfits. Named by import path (``toy_task:SpiralTask``) exactly as a user's task
could be."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.utils.data import TensorDataset

from dendrobench.contract.task import Budget, Task, TaskData
from dendrobench.errors import ConfigError


def spirals(n: int, seed: int, noise: float = 0.15) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(n, generator=g) * 3 * math.pi
    label = torch.randint(0, 2, (n,), generator=g)
    r = t / (3 * math.pi)
    angle = t + label * math.pi
    x = torch.stack([r * torch.cos(angle), r * torch.sin(angle)], 1) + noise * 0.1 * torch.randn(n, 2, generator=g)
    return TensorDataset(x, label)


class SpiralTask(Task):
    name = "spirals"
    modality = "tabular"
    description = "two interleaved spirals (synthetic, for tests)"
    metric = "accuracy"
    datasets = {"offline": "generated spirals", "online": "generated spirals"}
    single_source = True
    budgets = {
        "smoke": Budget(epochs=3, batch_size=64, lr=0.02, steps_per_epoch=5),
        "quick": Budget(epochs=12, batch_size=64, lr=0.02, steps_per_epoch=20),
        "standard": Budget(epochs=30, batch_size=64, lr=0.01, steps_per_epoch=40),
        "full": Budget(epochs=60, batch_size=64, lr=0.01, steps_per_epoch=40),
    }
    hidden = 4

    def load_data(self, source, seed, root=None):
        return TaskData(train=spirals(800, 1), val=spirals(400, 2), test=spirals(400, 3),
                        dataset="spirals", source=source, meta={"in": 2, "classes": 2})

    def build_model(self, data, width=1.0):
        h = max(1, int(round(self.hidden * width)))
        return nn.Sequential(nn.Linear(2, h), nn.Tanh(), nn.Linear(h, 2))

    def loss(self, output, batch):
        return nn.functional.cross_entropy(output, batch[1])


class DownloadFirstSpirals(SpiralTask):
    """Its online data must be fetched by hand: what a task says on a machine with no network."""

    def load_data(self, source, seed, root=None):
        if source == "online":
            from dendrobench.errors import DataUnavailableError

            raise DataUnavailableError("spirals.csv is not in /nowhere; download it from https://example.invalid "
                                       "and put it there")
        return super().load_data(source, seed, root)


@dataclass(frozen=True)
class SpiralOptions:
    """Options as a real task declares them (see dendrobench/contract/options.py)."""

    hidden: int | None = None  # None: the class default (4)
    activation: Literal["tanh", "relu"] = "tanh"
    fractions: tuple[float, ...] = (0.5, 0.25, 0.25)
    split_seed: int | Literal["seed"] = 0

    def validate(self) -> None:
        if self.hidden is not None and self.hidden < 1:
            raise ConfigError(f"task_options.hidden must be >= 1, got {self.hidden}")
        if len(self.fractions) != 3 or abs(sum(self.fractions) - 1) > 1e-6:
            raise ConfigError(f"task_options.fractions must be three numbers summing to 1, got {list(self.fractions)}")


class OptionSpirals(SpiralTask):
    """The spirals with task options: hidden size and activation change the model."""

    Options = SpiralOptions

    def build_model(self, data, width=1.0):
        opts = self.current_options()
        h = max(1, int(round((opts.hidden or self.hidden) * width)))
        act = nn.Tanh() if opts.activation == "tanh" else nn.ReLU()
        return nn.Sequential(nn.Linear(2, h), act, nn.Linear(h, 2))
