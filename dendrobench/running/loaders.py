"""The data side of a run: the budget's caps on the splits, a loader per split whose order is seeded
by the run's seed (every arm of a seed sees the same batches), an endless batch stream for a budget
counted in steps, and the check that a task's splits are what the contract says."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset, Subset

from dendrobench.contract.task import Budget, Task, TaskData
from dendrobench.running.schedules import LRSchedule, lr_factor  # noqa: F401 - lr_factor re-exported for plugins' checks

log = logging.getLogger("dendrobench")


def subset(ds: Dataset, n: int | None) -> Dataset:
    """First ``n`` examples of a fixed (seed-independent) permutation: the same subset for every arm and seed."""
    if n is None or n >= len(ds):  # type: ignore[arg-type]
        return ds
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(12345))[:n]  # type: ignore[arg-type]
    return Subset(ds, sorted(order.tolist()))


def cycle_batches(make: Callable[[], Iterable]) -> Iterator:
    """Endless batches: a fresh pass (fresh shuffle from the same generator) each time one ends."""
    while True:
        empty = True
        for batch in make():
            empty = False
            yield batch
        if empty:
            raise ValueError("the training split yields no batch")


@dataclass
class Loaders:
    train: Callable[[], Iterable]
    val: Iterable
    test: Iterable
    steps_per_epoch: int


def check_splits(task: Task, data: TaskData) -> None:
    """An empty split would fail deep inside torch (``torch.cat(): expected a non-empty list``);
    name the task and the split instead."""
    for split in ("train", "val", "test"):
        try:
            n = len(getattr(data, split))
        except TypeError:  # an iterable dataset: its length is unknown
            continue
        if n == 0:
            raise ValueError(f"task {task.name!r}: the {split} split of {data.dataset!r} ({data.source}) is empty "
                             f"(0 examples); load_data must return at least one example per split")


def make_loaders(task: Task, data: TaskData, budget: Budget, seed: int) -> Loaders:
    check_splits(task, data)
    train = subset(data.train, budget.max_train_examples)
    val = subset(data.val, budget.max_eval_examples)
    test = subset(data.test, budget.max_eval_examples)
    gen = torch.Generator().manual_seed(seed)
    loader = task.dataloader(train, budget.batch_size, True, gen)
    eval_bs = budget.eval_batch_size or budget.batch_size
    spe = budget.steps_per_epoch or len(loader)  # type: ignore[arg-type]
    return Loaders(
        train=lambda: loader,
        val=task.dataloader(val, eval_bs, False, None),
        test=task.dataloader(test, eval_bs, False, None),
        steps_per_epoch=int(spe),
    )


# -- optimisation -----------------------------------------------------------------------------
