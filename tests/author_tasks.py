"""Task plugins as a new author writes them, each with one of the mistakes of issue 23.

Named by import path (``author_tasks:CsvTask``). The tests find the lines they expect by searching
this file for the ``# <- LINE`` markers, so editing it does not break them.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from dendrobench.api import Budget, Task, TaskData
from dendrobench.errors import DataUnavailableError

SPLITS = ("train", "val", "test")


def write_csv_splits(root, duplicate: bool = False, rows: int = 60) -> None:
    """Three CSV files of (x0, x1, label) rows; with ``duplicate`` the first test row repeats train[7]."""
    rng = np.random.default_rng(0)
    tables = {}
    for split in SPLITS:
        x = rng.normal(size=(rows, 2))
        tables[split] = np.column_stack([x, (x[:, 0] + x[:, 1] > 0).astype(int)])
    if duplicate:
        tables["test"][0] = tables["train"][7]
    for split, table in tables.items():
        np.savetxt(root / f"{split}.csv", table, delimiter=",", fmt="%.6f")


def _tensors(table: np.ndarray) -> TensorDataset:
    return TensorDataset(torch.tensor(table[:, :2], dtype=torch.float32), torch.tensor(table[:, 2], dtype=torch.float32))


class CsvTask(Task):
    """Offline: generated rows; online: three CSV files under ``root``."""

    name = "csv-task"
    modality = "tabular"
    description = "two features, a binary label"
    metric = "roc_auc"
    budgets = {b: Budget(epochs=1, batch_size=16, lr=1e-2, steps_per_epoch=3) for b in ("smoke", "quick", "standard", "full")}

    def load_data(self, source, seed, root=None):
        if source == "online":
            if root is None:
                raise DataUnavailableError("csv-task: give the folder of train/val/test.csv as data.root")
            tables = {s: np.loadtxt(f"{root}/{s}.csv", delimiter=",") for s in SPLITS}
            return TaskData(*(_tensors(tables[s]) for s in SPLITS), dataset="csv-files", source="online")
        rng = np.random.default_rng(1)
        tables = []
        for _ in SPLITS:
            x = rng.normal(size=(40, 2))
            tables.append(np.column_stack([x, (x.sum(1) > 0).astype(float)]))
        return TaskData(*(_tensors(t) for t in tables), dataset="csv-generated", source="offline")

    def build_model(self, data, width=1.0):
        h = max(1, round(8 * width))
        return nn.Sequential(nn.Linear(2, h), nn.Tanh(), nn.Linear(h, 1), nn.Flatten(0))

    def loss(self, output, batch):
        return nn.functional.binary_cross_entropy_with_logits(output, batch[1])


class ReturnsTuple(CsvTask):
    def load_data(self, source, seed, root=None):  # <- LOAD_DATA_DEF
        data = super().load_data(source, seed, root)
        return data.train, data.val, data.test


class RaisesInTorch(CsvTask):
    def load_data(self, source, seed, root=None):
        data = super().load_data(source, seed, root)
        nn.Linear(3, 4)(torch.zeros(2, 5))  # <- TORCH_CALL (raises inside torch's Python code: linear.py)
        return data


class TwoLogits(CsvTask):
    def build_model(self, data, width=1.0):
        h = max(1, round(8 * width))
        return nn.Sequential(nn.Linear(2, h), nn.Tanh(), nn.Linear(h, 2))

    def loss(self, output, batch):
        return nn.functional.cross_entropy(output, batch[1].long())


class ColumnOutput(CsvTask):
    def build_model(self, data, width=1.0):
        h = max(1, round(8 * width))
        return nn.Sequential(nn.Linear(2, h), nn.Tanh(), nn.Linear(h, 1))  # (n, 1), targets are (n,)

    def loss(self, output, batch):
        return nn.functional.binary_cross_entropy_with_logits(output, batch[1])  # <- LOSS_LINE
