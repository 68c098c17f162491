"""Learning-rate schedules, driven by torch's own schedulers.

The runner never writes a parameter group's ``lr`` itself: a torch scheduler does, so a plugin's
optimizer group keeps whatever the scheduler gives it, and a schedule is a budget field
(``schedule=``) rather than code in the loop.

* ``constant``, ``cosine`` and ``step`` (with optional linear warm-up) are closed-form factors of the
  global step, run by :class:`torch.optim.lr_scheduler.LambdaLR` stepped after every optimizer step.
  Closed form matters because dendrite engines add parameter groups mid-run (and some replace the
  optimizer): the scheduler is simply rebuilt at the current step and every group, old or new, gets
  exactly ``lr * factor(step)`` -- the values the runner used to write by hand, so existing
  ``constant`` / ``cosine`` budgets train exactly as before. ``step`` decays by ``gamma`` every
  ``step_size`` epochs, as :class:`~torch.optim.lr_scheduler.StepLR` stepped once per epoch.
* ``reduce_on_plateau`` is :class:`torch.optim.lr_scheduler.ReduceLROnPlateau` stepped once per
  epoch on the validation metric, its mode taken from the metric's direction (``max`` for ROC-AUC,
  ``min`` for perplexity). Its state (best score, bad epochs, the reduced lr) survives an optimizer
  that gains groups or is rebuilt; new groups start at the current, already reduced lr.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch

from dendrobench.contract.task import Budget


def lr_factor(budget: Budget, step: int, total: int, steps_per_epoch: int = 1) -> float:
    """The multiplier of ``budget.lr`` before optimizer step ``step`` (0-based) of ``total``."""
    if budget.warmup_steps and step < budget.warmup_steps:
        return (step + 1) / budget.warmup_steps
    if budget.schedule == "cosine":
        progress = (step - budget.warmup_steps) / max(1, total - budget.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    if budget.schedule == "step":
        epoch = step // max(1, steps_per_epoch)
        return float(budget.gamma) ** (epoch // int(budget.step_size))
    return 1.0


class LRSchedule:
    """One run's learning-rate schedule; ``attach`` it to every optimizer the run steps."""

    def __init__(self, budget: Budget, total_steps: int, steps_per_epoch: int, higher_is_better: bool):
        self.budget = budget
        self.total = total_steps
        self.spe = steps_per_epoch
        self.mode = "max" if higher_is_better else "min"
        self.step = 0  # optimizer steps taken
        self.scheduler: Any = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.n_groups = 0

    @property
    def per_epoch(self) -> bool:
        return self.budget.schedule == "reduce_on_plateau"

    def attach(self, optimizer: torch.optim.Optimizer, fresh: bool = False) -> None:
        """Drive ``optimizer`` (new, or one that gained groups). ``fresh``: forget the schedule's
        state (a protocol that restarts optimizer and scheduler after a dendrite cycle)."""
        if optimizer is self.optimizer and len(optimizer.param_groups) == self.n_groups and not fresh:
            return
        old, self.optimizer, self.n_groups = self.scheduler, optimizer, len(optimizer.param_groups)
        if self.per_epoch:
            state = None if fresh or old is None else old.state_dict()
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode=self.mode, factor=float(self.budget.plateau_factor),
                patience=int(self.budget.plateau_patience), threshold=float(self.budget.plateau_threshold))
            if state is not None:
                lr = min(old.optimizer.param_groups[0]["lr"], self.budget.lr)
                state["min_lrs"] = [0.0] * self.n_groups
                state.pop("default_min_lr", None)
                self.scheduler.load_state_dict(state)
                for group in optimizer.param_groups:
                    group["lr"] = lr
            else:
                for group in optimizer.param_groups:
                    group["lr"] = self.budget.lr
            return
        for group in optimizer.param_groups:
            group["initial_lr"] = self.budget.lr
        with warnings.catch_warnings():  # rebuilding mid-run is deliberate
            warnings.simplefilter("ignore", UserWarning)
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda s: lr_factor(self.budget, s, self.total, self.spe), last_epoch=self.step - 1)

    def after_step(self) -> None:
        self.step += 1
        if not self.per_epoch and self.scheduler is not None:
            with warnings.catch_warnings():  # an engine's step may skip optimizer.step (cc's candidate phase)
                warnings.simplefilter("ignore", UserWarning)
                self.scheduler.step()

    def after_epoch(self, score: float) -> None:
        if self.per_epoch and self.scheduler is not None:
            self.scheduler.step(score)

    def lr(self) -> float:
        assert self.optimizer is not None
        return float(self.optimizer.param_groups[0]["lr"])
