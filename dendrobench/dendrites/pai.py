"""``perforatedai``: an adapter to the real ``perforatedai`` package from PyPI (extra ``pai``).

What the adapter takes care of, so the package runs under the runner's rules:

* **Non-interactive**: ``set_configuration_confirmed`` / ``set_unwrapped_modules_confirmed`` /
  ``set_weight_decay_accepted`` answer the prompts the library would otherwise open on a TTY.
* **No files in the user's directory**: the library writes checkpoints, configs and CSVs under
  ``os.getcwd()/save_name``; every call into it runs with the working directory switched to the
  run-scoped ``ctx.workdir`` (removed after the run) and switched back afterwards.
* **Nothing that only slows a benchmark**: graphs off (``making_graphs=False``; the
  ``set_drawing_pai(False)`` route crashes in 3.2.9), model saves off, capacity tests off, and the
  learning-rate sweep (``find_best_lr``, hidden extra training a fair budget would have to count)
  off by default.
* **Same budget**: the runner owns every optimizer step. ``make_optimizer`` goes through the
  library's ``setup_optimizer`` (so its tracker knows the optimizer) with the runner's optimizer
  class and settings; ``add_validation_score`` runs in ``on_validation``; when it restructures,
  the runner brings the optimizer up to date. When the library says training is complete, the
  run still uses the rest of the budget, and the library is no longer called.
* **Global state**: the library keeps its configuration and tracker in module globals; they are
  replaced by fresh objects at every ``wrap`` and dropped at ``done``, so runs in one process do
  not leak into each other.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import os
import pdb
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dendrobench.contract.engine import DendriteEngine, EngineContext, LossFn, ValidationDecision
from dendrobench.dendrites.convert import find_layers
from dendrobench.errors import ConfigError

INSTALL_HINT = 'dendrites=perforatedai needs the optional package perforatedai: pip install "dendrobench[pai]"'
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}
TYPES = {"Linear": nn.Linear, "Conv1d": nn.Conv1d, "Conv2d": nn.Conv2d, "Conv3d": nn.Conv3d}
SAVE_NAME = "pai"  # a plain name: the library exits the process on a '/' in it


def import_pai() -> tuple[Any, Any]:
    """``(globals_perforatedai, utils_perforatedai)``, or a ConfigError saying how to install them.

    The import prints a banner on stdout; it is swallowed so the run's own output stays readable."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            from perforatedai import globals_perforatedai, utils_perforatedai
    except ImportError as exc:
        raise ConfigError(f"{INSTALL_HINT} ({type(exc).__name__}: {exc})") from None
    return globals_perforatedai, utils_perforatedai


@contextlib.contextmanager
def inside(folder: Path) -> Iterator[None]:
    """Run with ``folder`` as the working directory (the library writes under ``os.getcwd()``)."""
    before = os.getcwd()
    folder.mkdir(parents=True, exist_ok=True)
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


@contextlib.contextmanager
def no_exit(what: str) -> Iterator[None]:
    """The library calls ``sys.exit`` or ``pdb.set_trace()`` on some misuse; that must fail one run,
    not end the suite or wait at a debugger prompt (without a terminal it ended in a bare BdbQuit)."""

    def debugger(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"perforatedai's {what} tried to open its debugger; its own message is printed above")

    saved = pdb.set_trace
    pdb.set_trace = debugger
    try:
        yield
    except SystemExit as exc:
        raise RuntimeError(f"perforatedai's {what} tried to exit the process (code {exc.code}); "
                           "its own message is printed above") from None
    finally:
        pdb.set_trace = saved


@dataclass
class PAIConfig:
    max_dendrites: int = 2
    switch_mode: str = "fixed"  # fixed (PAI DOING_FIXED_SWITCH) | history (PAI's plateau detection)
    switch_epochs: int | None = None  # fixed: epochs per phase; null = the budget split over max_dendrites+1
    patience: int = 3  # history: PAI's n_epochs_to_switch
    improvement_threshold: float = 1e-3  # history: absolute gain that counts (PAI's improvement_threshold_raw)
    activation: str = "sigmoid"  # PAI's pai_forward_function
    retain_all_dendrites: bool = True  # False lets PAI roll back dendrites that did not help
    find_best_lr: bool = False  # PAI's learning-rate sweep retrains phases: off for a fair budget
    max_dendrite_tries: int = 1
    types: list[str] = field(default_factory=lambda: ["Linear", "Conv1d", "Conv2d", "Conv3d"])
    modules_to_convert: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    output_dimensions: list[int] | None = None  # null: per layer, [-1, 0] for Linear on [N, C], [-1, 0, -1...] for ConvNd
    keep_files: str | None = None  # a folder to copy PAI's own files (configs, CSVs) to after the run

    def validate(self) -> None:
        if self.max_dendrites < 0:
            raise ConfigError(f"max_dendrites must be >= 0, got {self.max_dendrites}")
        if self.switch_mode not in ("fixed", "history"):
            raise ConfigError(f"unknown switch_mode {self.switch_mode!r}; valid: fixed, history")
        if self.switch_epochs is not None and self.switch_epochs < 1:
            raise ConfigError(f"switch_epochs must be >= 1 or null, got {self.switch_epochs}")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"unknown activation {self.activation!r}; valid: {', '.join(ACTIVATIONS)}")
        if self.output_dimensions is not None and list(self.output_dimensions).count(0) != 1:
            raise ConfigError(f"output_dimensions needs exactly one 0 (the channel axis), got {self.output_dimensions}")


def default_dims(layer: nn.Module) -> list[int]:
    """PAI's output-dimension spec for a layer: 0 marks the channel axis, -1 any other axis."""
    if isinstance(layer, nn.Linear):
        return [-1, 0]
    spatial = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}[type(layer)]
    return [-1, 0] + [-1] * spatial


class PerforatedAIDendrites(DendriteEngine):
    name = "perforatedai"
    description = "adapter to the PyPI perforatedai package (gradient dendrites), run non-interactively"
    Config = PAIConfig

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__(config)
        self.G, self.U = import_pai()
        self.workdir: Path | None = None
        self.complete = False
        self.layers: list[str] = []

    # -- set-up -----------------------------------------------------------------------------
    def _reset_globals(self) -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            self.G.pc = self.G.PAIConfig()
        self.G.pai_tracker = []

    def _configure(self, ctx: EngineContext) -> None:
        cfg, pc = self.cfg, self.G.pc
        pc.set_configuration_confirmed(True)
        pc.set_unwrapped_modules_confirmed(True)
        pc.set_weight_decay_accepted(True)
        pc.set_checked_skipped_modules(True)
        pc.set_testing_dendrite_capacity(False)
        pc.set_silent(True)
        pc.set_verbose(False)
        pc.set_pai_saves(False)
        pc.set_test_saves(False)
        pc.set_save_old_graph_scores(False)
        pc.set_use_cuda(ctx.device.type == "cuda")
        pc.set_device(ctx.device)
        pc.set_max_dendrites(cfg.max_dendrites)
        pc.set_max_dendrite_tries(cfg.max_dendrite_tries)
        pc.set_retain_all_dendrites(cfg.retain_all_dendrites)
        pc.set_find_best_lr(cfg.find_best_lr)
        pc.set_pai_forward_function(ACTIVATIONS[cfg.activation])
        # the library converts by class and by class *name* (its default names: every Linear and
        # Conv, and its own PAISequential); both must say the configured types, or a type left out
        # is converted anyway
        pc.set_modules_to_perforate([TYPES[t] for t in cfg.types])
        pc.set_module_names_to_perforate([*(TYPES[t].__name__ for t in cfg.types), "PAISequential"])
        if cfg.output_dimensions is not None:
            pc.set_output_dimensions(list(cfg.output_dimensions))
        if cfg.switch_mode == "fixed":
            every = cfg.switch_epochs or max(1, ctx.epochs // (cfg.max_dendrites + 1))
            pc.set_switch_mode(pc.DOING_FIXED_SWITCH)
            pc.set_first_fixed_switch_num(every)
            pc.set_fixed_switch_num(every)
        else:
            pc.set_switch_mode(pc.DOING_HISTORY)
            pc.set_n_epochs_to_switch(cfg.patience)
            pc.set_improvement_threshold_raw(cfg.improvement_threshold)
        if cfg.max_dendrites == 0:
            pc.set_switch_mode(pc.DOING_NO_SWITCH)

    def wrap(self, model: nn.Module, ctx: EngineContext) -> nn.Module:
        cfg = self.cfg
        # our own conversion rules first: the same clear errors as every engine for bad input
        self.layers = find_layers(model, cfg.types, cfg.modules_to_convert, cfg.exclude)
        everything = find_layers(model, cfg.types, model_exclude=False)  # what 'by class' would convert
        self.workdir = Path(ctx.workdir) / "perforatedai"
        self._reset_globals()
        self._configure(ctx)
        if set(self.layers) != set(everything):
            # a subset: the library's module ids ("." + the dotted path), nothing by class
            self.G.pc.set_modules_to_perforate([])
            self.G.pc.set_module_names_to_perforate([])
            self.G.pc.set_module_ids_to_perforate(["." + n for n in self.layers])
        with inside(self.workdir), no_exit("perforate_model"), contextlib.redirect_stdout(io.StringIO()):
            model = self.U.perforate_model(model, save_name=SAVE_NAME, making_graphs=False,
                                           maximizing_score=ctx.higher_is_better)
        if cfg.output_dimensions is None:
            for mod in self._pai_modules(model):
                mod.set_this_output_dimensions(default_dims(mod.main_module))
        return model

    def _pai_modules(self, model: nn.Module) -> list[nn.Module]:
        return [m for m in model.modules() if hasattr(m, "main_module") and hasattr(m, "dendrite_module")]

    def make_optimizer(self, model: nn.Module, build: Callable[[list[nn.Parameter]], torch.optim.Optimizer]):
        """The runner's optimizer (class and settings) set up through the library's tracker."""
        params = [p for p in model.parameters() if p.requires_grad]
        probe = build(params)
        # only what the class's __init__ takes: torch's AdamW keeps Adam's ``decoupled_weight_decay`` in
        # its defaults but rejects it as an argument
        accepted = inspect.signature(type(probe).__init__).parameters
        settings = {k: v for k, v in probe.defaults.items()
                    if k in accepted and k not in ("differentiable", "foreach", "fused", "capturable", "maximize")}
        tracker = self.G.pai_tracker
        assert self.workdir is not None, "wrap() must run before make_optimizer()"
        with inside(self.workdir):
            tracker.set_optimizer(type(probe))
            optimizer, _ = tracker.setup_optimizer(model, {"params": params, **settings}, {})
        return optimizer

    # -- the loop ---------------------------------------------------------------------------
    def train_step(self, model: nn.Module, batch: Any, loss_fn: LossFn, optimizer: torch.optim.Optimizer,
                   ctx: EngineContext, grad_clip: float | None = None) -> float:
        """A plain step; the library's tracker is pointed at the optimizer the runner really steps
        (after a restructure the runner updates or rebuilds it, and the library reads its lr)."""
        tracker = self.G.pai_tracker
        if tracker and tracker.member_vars.get("optimizer_instance") is not optimizer:
            tracker.member_vars["optimizer_instance"] = optimizer
        return super().train_step(model, batch, loss_fn, optimizer, ctx, grad_clip)

    def on_validation(self, model: nn.Module, score: float, ctx: EngineContext) -> ValidationDecision:
        if self.complete:
            return ValidationDecision(model, training_complete=True)
        assert self.workdir is not None, "wrap() must run before on_validation()"
        before = self._added()
        with inside(self.workdir), no_exit("add_validation_score"):
            model, restructured, complete = self.G.pai_tracker.add_validation_score(float(score), model)
        model = model.to(ctx.device)
        after = self._added()
        self.complete = bool(complete)
        event = None
        if after > before:
            self.cycles += after - before
            self.added += (after - before) * len(self.layers)
            event = "dendrites_added"
        return ValidationDecision(model, restructured=bool(restructured), event=event,
                                  training_complete=self.complete)

    def _added(self) -> int:
        tracker = self.G.pai_tracker
        return int(getattr(tracker, "member_vars", {}).get("num_dendrites_added", 0)) if tracker else 0

    def done(self, model: nn.Module) -> nn.Module:
        if self.cfg.keep_files and self.workdir is not None and self.workdir.exists():
            import shutil

            shutil.copytree(self.workdir, Path(self.cfg.keep_files).expanduser(), dirs_exist_ok=True)
        self._reset_globals()
        return model

    # -- reporting --------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "library": "perforatedai", "complete": self.complete}

    def inference_params(self, model: nn.Module) -> int:
        """PAI allocates modules that never take part in inference (a copy of each wrapped layer,
        candidate weights); its own ``count_params`` leaves the copy out, we also leave out the
        candidate-only weights."""
        total = 0
        for name, p in model.named_parameters():
            if ".parent_module." in f".{name}" or "candidate" in name:
                continue
            total += p.numel()
        return total

    def dendrite_count(self, model: nn.Module) -> int:
        count = 0
        for mod in self._pai_modules(model):
            layers = getattr(mod.dendrite_module, "layers", None)
            count += len(layers) if layers is not None else 0
        return count
