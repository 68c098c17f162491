"""Helpers shared by the task tests (a plain module, importable from any test file)."""

from __future__ import annotations

from typing import Any

import torch


def fit_batch(task: Any, model: torch.nn.Module, batch: Any, steps: int, lr: float) -> list[float]:
    """Train ``model`` on one batch with Adam for ``steps`` steps through the task's own inputs and
    loss; returns the loss seen before each step (a task that cannot fit one batch is broken)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        loss = task.loss(model(*task.inputs(batch)), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses
