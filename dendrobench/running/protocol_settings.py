"""The settings of the run protocols (``tuning.*``, ``fork.*``) and their checks, without the runners.

Kept apart from ``tuning.py`` and ``fork.py`` because ``config.validate`` checks these before any
training, while the protocol runners drive the ``Suite``: one module for both would be an import loop.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dendrobench.errors import ConfigError, int_setting

if TYPE_CHECKING:
    from dendrobench.running.config import RunConfig

# Tuning seeds are TUNING_SEED_BASE + j: far above any evaluation seed (0..seeds-1), so the data
# split, initial weights and data order a trial sees are never an evaluation seed's.
TUNING_SEED_BASE = 1_000_000
TUNING_KEYS = {"trials": 8, "seeds": 1, "sampler_seed": 0}
USER_PROTOCOLS = ("matched", "tuned", "fork")  # what protocol= takes on the command line ("published": claim=ID)
FORK_KEYS = {"at": "half", "patience": 2}


# -- fork settings ---------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ForkSettings:
    at: str = "half"  # "half" | "plateau" | an epoch number, as text
    patience: int = 2  # plateau: epochs without gain before the fork

    def epoch(self, epochs: int) -> int | None:
        """The fork epoch for a budget of ``epochs``; None for a plateau fork (decided in training)."""
        if self.at == "plateau":
            return None
        return max(1, epochs // 2) if self.at == "half" else int(self.at)


def _with_defaults(raw: dict[str, Any] | None, defaults: dict[str, Any], prefix: str) -> dict[str, Any]:
    """``raw`` over ``defaults``; a key not in ``defaults`` is refused with the valid ``prefix.KEY`` names."""
    raw = dict(raw or {})
    bad = sorted(set(raw) - set(defaults))
    if bad:
        raise ConfigError(f"unknown setting(s) {', '.join(prefix + '.' + k for k in bad)}; valid {prefix} settings: "
                          f"{', '.join(prefix + '.' + k for k in defaults)}")
    return {**defaults, **raw}


def parse_fork(raw: dict[str, Any] | None) -> ForkSettings:
    got = _with_defaults(raw, FORK_KEYS, "fork")
    at = str(got["at"]).strip()
    if at not in ("half", "plateau") and not (at.isdigit() and int(at) >= 1):
        raise ConfigError(f"fork.at must be half, plateau or an epoch number >= 1, got {got['at']!r}")
    return ForkSettings(at=at, patience=int_setting(got["patience"], "fork.patience", 1))


# -- tuning settings ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class TuningSettings:
    trials: int = 8
    seeds: int = 1
    sampler_seed: int = 0

    @property
    def seed_list(self) -> list[int]:
        return [TUNING_SEED_BASE + j for j in range(self.seeds)]


def parse_tuning(raw: dict[str, Any] | None) -> TuningSettings:
    got = _with_defaults(raw, TUNING_KEYS, "tuning")
    return TuningSettings(trials=int_setting(got["trials"], "tuning.trials", 1),
                          seeds=int_setting(got["seeds"], "tuning.seeds", 1),
                          sampler_seed=int_setting(got["sampler_seed"], "tuning.sampler_seed", 0))


def check_protocol(run: RunConfig) -> None:
    """The checks :func:`dendrobench.running.config.validate` runs for the protocol settings."""
    if run.protocol == "published" and not run.claim:
        raise ConfigError("protocol=published is a claim's own protocol: say claim=ID (dendrobench list claims); "
                          f"valid protocols: {', '.join(USER_PROTOCOLS)}")
    if "base_more_training" in run.arms and run.protocol != "published":
        raise ConfigError("arm base_more_training is a claim's own (the baseline given the published dendritic "
                          "arm's extra steps): run claim=ID; valid arms here: baseline, dendrites, wide, compressed")
    settings = parse_tuning(run.tuning)
    if run.protocol == "tuned" and max(run.seed_list) >= TUNING_SEED_BASE:
        raise ConfigError(f"evaluation seeds must stay below {TUNING_SEED_BASE} under protocol=tuned "
                          f"(the tuning seeds start there), got seed {max(run.seed_list)}")
    run.tuning = dataclasses.asdict(settings)
    run.fork = dataclasses.asdict(parse_fork(run.fork))
