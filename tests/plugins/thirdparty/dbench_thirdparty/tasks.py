"""Tasks of the test-only third-party plugin.

``tp-moons`` keeps the contract (scikit-learn's two moons, an MLP with a width multiplier);
``tp-broken-init`` raises while being created and ``tp-broken-data`` while loading its data, so the
tests can show that a broken plugin is named and never stops the other jobs of a multirun.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from dendrobench.contract.task import Budget, Task, TaskData


class MoonsTask(Task):
    name = "tp-moons"
    modality = "tabular"
    description = "two interleaving half-moons (scikit-learn make_moons), test-only plugin"
    metric = "accuracy"
    datasets = {"offline": "make_moons, 900 points (generated)"}
    budgets = {
        "smoke": Budget(epochs=2, batch_size=64, lr=0.02, steps_per_epoch=4),
        "quick": Budget(epochs=10, batch_size=64, lr=0.01),
        "standard": Budget(epochs=30, batch_size=64, lr=0.01),
        "full": Budget(epochs=60, batch_size=64, lr=0.01),
    }

    def load_data(self, source: str, seed: int, root: Path | None = None) -> TaskData:
        from sklearn.datasets import make_moons

        x, y = make_moons(n_samples=900, noise=0.2, random_state=0)
        x, y = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.int64)
        order = np.random.default_rng(0).permutation(len(y))
        parts = np.split(order, [600, 750])
        sets = [TensorDataset(x[idx], y[idx]) for idx in parts]
        return TaskData(train=sets[0], val=sets[1], test=sets[2], dataset="moons", source="offline")

    def build_model(self, data: TaskData, width: float = 1.0) -> nn.Module:
        h = max(1, round(8 * width))
        return nn.Sequential(nn.Linear(2, h), nn.Tanh(), nn.Linear(h, 2))

    def loss(self, output: torch.Tensor, batch) -> torch.Tensor:
        return F.cross_entropy(output, batch[1])


class BrokenInitTask(MoonsTask):
    name = "tp-broken-init"

    def __init__(self) -> None:
        raise RuntimeError("tp-broken-init cannot start: missing licence file")


class BrokenDataTask(MoonsTask):
    name = "tp-broken-data"

    def load_data(self, source: str, seed: int, root: Path | None = None) -> TaskData:
        raise FileNotFoundError("tp-broken-data: /nonexistent/data.csv not found")
