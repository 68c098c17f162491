"""Tasks for the sweep tests (named by import path, like a user's plugin)."""

from __future__ import annotations

import torch
from toy_task import SpiralTask


class DivergesOnSeed1(SpiralTask):
    """Trains normally for seed 0; seed 1's loss is NaN, so its runs are recorded ``diverged``."""

    def load_data(self, source, seed, root=None):
        self._seed = seed
        return super().load_data(source, seed, root)

    def loss(self, output, batch):
        loss = super().loss(output, batch)
        return loss * torch.nan if getattr(self, "_seed", 0) == 1 else loss
