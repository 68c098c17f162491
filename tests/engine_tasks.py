"""Small tasks for the engine validity tests.

``XorTask``: points in the four quadrants labelled by the sign of ``x0 * x1``. The base model is a
single ``nn.Linear``: a linear classifier provably cannot beat about 50 % error on XOR, whatever it
is trained with, so any real error reduction has to come from the dendrites' non-linearity -- the
"known positive" of the issue. Budgets are tiny so several seeds of every engine run in seconds.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import TensorDataset
from toy_task import SpiralTask

from dendrobench.contract.task import Budget, TaskData


def xor_points(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 2, generator=g) * 2 - 1
    y = ((x[:, 0] * x[:, 1]) > 0).long()
    return TensorDataset(x, y)


class XorTask(SpiralTask):
    name = "xor"
    description = "XOR quadrants for a linear classifier (synthetic, for tests)"
    budgets = {
        "smoke": Budget(epochs=8, batch_size=64, lr=0.05, steps_per_epoch=15),
        "quick": Budget(epochs=8, batch_size=64, lr=0.05, steps_per_epoch=15),
        "standard": Budget(epochs=16, batch_size=64, lr=0.05, steps_per_epoch=20),
        "full": Budget(epochs=16, batch_size=64, lr=0.05, steps_per_epoch=20),
    }

    def load_data(self, source, seed, root=None):
        return TaskData(train=xor_points(1000, 11), val=xor_points(400, 12), test=xor_points(400, 13),
                        dataset="xor", source=source, meta={})

    def build_model(self, data, width=1.0):
        return nn.Sequential(nn.Linear(2, 2))
