"""``protocol=fork``: one shared first phase, then three continuations (issue 21 point 4).

Why: two independent runs carry the first phase's variance into the comparison. Here every arm
of a seed trains the *same* baseline network through the same first phase. At the fork (a fixed
epoch, or the first validation plateau) the run continues three ways for the same remaining steps:

* (b) ``baseline``: the base network keeps training, unchanged;
* (a) ``dendrites``: one dendrite per neuron of every converted layer (``gd``, one cycle);
* (c) ``wide``: the capacity control, plain hidden units at the same layers with the dendrites'
  parameter count (:class:`PlainUnits`), instead of a wider network trained from scratch.

(a) and (c) are each reported against (b). The leaderboard's row shows dendrites against
baseline and dendrites against the control; :func:`dendrobench.evidence.report.fork_summary` adds control against baseline.

Why one shared phase is exact, not approximate: ``gd`` wraps each converted layer with no
dendrite, which computes exactly the layer's output, and it draws new dendrites from their own RNG
stream (``GradientDendrites.add_dendrites``). Until the fork, each arm of a seed is therefore the
baseline run itself: same initial weights, same data order (the loader's generator is seeded with
the seed), same optimizer steps. The shared phase is recomputed in each arm rather than loaded from a
saved checkpoint, and :func:`shared_phase` checks in the records that it was identical (training
loss and validation score, epoch by epoch, up to the fork). A fork at the first plateau is a
deterministic rule on those identical validation scores, so every arm forks at the same epoch.

The control (c): a dendrite of gd is ``s * act(W' x + b')``, one branch per output neuron, added
to the layer's output with a per-neuron scale ``s`` (zero at birth). A plain-units branch is
``U act(V x + c)``, with ``k`` new hidden units on the layer's input and a dense map ``U`` (zero at
birth) onto the layer's output. ``k`` is chosen per layer to match the dendrite branch's
parameter count. Both are added at the same layers and epoch, both leave the function unchanged
at the fork, and both then train jointly with the network. What differs is how the new units
connect: one per neuron (dendrites), or densely (plain units). The control is recorded as arm
``wide`` with ``extra.target_source = "plain units at the fork"``.

Only ``gd`` runs a fork: the other engines change the base network's first phase (cc trains
candidates with the network frozen, perforatedai rebuilds the optimizer).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from dendrobench.dendrites.gd import GradientDendrites
from dendrobench.dendrites.modules import ACTIVATIONS, channel_view
from dendrobench.errors import ConfigError
from dendrobench.running.protocol_settings import FORK_KEYS, ForkSettings, parse_fork  # noqa: F401

if TYPE_CHECKING:
    from dendrobench.running.config import RunConfig

CONTROL_VERSION = 1  # bump when PlainUnits changes: the control's record identity changes with it
CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def check_fork(run: RunConfig, epochs: int) -> ForkSettings:
    """protocol=fork's own checks, before any training: one line naming what is wrong."""
    settings = parse_fork(run.fork)
    if run.engine != "gd":
        raise ConfigError(f"protocol=fork needs dendrites=gd (its first phase is exactly the baseline's), "
                          f"got dendrites={run.engine}")
    at = settings.epoch(epochs)
    if at is not None and not 1 <= at < epochs:
        raise ConfigError(f"fork.at={settings.at} must be an epoch from 1 to {epochs - 1} (the budget has "
                          f"{epochs} epochs and the continuation needs at least one)")
    if epochs < 2:
        raise ConfigError(f"protocol=fork needs a budget of at least 2 epochs, got {epochs}")
    return settings


def fork_engine_params(run: RunConfig, settings: ForkSettings, epochs: int) -> dict[str, Any]:
    """gd's parameters for the fork: one cycle, at the fork epoch or at the first plateau."""
    params = {**run.engine_params, "max_dendrites": 1}
    at = settings.epoch(epochs)
    if at is None:
        params.update(switch_mode="plateau", patience=settings.patience, min_phase_epochs=1)
    else:
        params.update(switch_mode="fixed", switch_epochs=at)
    return params


# -- the control: plain units at the fork ----------------------------------------------------
def fan_in(layer: nn.Module) -> int:
    if isinstance(layer, nn.Linear):
        return int(layer.in_features)
    if isinstance(layer, CONVS):
        return int(layer.in_channels) * int(torch.tensor(layer.kernel_size).prod())
    raise TypeError(f"plain units support Linear and Conv1d/2d/3d, not {type(layer).__name__}")


def out_width(layer: nn.Module) -> int:
    return int(layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels)


def dendrite_branch_params(layer: nn.Module) -> int:
    """A standard gd dendrite: a copy of the layer plus its per-neuron scale."""
    return sum(p.numel() for p in layer.parameters()) + out_width(layer)


def units_for(layer: nn.Module) -> int:
    """Hidden units k whose branch ``k (fan_in + 1) + k out`` is closest to a dendrite branch."""
    per_unit = fan_in(layer) + 1 + out_width(layer)
    return max(1, round(dendrite_branch_params(layer) / per_unit))


class UnitsBranch(nn.Module):
    """``U act(V x + c)``: k plain hidden units on the layer's input, mapped densely onto its
    output by ``U`` (zero at birth, so the function is unchanged at the fork).

    It has the attributes DendriticLayer reads from a branch (``dendrite``, ``act``, ``scale``,
    ``view``); its scale is a constant buffer of ones, not a parameter."""

    def __init__(self, layer: nn.Module, k: int, activation: str):
        super().__init__()
        if isinstance(layer, nn.Linear):
            down: nn.Module = nn.Linear(layer.in_features, k)
            up: nn.Module = nn.Linear(k, layer.out_features, bias=False)
        elif isinstance(layer, CONVS):
            conv = type(layer)
            down = conv(layer.in_channels, k, layer.kernel_size, stride=layer.stride, padding=layer.padding,
                        dilation=layer.dilation, padding_mode=layer.padding_mode)
            up = conv(k, layer.out_channels, 1, bias=False)
        else:
            raise TypeError(f"plain units support Linear and Conv1d/2d/3d, not {type(layer).__name__}")
        nn.init.zeros_(up.weight)
        device = next(layer.parameters()).device
        self.dendrite = nn.Sequential(down, ACTIVATIONS[activation](), up).to(device)
        self.act = nn.Identity()
        self.register_buffer("scale", torch.ones(out_width(layer), device=device))
        self.view: list[int] = channel_view(layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dendrite(x)


class PlainUnits(GradientDendrites):
    """gd's schedule and layers, but each cycle adds a :class:`UnitsBranch` instead of dendrites."""

    name = "gd"  # the records' engine: the row's engine settings are the dendritic arm's

    def add_dendrites(self, model: nn.Module, seed: int) -> int:
        added = 0
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for name in self.layers:
                wrapper = model.get_submodule(name)
                wrapper.add_branch(UnitsBranch(wrapper.layer, units_for(wrapper.layer), self.cfg.activation))
                added += 1
        return added


def planned_params(engine: GradientDendrites, model: nn.Module) -> int:
    """The base model's parameters plus one dendrite branch per convertible layer."""
    from dendrobench.dendrites.convert import find_layers

    cfg = engine.cfg
    layers = find_layers(model, cfg.types, cfg.modules_to_convert, cfg.exclude)
    return sum(p.numel() for p in model.parameters()) + sum(
        dendrite_branch_params(model.get_submodule(n)) for n in layers)


# -- records ----------------------------------------------------------------------------------
def fork_info(record: dict[str, Any]) -> dict[str, Any]:
    info = (record.get("config") or {}).get("fork_protocol")
    return info if isinstance(info, dict) else {}


def fork_epoch(record: dict[str, Any]) -> int | None:
    """The epoch whose end added the dendrites or units (None: no fork happened)."""
    for h in record.get("history") or []:
        if h.get("event") == "dendrites_added":
            return int(h["epoch"])
    return None


def shared_phase(records: list[dict[str, Any]]) -> list[str]:
    """Problems with the shared first phase, one line per seed and arm; empty when every arm of
    every seed forked at the same epoch after the same training losses and validation scores."""
    problems = []
    by_seed: dict[int, dict[str, dict[str, Any]]] = {}
    for r in records:
        if r.get("status") == "ok":
            by_seed.setdefault(int(r["seed"]), {})[str(r["arm"])] = r
    for seed, arms in sorted(by_seed.items()):
        base = arms.get("baseline")
        if base is None:
            continue
        for arm in ("dendrites", "wide"):
            other = arms.get(arm)
            if other is None:
                continue
            at = fork_epoch(other)
            if at is None:
                problems.append(f"seed {seed} {arm}: no fork (nothing was added)")
                continue
            mine = [(h["train_loss"], h["val"]) for h in other["history"][:at]]
            theirs = [(h["train_loss"], h["val"]) for h in base["history"][:at]]
            if mine != theirs:
                problems.append(f"seed {seed} {arm}: its first {at} epochs differ from the baseline's")
        ats = {fork_epoch(arms[a]) for a in ("dendrites", "wide") if a in arms}
        if len(ats) > 1:
            problems.append(f"seed {seed}: the arms forked at different epochs {sorted(map(str, ats))}")
    return problems


def row_note(records: list[dict[str, Any]]) -> str:
    infos = [fork_info(r) for r in records if fork_info(r)]
    at = infos[0].get("at") if infos else "?"
    where = "the first plateau" if at == "plateau" else f"epoch {at}"
    return f"fork at {where}: one shared baseline phase, then dendrites / more training / plain units"


def run_fork(cfg: dict[str, Any], echo: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Every seed: baseline (b), dendrites (a) and plain units (c) from one shared first phase."""
    from dendrobench.running.config import from_mapping
    from dendrobench.running.runner import ArmSpec, Suite

    if cfg.get("claim"):
        raise ConfigError(f"protocol=fork and claim={cfg['claim']} do not combine: a claim runs its own protocols")
    run = from_mapping(cfg)
    probe = Suite(run, echo=lambda _m: None)
    epochs = int(probe.budget.epochs)
    settings = check_fork(run, epochs)
    params = fork_engine_params(run, settings, epochs)
    run = dataclasses.replace(run, protocol="fork", dendrites={"engine": "gd", **params},
                              arms=[a for a in ("baseline", "dendrites", "wide") if a in run.arms])
    info = {"at": settings.at, "epoch": settings.epoch(epochs), "patience": settings.patience,
            "control": "plain units at the fork", "control_version": CONTROL_VERSION}

    class ForkSuite(Suite):
        def identity(self, arm: str, seed: int) -> dict[str, Any]:
            return {**super().identity(arm, seed), "fork": info}

        def resolved_config(self) -> dict[str, Any]:
            return {**super().resolved_config(), "fork_protocol": dict(info)}

        def arm_spec(self, arm: str, seed: int, data: Any, by_arm: dict[str, dict[str, Any]]) -> ArmSpec:
            if arm != "wide":
                return super().arm_spec(arm, seed, data, by_arm)
            engine = PlainUnits(self.run.engine_params)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                target = planned_params(engine, self.task.build_model(data, 1.0))
            return ArmSpec("wide", seed, engine=engine, target_params=target,
                           target_source="plain units at the fork", report=self.run.report_split)

    suite = ForkSuite(run, echo=echo)
    where = "the first plateau" if settings.at == "plateau" else f"epoch {settings.epoch(epochs)} of {epochs}"
    echo(f"fork: arms {', '.join(suite.arms)} share the baseline's first phase, then fork at {where}")
    records = suite.run_all()
    problems = shared_phase(records)
    for line in problems:
        echo(f"fork: warning: {line}")
    if not problems:
        echo("fork: checked: every arm of every seed had the baseline's first phase exactly")
    return records
