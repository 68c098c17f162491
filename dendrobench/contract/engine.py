"""The engine interface the runner talks to.

The runner owns the loop and counts every optimizer step; an engine only

* ``wrap``s the freshly built base model (converting Linear / ConvNd layers),
* may take over a ``train_step`` (e.g. a correlation phase that trains candidates instead of the
  layer) -- each call is still one counted step of the budget,
* answers ``on_validation`` once per epoch, possibly restructuring the model (the runner then
  brings the optimizer up to date), and
* is told ``done`` at the end.

Engines register under the entry-point group ``dendrobench.engines`` and take their parameters from
a dataclass ``Config``; unknown parameters are an error that lists the valid ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from dendrobench.errors import ConfigError


@dataclass
class EngineContext:
    """What an engine may know about the run it is part of."""

    epochs: int
    steps_per_epoch: int
    higher_is_better: bool
    seed: int
    device: torch.device
    workdir: Path  # run-scoped scratch folder, removed after the run
    epoch: int = 0  # 1-based number of the epoch just finished (in on_validation)
    step: int = 0  # optimizer steps taken so far

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch


@dataclass
class ValidationDecision:
    model: nn.Module
    restructured: bool = False  # parameters were added or replaced: the optimizer must follow
    event: str | None = None  # e.g. "dendrites_added", stored in the record's history
    training_complete: bool = False  # the engine has nothing more to do (training still uses the full budget)


LossFn = Callable[[nn.Module, Any], torch.Tensor]


@dataclass
class NoConfig:
    pass


class DendriteEngine:
    """Base class; the default behaviour is "no dendrites" so ``none`` is this class unchanged."""

    name: ClassVar[str] = "base"
    description: ClassVar[str] = ""
    Config: ClassVar[type] = NoConfig

    def __init__(self, config: dict[str, Any] | None = None):
        self.cfg = parse_config(self.Config, config or {}, f"dendrites={self.name}")
        self.cycles = 0
        self.added = 0

    # -- the four hooks ---------------------------------------------------------------------
    def wrap(self, model: nn.Module, ctx: EngineContext) -> nn.Module:
        return model

    def make_optimizer(self, model: nn.Module, build: Callable[[list[nn.Parameter]], torch.optim.Optimizer]):
        """Engines that need their own optimizer set-up (perforatedai) override this."""
        return build([p for p in model.parameters() if p.requires_grad])

    def train_step(self, model: nn.Module, batch: Any, loss_fn: LossFn, optimizer: torch.optim.Optimizer,
                   ctx: EngineContext, grad_clip: float | None = None) -> float:
        """One optimizer step. Returns the training loss (NaN/inf makes the run 'diverged').

        The model is put in training mode only when it is not in it already (after a validation
        pass): ``Module.train()`` walks every submodule, 73-385 us per step for the built-in models
        with two dendrites, 4 % of a credit-default step (issue 20). Between the runner's
        validation passes nothing else changes a module's mode, so the step is the same.
        """
        if not model.training:
            model.train()
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model, batch)
        loss.backward()
        if grad_clip:
            nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], grad_clip)
        optimizer.step()
        return float(loss.detach())

    def on_validation(self, model: nn.Module, score: float, ctx: EngineContext) -> ValidationDecision:
        return ValidationDecision(model)

    def done(self, model: nn.Module) -> nn.Module:
        return model

    # -- reporting --------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        return {"cycles": self.cycles, "added": self.added}

    def inference_params(self, model: nn.Module) -> int:
        """Parameters that take part in inference (engines that pre-allocate unused modules override)."""
        return sum(p.numel() for p in model.parameters())

    def dendrite_count(self, model: nn.Module) -> int:
        """Dendrites present in ``model`` (used to say what the validation-selected model had)."""
        return 0

    def planned_model(self, model: nn.Module, ctx: EngineContext) -> nn.Module | None:
        """The model as it will be at the end of a run of ``ctx.epochs`` epochs, built without
        training, or None when that depends on the training (dendrites added on a plateau, a
        correlation criterion...). Lets a ``wide`` arm know its target parameter count without
        waiting for the dendritic run. ``model`` is a fresh base model this method may change."""
        return None

    @classmethod
    def parameters_doc(cls) -> dict[str, Any]:
        """Parameter names and defaults, shown by ``dendrobench list``."""
        return {f.name: _default(f) for f in dataclasses.fields(cls.Config)}


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def parse_config(cls: type, values: dict[str, Any], where: str) -> Any:
    """Build a config dataclass, naming unknown keys and the valid ones."""
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in dict(values).items() if k != "engine"}
    bad = sorted(set(values) - names)
    if bad:
        raise ConfigError(f"{where}: unknown parameter(s) {bad}; valid parameters: {', '.join(sorted(names)) or '(none)'}")
    cfg = cls(**{k: list(v) if isinstance(v, tuple) else v for k, v in values.items()})
    check = getattr(cfg, "validate", None)
    if check:
        check()
    return cfg


@dataclass
class ConversionSpec:
    """Which layers an engine converts: by type, minus excluded names, or exactly the named modules."""

    types: list[str] = field(default_factory=lambda: ["Linear", "Conv1d", "Conv2d", "Conv3d"])
    modules_to_convert: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
