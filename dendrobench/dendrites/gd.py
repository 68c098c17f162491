"""``gd``: open, joint-gradient dendrites.

Each converted layer becomes a :class:`DendriticLayer`; a cycle adds one dendrite branch per
converted layer, and every parameter (layer, dendrites, their output weights) keeps training
jointly by gradient descent. Cycles switch after a fixed number of epochs (default: the budget
spread evenly over ``max_dendrites + 1`` phases) or when the validation score plateaus. Custom
dendrite kinds (entry-point group ``dendrobench.dendrites``) plug in through ``dendrite=``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from dendrobench.contract.engine import DendriteEngine, EngineContext, ValidationDecision
from dendrobench.dendrites.convert import find_layers
from dendrobench.dendrites.modules import ACTIVATIONS, Branch, convert_layers, count_dendrites
from dendrobench.errors import ConfigError


@dataclass
class GDConfig:
    max_dendrites: int = 2
    switch_mode: str = "fixed"  # fixed | plateau
    switch_epochs: int | None = None  # fixed: epochs per phase; null = the budget split evenly
    improvement_threshold: float = 1e-3  # plateau: a gain below this (absolute, in the metric) is no gain
    patience: int = 2  # plateau: epochs without gain before a cycle
    min_phase_epochs: int = 1
    activation: str = "tanh"
    dendrite: str = "standard"  # a name in the entry-point group dendrobench.dendrites
    dendrite_params: dict[str, Any] = field(default_factory=dict)
    types: list[str] = field(default_factory=lambda: ["Linear", "Conv1d", "Conv2d", "Conv3d"])
    modules_to_convert: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    freeze_scale: bool = False  # validity check: output weights stay zero, dendrites never act

    def validate(self) -> None:
        if self.max_dendrites < 0:
            raise ConfigError(f"max_dendrites must be >= 0, got {self.max_dendrites}")
        if self.switch_mode not in ("fixed", "plateau"):
            raise ConfigError(f"unknown switch_mode {self.switch_mode!r}; valid: fixed, plateau")
        if self.switch_epochs is not None and self.switch_epochs < 1:
            raise ConfigError(f"switch_epochs must be >= 1 or null, got {self.switch_epochs}")
        if self.patience < 1 or self.min_phase_epochs < 1:
            raise ConfigError("patience and min_phase_epochs must be >= 1")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"unknown activation {self.activation!r}; valid: {', '.join(ACTIVATIONS)}")


class CycleSchedule:
    """When to start the next dendrite cycle: shared by every engine that works in phases."""

    def __init__(self, cfg: Any, higher_is_better: bool):
        self.cfg = cfg
        self.sign = 1.0 if higher_is_better else -1.0
        self.phase_epochs = 0
        self.best = float("-inf")
        self.stale = 0
        # The last phase (after max_dendrites cycles) has run as long as any phase would: a protocol
        # that stops when the engine is done (budget until_engine_complete) stops here.
        self.complete = False

    def phase_length(self, ctx: EngineContext) -> int:
        return self.cfg.switch_epochs or max(1, ctx.epochs // (self.cfg.max_dendrites + 1))

    def observe(self, score: float, ctx: EngineContext, cycles_done: int) -> bool:
        """Record this epoch's validation score; True when a new cycle should start now."""
        self.phase_epochs += 1
        s = self.sign * score
        if s > self.best + self.cfg.improvement_threshold:
            self.best, self.stale = s, 0
        else:
            self.stale += 1
        if self.cfg.switch_mode == "fixed":
            due = self.phase_epochs >= self.phase_length(ctx)
        else:
            due = self.phase_epochs >= self.cfg.min_phase_epochs and self.stale >= self.cfg.patience
        if cycles_done >= self.cfg.max_dendrites:
            self.complete = self.complete or due
            return False
        if ctx.epoch >= ctx.epochs:
            return False
        if due:
            self.phase_epochs, self.stale, self.best = 0, 0, float("-inf")
        return due


class GradientDendrites(DendriteEngine):
    name = "gd"
    description = "open joint-gradient dendrites: branches added per cycle, trained with the layer"
    Config = GDConfig

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__(config)
        from dendrobench.contract.registry import get_dendrite_kind

        self.kind = get_dendrite_kind(self.cfg.dendrite)
        self.layers: list[str] = []
        self.schedule: CycleSchedule | None = None

    def wrap(self, model: nn.Module, ctx: EngineContext) -> nn.Module:
        cfg = self.cfg
        self.layers = find_layers(model, cfg.types, cfg.modules_to_convert, cfg.exclude)
        convert_layers(model, self.layers)
        self.schedule = CycleSchedule(cfg, ctx.higher_is_better)
        return model

    def add_dendrites(self, model: nn.Module, seed: int) -> int:
        """Add one branch to every converted layer, drawn from its own RNG stream so the
        global stream (dropout, anything the task draws) stays exactly the baseline's."""
        added = 0
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for name in self.layers:
                wrapper = model.get_submodule(name)
                dendrite = self.kind.build(wrapper.layer, **self.cfg.dendrite_params)
                branch = Branch(dendrite, wrapper.layer, self.cfg.activation)
                if self.cfg.freeze_scale:
                    branch.scale.requires_grad_(False)
                wrapper.add_branch(branch)
                added += 1
        return added

    def on_validation(self, model: nn.Module, score: float, ctx: EngineContext) -> ValidationDecision:
        assert self.schedule is not None, "wrap() must run before on_validation()"
        if not self.schedule.observe(score, ctx, self.cycles):
            return ValidationDecision(model, training_complete=self.schedule.complete)
        self.cycles += 1
        self.added += self.add_dendrites(model, seed=ctx.seed * 1009 + self.cycles)
        return ValidationDecision(model, restructured=True, event="dendrites_added")

    def dendrite_count(self, model: nn.Module) -> int:
        return count_dendrites(model)

    def planned_model(self, model: nn.Module, ctx: EngineContext) -> nn.Module | None:
        """With ``switch_mode=fixed`` the cycles fall on known epochs: one every phase, while
        cycles < max_dendrites and the epoch is not the last (as :meth:`CycleSchedule.observe`)."""
        if self.cfg.switch_mode != "fixed":
            return None
        model = self.wrap(model, ctx)
        assert self.schedule is not None
        cycles = min(self.cfg.max_dendrites, (ctx.epochs - 1) // self.schedule.phase_length(ctx))
        for cycle in range(1, cycles + 1):
            self.add_dendrites(model, seed=ctx.seed * 1009 + cycle)
        return model
