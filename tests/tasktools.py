"""Helpers shared by the task tests (a plain module, importable from any test file)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch

# The real datasets live beside the project (`../shared/data`), never in it; DENDROBENCH_SHARED_DATA
# points elsewhere. Tests that read them are `slow` and skip where they are absent (a user's clone).
SHARED_DATA = Path(os.environ.get("DENDROBENCH_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def shared_data(relative: str) -> Path:
    """A file or folder of the shared real data; skips the calling test when it is not there."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"{relative} is not in {SHARED_DATA}")
    return path


def unzipped(archive: Path, into: Path) -> Path:
    """``archive`` extracted once into ``into`` (a session's temporary folder): the shared CIFAR-10
    copy is a zip, and the task reads an image folder."""
    done = into / ".complete"
    if not done.exists():
        with zipfile.ZipFile(archive) as z:
            z.extractall(into)
        done.touch()
    return into


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
