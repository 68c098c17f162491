"""Every run setting, what it means and what it accepts: the one source for ``dendrobench --help``,
the CLI's check of keys, and the README's settings table (a test keeps the README equal to
:func:`markdown_table`). Defaults are read from ``conf/config.yaml``, the file Hydra composes, so
they cannot drift either.

Kept free of heavy imports: ``--help`` and a bad key answer without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

CONF_DIR = Path(__file__).parent.parent / "conf"

# The closed sets of choices live in the contract (re-exported here for the settings table).
from dendrobench.contract.names import (  # noqa: E402, F401
    ARMS,
    BUDGET_NAMES,
    DATA_SOURCES,
    DEVICES,
    KNOWN_BUDGET_NAMES,
    PRECISIONS,
)


@dataclass(frozen=True)
class Setting:
    key: str
    meaning: str
    valid: str
    open: bool = False  # a group whose sub-keys are checked by their owner (budget fields, engine parameters)


SETTINGS: tuple[Setting, ...] = (
    Setting("task", "the task to run", "a registered task (`dendrobench list`) or an import path `pkg.module:Class`"),
    Setting("claim", "a published claim to put on trial; it sets the task, data, options and budgets (docs/claims.md)",
            "`null` or a claim id (`dendrobench list claims`)"),
    Setting("dendrites", "dendrite engine; `dendrites.KEY=VALUE` sets its parameters (`dendrobench list engines`)",
            "`none`, `gd`, `cc`, `perforatedai`", open=True),
    Setting("budget", "training budget, the same for every arm",
            "`smoke` (seconds), `quick` (~1 min per arm on 2 CPU cores), `standard` (paper-like on CPU), "
            "`converged` (where a task has it: the CPU budget whose baseline passes the convergence rule), "
            "`full` (the published setup, GPU scale)"),
    Setting("budget_overrides", "change budget fields for every arm, e.g. `budget_overrides.epochs=5`",
            "fields of the budget (`dendrobench list budgets`)", open=True),
    Setting("task_options", "the task's protocol options, e.g. `task_options.split=random_stratified`",
            "the options each task lists (`dendrobench list`)", open=True),
    Setting("arms", "which arms to train", "a list in brackets of `baseline`, `dendrites`, `wide`, `compressed`"),
    Setting("seeds", "run seeds `0..seeds-1`", "an integer >= 1 (not together with `seed`)"),
    Setting("seed", "run exactly this one seed instead", "`null` or an integer >= 0 (not together with `seeds`)"),
    Setting("results_dir", "where one JSON record per run goes (checked writable before any training)", "a folder"),
    Setting("data.source", "which data", "`offline` (ships in a package or is generated; never touches the network, "
            "enforced) or `online` (the real full dataset through its standard loader)"),
    Setting("data.root", "where online data lives", "`null` (the loader's own cache folder) or a folder"),
    Setting("device", "where to train", "`auto`, `cpu`, `cuda`, `mps`"),
    Setting("precision", "training arithmetic: `bf16` runs each training forward pass under bf16 autocast "
            "(backward and optimizer in the parameters' fp32; validation and test stay fp32); part of the "
            "record identity when not fp32", "`fp32`, `bf16`"),
    Setting("compressed_width", "width of the compressed arm's base model", "a number in (0, 1]"),
    Setting("wide_tolerance", "the wide arm's parameters must match the dendritic model's within this",
            "a number in (0, 1)"),
    Setting("threads", "torch threads per run; part of the record identity", "`null` (torch's default) or an integer >= 1"),
    Setting("progress", "progress bars", "`null` (only on a terminal outside CI), `true`, `false`"),
    Setting("jobs", "runs side by side, one process and one thread each, through Hydra's joblib launcher; several "
            "seeds of one task become one job per seed and arm (SLURM, submitit, Ray: docs/scaling.md)",
            "`auto` (every core) or an integer >= 1 (`1`: one run after another in this process)"),
    Setting("energy", "each run's energy through CodeCarbon (`pip install \"dendrobench[energy]\"`): measured with "
            "RAPL where the machine has it, else marked estimated; shown as a ratio to the baseline",
            "`true`, `false`"),
    Setting("protocol", "how the arms are compared: `matched` gives every arm the task's budget and hyperparameters; "
            "`tuned` tunes each arm separately with the same K trials (learning rate, weight decay and the "
            "engine's main knob, scored on validation with tuning seeds), then runs each arm's best settings on "
            "the evaluation seeds (dendrobench/running/tuning.py); `fork` trains one shared baseline phase per seed, then "
            "continues it three ways for the same steps: dendrites, the base network alone, plain units of the "
            "dendrites' parameter count at the same layers (dendrobench/running/fork.py; needs `dendrites=gd`)",
            "`matched`, `tuned`, `fork` (`published` is a claim's own: `claim=ID`)"),
    Setting("tuning.trials", "protocol=tuned: K, the trials per arm (the first K points of a scrambled Sobol "
            "sequence; the same K and points for every arm)", "an integer >= 1"),
    Setting("tuning.seeds", "protocol=tuned: tuning seeds per trial (1000000, 1000001, ...: never an evaluation "
            "seed); a trial's score is its mean validation error over them", "an integer >= 1"),
    Setting("tuning.sampler_seed", "protocol=tuned: the Sobol sequence's scrambling seed", "an integer >= 0"),
    Setting("fork.at", "protocol=fork: the epoch after which the arms fork", "`half` (of the budget's epochs), "
            "`plateau` (the first epoch after `fork.patience` epochs without a better validation score), or an "
            "epoch number below the budget's epochs"),
    Setting("fork.patience", "protocol=fork, `fork.at=plateau`: epochs without gain that make a plateau",
            "an integer >= 1"),
    Setting("run_timeout_s", "a run taking longer is stopped and recorded `failed` (the sweep goes on)",
            "`null` (budget default: smoke 1800, quick 14400, standard and full none), `0` (no limit), "
            "or seconds"),
)


def _flatten(cfg: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        if key in ("defaults", "hydra"):
            continue
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@cache
def defaults() -> dict[str, Any]:
    """``key -> default`` from conf/config.yaml (``dendrites`` from its defaults list)."""
    import yaml

    cfg = yaml.safe_load((CONF_DIR / "config.yaml").read_text())
    flat = _flatten(cfg)
    for entry in cfg.get("defaults", []):
        if isinstance(entry, dict) and "dendrites" in entry:
            flat["dendrites"] = entry["dendrites"]
    return flat


def keys() -> list[str]:
    return [s.key for s in SETTINGS]


def top_level_keys() -> tuple[str, ...]:
    return tuple(dict.fromkeys(k.split(".")[0] for k in keys()))


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[" + ",".join(map(str, value)) + "]"
    if isinstance(value, dict):
        return "{}" if not value else str(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def check_key(key: str) -> str | None:
    """None if ``key`` (``data.source``, ``budget_overrides.epochs``...) is read by something; else why not."""
    known = keys()
    if key in known:
        return None
    top = key.split(".")[0]
    for s in SETTINGS:
        if s.open and key.startswith(s.key + "."):
            return None
    if top in top_level_keys() and top not in known:  # a group such as data.*
        group = [k for k in known if k.startswith(top + ".")]
        return f"unknown setting {key!r}; valid {top} settings: {', '.join(group)}"
    return f"unknown setting {key!r}; valid settings: {', '.join(known)}"


def help_text() -> str:
    """The settings block of ``dendrobench --help``."""
    dflt = defaults()
    lines = []
    for s in SETTINGS:
        plain = s.valid.replace("`", "")
        lines.append(f"  {s.key} (default: {_show(dflt.get(s.key))})\n      {s.meaning.replace('`', '')}; "
                     f"valid: {plain}")
    return "\n".join(lines)


def markdown_table() -> str:
    """The README's settings table."""
    dflt = defaults()
    rows = ["| key | default | meaning | valid values |", "|---|---|---|---|"]
    for s in SETTINGS:
        default = "—" if dflt.get(s.key) is None and s.key == "task" else f"`{_show(dflt.get(s.key))}`"
        rows.append(f"| `{s.key}` | {default} | {s.meaning} | {s.valid} |")
    return "\n".join(rows)
