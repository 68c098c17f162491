"""Sweeps across processes and machines: ``jobs=``, where each job reports, and the one pooled summary.

Hydra's launchers (joblib, submitit, Ray) run each job in another process, often on another
machine, so whatever a job keeps in memory never reaches the parent. Each job therefore writes an
*outcome file* (the records it produced or resumed, or the error that stopped it) into its own Hydra
output folder, ``<sweep dir>/<job number>/outcome.json``. The parent fixes the sweep folder itself
(an absolute path under ``results_dir``, which must be shared storage on a cluster anyway), knows
from Hydra's own sweep expansion how many jobs there are, and after the launcher returns reads every
outcome and the records they name. It prints ONE pooled table (rows grouped as the leaderboard
groups them, :func:`dendrobench.evidence.stats.summarize`), a failure list (including jobs that never
reported: killed, timed out, out of memory), and the exit code says whether anything failed.

``jobs=auto|N`` is sugar for Hydra's joblib launcher (``hydra/launcher=local``, a preset shipped in
``dendrobench/conf/hydra/launcher``) with ``n_jobs=N``; several seeds of one task become one job per
seed, and each arm of a seed a job of its own (see :func:`split_arms`). Runs pin their torch thread
count (``threads``, 1 by default) so that a job gives the same numbers whichever launcher ran it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dendrobench.errors import ConfigError

OUTCOME = "outcome.json"
LOCAL_LAUNCHER = "local"  # dendrobench/conf/hydra/launcher/local.yaml: joblib, one thread per job


# -- arguments --------------------------------------------------------------------------------
def split_top(value: str) -> list[str]:
    """Split a sweep value on commas outside brackets: ``[baseline],[dendrites]`` -> two values."""
    out, depth, cur = [], 0, ""
    for ch in value:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [v.strip() for v in out]


def parse_jobs(value: str) -> int:
    if value == "auto":
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not on Linux
            return max(1, os.cpu_count() or 1)
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"jobs must be 'auto' or an integer >= 1, got {value!r}")
    return int(value)


def _key(arg: str) -> str:
    return arg.partition("=")[0].lstrip("+~")


def is_multirun(args: Sequence[str]) -> bool:
    return any(a in ("-m", "--multirun") for a in args)


def _launcher(args: Sequence[str]) -> str | None:
    for a in args:
        if a.startswith(("hydra/launcher=", "+hydra/launcher=")):
            return a.partition("=")[2]
    return None


def _given(args: Sequence[str], key: str) -> str | None:
    """The last value given to ``key`` (``null`` counts as not given)."""
    got = [a.partition("=")[2].strip() for a in args if _key(a) == key]
    return got[-1] if got and got[-1] not in ("", "null") else None


def default_arms() -> str:
    """The ``arms`` default of the shipped config, in override form (``[baseline,dendrites,wide]``)."""
    import yaml

    conf = yaml.safe_load((Path(__file__).parent.parent / "conf" / "config.yaml").read_text(encoding="utf-8"))
    return "[" + ",".join(str(a) for a in conf["arms"]) + "]"


def split_arms(args: list[str]) -> list[str]:
    """One job per arm: ``arms=[baseline,dendrites,wide]`` becomes the sweep ``[baseline],[dendrites],[wide]``.

    Why: jobs are handed out in sweep order, and with one job per (task, seed) the last task's arms
    run one after another on one core while the other idles (the quick suite: wikitext2's three arms,
    about half its sequential time, started last). Arms vary fastest, so a seed's dendrites job is
    handed out before its wide job. ``wide`` then takes its parameter target from the engine's plan
    where the engine can say it (``gd`` with fixed switching, no early stopping) or waits for the
    dendrites job's record (the other engines). Left alone: an ``arms`` sweep of the user's own, a
    single arm, and claims (each protocol of a claim has its own arms).
    """
    if _given(args, "claim") is not None:
        return args
    given = [a for a in args if _key(a) == "arms"]
    value = given[-1].partition("=")[2].strip() if given else default_arms()
    items = split_top(value)
    if len(items) != 1 or not (value.startswith("[") and value.endswith("]")):
        return args
    arms = [x.strip() for x in value[1:-1].split(",") if x.strip()]
    if len(arms) < 2:
        return args
    return [*(a for a in args if _key(a) != "arms"), "arms=" + ",".join(f"[{a}]" for a in arms)]


def apply_jobs(args: list[str]) -> list[str]:
    """Turn ``jobs=N`` into a multirun with one job per (sweep point, seed, arm), N at a time.

    ``jobs=1`` (or no ``jobs``) leaves the arguments alone: runs go one after another in this
    process. With ``N > 1`` and no launcher of the user's own, the local preset (joblib) runs N jobs
    at a time; ``seeds=K`` (or the default 3) becomes ``seed=0,..,K-1`` so that seeds run in parallel,
    and the arms of each seed become jobs of their own (:func:`split_arms`).
    With a launcher of the user's own, ``jobs`` bounds how many jobs run at once (see
    :func:`launcher_settings`).
    """
    jobs_args = [a for a in args if _key(a) == "jobs"]
    rest = [a for a in args if _key(a) != "jobs"]
    n = parse_jobs(jobs_args[-1].partition("=")[2].strip()) if jobs_args else None
    if n is not None and n > 1:
        if not is_multirun(rest):
            rest = ["-m", *rest]
        if not any(_key(a) == "seed" and a.partition("=")[2].strip() != "null" for a in rest):
            seeds_arg = [a for a in rest if _key(a) == "seeds"]
            k = seeds_arg[-1].partition("=")[2].strip() if seeds_arg else "3"
            if k.isdigit() and int(k) >= 1:
                rest = [a for a in rest if _key(a) not in ("seeds", "seed")]
                rest.append("seed=" + ",".join(str(s) for s in range(int(k))))
        rest = split_arms(rest)
        if _launcher(rest) is None:
            rest.append(f"hydra/launcher={LOCAL_LAUNCHER}")
        if _launcher(rest) in ("local", "joblib") and not any(a.startswith("hydra.launcher.n_jobs=") for a in rest):
            rest.append(f"hydra.launcher.n_jobs={n}")
    return launcher_settings(rest, n) if is_multirun(rest) else rest


SUBMITIT_LAUNCHERS = ("slurm", "local_submitit", "submitit_slurm", "submitit_local")
BOUNDED_LAUNCHERS = ("local_submitit", "submitit_local")  # would otherwise start every job at once
# A generous ceiling per arm (minutes) on one CPU core: bbbp standard takes 10-14 min on 2 cores.
MINUTES_PER_ARM = {"smoke": 5, "quick": 20, "standard": 90, "converged": 30, "full": 720}


def timeout_minutes(args: Sequence[str]) -> int:
    """A SLURM time limit for one job, from the budget(s), arms and seeds per job in ``args``."""
    def values(key: str) -> list[str]:
        got = [a.partition("=")[2] for a in args if _key(a) == key]
        return split_top(got[-1]) if got else []

    per_arm = max((MINUTES_PER_ARM.get(b, MINUTES_PER_ARM["full"]) for b in values("budget")),
                  default=MINUTES_PER_ARM["quick"])
    arms = max((len([x for x in v.strip("[]").split(",") if x.strip()]) for v in values("arms")), default=3)
    seeds = 1 if any(v != "null" for v in values("seed")) else max(
        (int(v) for v in values("seeds") if v.isdigit()), default=3)
    return per_arm * max(1, arms) * seeds + 10


def launcher_settings(args: list[str], jobs: int | None) -> list[str]:
    """What a launcher needs from dendrobench unless the user said it: submitit's time limit from the
    budget, and a bound on how many jobs submitit's local executor runs at once."""
    launcher = _launcher(args)
    out = list(args)
    if launcher in SUBMITIT_LAUNCHERS and not any(a.startswith("hydra.launcher.timeout_min=") for a in args):
        out.append(f"hydra.launcher.timeout_min={timeout_minutes(args)}")
    if launcher in BOUNDED_LAUNCHERS and not any(a.startswith("hydra.sweeper.max_batch_size=") for a in args):
        out.append(f"hydra.sweeper.max_batch_size={jobs or parse_jobs('auto')}")
    return out


def fix_sweep_dir(args: list[str]) -> tuple[list[str], Path | None]:
    """Give the sweep an absolute folder chosen here, so the parent knows where jobs report.

    A folder under the (first) ``results_dir``: on a cluster that is shared storage already. A user's
    own ``hydra.sweep.dir`` is kept and read; one with ``${now:...}`` or ``${oc.env:...}`` is resolved
    here, once, and passed on resolved (the jobs would otherwise resolve the time themselves, and
    the parent could not find their outcomes). Only interpolations of Hydra's runtime keys
    (``${hydra.job.name}``) stay unresolved: then there is no pooled summary.
    """
    for i, a in enumerate(args):
        if a.startswith("hydra.sweep.dir="):
            value = a.partition("=")[2]
            resolved = resolve_path(value) if "$" in value else value
            if resolved is None:
                return args, None
            folder = Path(resolved).expanduser().resolve()
            return [*args[:i], f"hydra.sweep.dir={folder}", *args[i + 1:]], folder
    results = [a.partition("=")[2] for a in args if _key(a) == "results_dir"]
    base = split_top(results[-1])[0] if results else "./dendrobench-results"
    if "$" in base or "(" in base:
        return args, None
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S") + f"-{os.getpid()}"
    folder = Path(base).expanduser().resolve() / ".multirun" / stamp
    return [*args, f"hydra.sweep.dir={folder}"], folder


def resolve_path(value: str) -> str | None:
    """``value`` with its ``${now:...}`` / ``${oc.env:...}`` interpolations resolved, or None."""
    try:
        from hydra.core.utils import setup_globals
        from omegaconf import OmegaConf

        setup_globals()  # Hydra's resolvers (`now`), as a Hydra run registers them
        return str(OmegaConf.to_container(OmegaConf.create({"v": value}), resolve=True)["v"])
    except Exception:  # noqa: BLE001 - any key or resolver we cannot resolve outside a Hydra run
        return None


def expected_jobs(args: Sequence[str]) -> list[list[str]] | None:
    """The jobs Hydra's basic sweeper will launch, in order (their task overrides), or None."""
    try:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser

        task = [a for a in args if not a.startswith(("-", "hydra.", "hydra/", "+hydra", "~hydra"))]
        parsed = OverridesParser.create().parse_overrides(task)
        batches = BasicSweeper.split_arguments(parsed, None)
        return [list(job) for batch in batches for job in batch]
    except Exception:  # noqa: BLE001 - a sweep we cannot expand: count the outcomes we find
        return None


# -- the job side -----------------------------------------------------------------------------
def write_outcome(output_dir: str | Path, overrides: Sequence[str], records: Sequence[str],
                  error: str | None = None) -> None:
    """What one job produced: the record files it wrote or resumed, or the error that stopped it."""
    from dendrobench.running.results import atomic_write_json

    atomic_write_json(Path(output_dir) / OUTCOME, {
        "overrides": list(overrides), "records": list(records), "error": error,
        "host": os.uname().nodename, "pid": os.getpid(),
    })


# -- the parent side --------------------------------------------------------------------------
def collect(sweep_dir: Path, jobs: list[list[str]] | None) -> tuple[list[dict[str, Any]], list[str]]:
    """Every record the sweep's jobs name (each file once), and a line per job that did not finish."""
    from dendrobench.running.results import RecordError, read_record

    records: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    nums = range(len(jobs)) if jobs is not None else sorted(
        int(p.parent.name) for p in sweep_dir.glob(f"*/{OUTCOME}") if p.parent.name.isdigit())
    for num in nums:
        label = " ".join(jobs[num]) if jobs is not None else f"job {num}"
        path = sweep_dir / str(num) / OUTCOME
        try:
            outcome = json.loads(path.read_text())
        except (OSError, ValueError):
            problems.append(f"job {num} ({label}): no outcome: it was killed, timed out or crashed "
                            f"before reporting (logs: {sweep_dir / str(num)}, {sweep_dir / '.submitit'})")
            continue
        if outcome.get("error"):
            problems.append(f"job {num} ({label}): {outcome['error']}")
        for rec_path in outcome.get("records", []):
            if rec_path in records:
                continue
            try:
                records[rec_path] = read_record(Path(rec_path))
            except RecordError as exc:
                problems.append(f"job {num} ({label}): record {rec_path} unusable: {exc}")
    return list(records.values()), problems


def bad_runs(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("status") in ("failed", "diverged")]


def failure_summary(records: Sequence[dict[str, Any]], problems: Sequence[str] = ()) -> list[str]:
    """The lines that say what went wrong; empty when nothing did."""
    bad = bad_runs(records)
    lines = []
    if bad:
        failed = sum(r["status"] == "failed" for r in bad)
        lines.append(f"{len(bad)} of {len(records)} runs did not finish ok "
                     f"({failed} failed, {len(bad) - failed} diverged):")
        lines += [f"  {r['task']} {r['arm']} seed {r['seed']}: {r['status']}: {r.get('message')}" for r in bad]
    if problems:
        lines.append(f"{len(problems)} job(s) did not complete:")
        lines += [f"  {p}" for p in problems]
    return lines
