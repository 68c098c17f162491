"""The run configuration as a plain dataclass, validated with errors a user can act on.

Hydra composes the YAML under ``dendrobench/conf``; this module turns the composed mapping into a
:class:`RunConfig` and checks every value against what is registered, so a typo never reaches the
runner.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dendrobench.errors import ConfigError, int_setting, unknown_choice
from dendrobench.running.settings import ARMS, DATA_SOURCES, DEVICES, KNOWN_BUDGET_NAMES, PRECISIONS

__all__ = ["ARMS", "DEVICES", "RunConfig", "from_mapping", "validate", "check_writable", "effective_timeout"]
DATA_KEYS = ("source", "root")  # the keys under ``data.``
# run_timeout_s=null takes the budget's default: generous for the short budgets (a smoke run takes
# seconds to a few minutes, a quick one minutes), none for standard and full (hours are normal).
# run_timeout_s=0 means no limit.
DEFAULT_RUN_TIMEOUT_S: dict[str, float | None] = {"smoke": 1800.0, "quick": 4 * 3600.0, "standard": None,
                                                  "converged": None, "full": None}


@dataclass
class RunConfig:
    task: str
    budget: str = "quick"
    budget_overrides: dict[str, Any] = field(default_factory=dict)
    # the task's protocol options (its ``Options`` dataclass), e.g. {"split": "random_stratified"};
    # validated against the task in validate(), part of the record hash when not the defaults
    task_options: dict[str, Any] = field(default_factory=dict)
    arms: list[str] = field(default_factory=lambda: ["baseline", "dendrites", "wide"])
    seeds: int = 3
    seed: int | None = None  # a single seed, instead of 0..seeds-1
    results_dir: str = "./dendrobench-results"
    data_source: str = "offline"
    data_root: str | None = None
    device: str = "auto"
    precision: str = "fp32"  # fp32 | bf16: training forward passes under autocast (dendrobench/running/training.py)
    dendrites: dict[str, Any] = field(default_factory=lambda: {"engine": "gd"})
    compressed_width: float = 0.67
    wide_tolerance: float = 0.05
    threads: int | None = 1  # pinned per run, in the record identity (None: torch default)
    progress: bool | None = None  # null: bars only on a terminal and not under CI
    energy: bool = False  # measure each run's energy with CodeCarbon (dendrobench[energy]); not in the identity
    # A published claim to put on trial (baselines/claims/<id>.yaml); set, it decides the task,
    # data, options and budgets and runs several protocols (dendrobench/evidence/claims.py).
    claim: str | None = None
    # Set by the claim runner, never from the command line: which protocol this suite is
    # ("matched": equal steps; "published": the claim's own, unequal budget) and which split's
    # error the records report (a claim that read its figure off validation reports "val").
    protocol: str = "matched"
    report_split: str = "test"
    run_timeout_s: float | None = None  # null: DEFAULT_RUN_TIMEOUT_S[budget]; 0: no limit
    # protocol=tuned: trials per arm, tuning seeds per trial, Sobol seed (dendrobench/running/tuning.py)
    tuning: dict[str, Any] = field(default_factory=dict)
    fork: dict[str, Any] = field(default_factory=dict)  # protocol=fork: where the arms fork (dendrobench/running/fork.py)

    @property
    def engine(self) -> str:
        return str(self.dendrites.get("engine", "none"))

    @property
    def engine_params(self) -> dict[str, Any]:
        return {k: v for k, v in self.dendrites.items() if k != "engine"}

    @property
    def seed_list(self) -> list[int]:
        return [self.seed] if self.seed is not None else list(range(self.seeds))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def from_mapping(cfg: dict[str, Any]) -> RunConfig:
    """Build and validate a RunConfig from Hydra's composed config (already a plain dict)."""
    cfg = dict(cfg)
    data = cfg.pop("data", {}) or {}
    cfg.pop("jobs", None)  # the command's own setting (dendrobench.running.sweep): how many runs at once, not how one runs
    bad_data = sorted(set(data) - set(DATA_KEYS))
    if bad_data:
        raise ConfigError(f"unknown setting(s) {', '.join('data.' + k for k in bad_data)}; valid data settings: "
                          f"{', '.join('data.' + k for k in DATA_KEYS)}")
    known = set(RunConfig.__dataclass_fields__) - {"data_source", "data_root"}
    bad = sorted(set(cfg) - known)
    if bad:
        raise ConfigError(f"unknown setting(s) {bad}; valid settings: {', '.join(sorted(known | {'data.source', 'data.root'}))}")
    if not cfg.get("task"):
        from dendrobench.contract.registry import task_names

        raise ConfigError(f"no task given; say e.g. `dendrobench task=bbbp`. Tasks: {', '.join(task_names())}")
    run = RunConfig(**cfg, data_source=data.get("source", "offline"), data_root=data.get("root"))
    validate(run)
    return run


def validate(run: RunConfig) -> None:
    from dendrobench.contract.registry import get_engine_class, get_task

    run.seeds = int_setting(run.seeds, "seeds", 1)
    if run.data_root not in (None, "") and run.data_source == "offline":
        # issue 23: a data.root with the offline default used to be ignored, training on the stand-in
        raise ConfigError(f"data.root={run.data_root} is only read with data.source=online (the offline "
                          f"default never reads files); add data.source=online, or drop data.root")
    if run.seed is not None:
        run.seed = int_setting(run.seed, "seed", 0)
    if isinstance(run.arms, str):
        run.arms = [a.strip() for a in run.arms.strip("[]").split(",") if a.strip()]
    run.arms = list(run.arms)
    if not run.arms:
        raise ConfigError(f"arms is empty; valid arms: {', '.join(ARMS)}")
    for arm in run.arms:
        if arm not in ARMS:
            raise unknown_choice("arm", arm, ARMS)
    from dendrobench.running.results import PROTOCOLS

    if run.protocol not in PROTOCOLS:
        raise unknown_choice("protocol", run.protocol, PROTOCOLS)
    from dendrobench.running.protocol_settings import check_protocol

    check_protocol(run)  # protocol=published needs a claim; tuning.* checked
    if run.report_split not in ("test", "val"):
        raise unknown_choice("report_split", run.report_split, ("test", "val"))
    if run.budget not in KNOWN_BUDGET_NAMES:
        raise unknown_choice("budget", run.budget, KNOWN_BUDGET_NAMES)
    if run.data_source not in DATA_SOURCES:
        raise unknown_choice("data source", run.data_source, DATA_SOURCES)
    if run.device not in DEVICES:
        raise unknown_choice("device", run.device, DEVICES)
    if run.precision not in PRECISIONS:
        raise unknown_choice("precision", run.precision, PRECISIONS)
    if not 0 < float(run.compressed_width) <= 1:
        raise ConfigError(f"compressed_width must be in (0, 1], got {run.compressed_width}")
    if not 0 < float(run.wide_tolerance) < 1:
        raise ConfigError(f"wide_tolerance must be in (0, 1), got {run.wide_tolerance}")
    if not isinstance(run.energy, bool):
        raise ConfigError(f"energy must be true or false, got {run.energy!r}")
    if run.threads is not None:
        run.threads = int_setting(run.threads, "threads", 1)
    if run.run_timeout_s is not None:
        try:
            run.run_timeout_s = float(run.run_timeout_s)
        except (TypeError, ValueError):
            raise ConfigError(f"run_timeout_s must be a number of seconds (0: no limit), got {run.run_timeout_s!r}") from None
        if not run.run_timeout_s >= 0 or run.run_timeout_s == float("inf"):
            raise ConfigError(f"run_timeout_s must be >= 0 seconds (0: no limit), got {run.run_timeout_s!r}")
    task = get_task(run.task)  # unknown task -> error listing the registered ones
    from dendrobench.contract.options import parse_options

    run.task_options = dict(run.task_options or {})
    parse_options(task, run.task_options)  # unknown key or bad value -> error naming the valid ones
    task.budget(run.budget).with_overrides(dict(run.budget_overrides)).validate()
    get_engine_class(run.engine)(run.engine_params)  # unknown engine or parameter -> error
    check_writable(Path(run.results_dir))


def effective_timeout(run: RunConfig) -> float | None:
    """Seconds one run may take, or None for no limit (see DEFAULT_RUN_TIMEOUT_S)."""
    if run.run_timeout_s is None:
        return DEFAULT_RUN_TIMEOUT_S.get(run.budget)
    return float(run.run_timeout_s) or None


def check_writable(path: Path) -> None:
    """Fail before any training if records could not be written.

    By trying: ``os.access`` says yes to root for a read-only mount or ``/proc``, so the folder is
    created and a probe file written and removed (the folder stays: records go there next).
    """
    path = path.expanduser()
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"results_dir {str(path)!r} is not a folder ({probe} is a file)")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".dendrobench-write-probe-", dir=path)
        try:
            os.write(fd, b"{}")
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as exc:
        raise ConfigError(f"results_dir {str(path)!r} is not writable: {exc.strerror or exc}") from None
