"""The ``dendrobench`` command.

``dendrobench task=bbbp ...`` runs a suite through Hydra (overrides, ``-m`` multirun, launchers);
subcommands (``list``, ``leaderboard``, ``check-task``, ``new-task``) are dispatched on the first
argument before Hydra sees anything. Overrides are checked against what is registered first, so a
typo gets a one-line error naming the valid choices (exit code 2), never a traceback.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dendrobench.errors import ConfigError, UserError, int_setting, unknown_choice
from dendrobench.running import settings
from dendrobench.running.sweep import apply_jobs, bad_runs, parse_jobs, split_top

PROG = "dendrobench"
CONF_DIR = Path(__file__).parent.parent / "conf"
TOP_LEVEL_KEYS = settings.top_level_keys()

HELP = f"""usage: {PROG} task=NAME [key=value ...]      run a task with and without dendrites
       {PROG} -m task=a,b seed=0,1,2 ...       multirun (Hydra sweep)
       {PROG} list [claims]                    tasks, engines, budgets (claims: the published claims)
       {PROG} claim=ID [seeds=N] [data.root=DIR]   put a published claim on trial (docs/claims.md)
       {PROG} claim-table RESULTS_DIR...       claimed | as published | matched steps | matched parameters
       {PROG} leaderboard RESULTS_DIR... --out SITE_DIR
       {PROG} check-task NAME [--source online --root DIR]  run the plugin contract checks
       {PROG} new-task NAME [--modality M]     scaffold a task plugin package

common keys: task, dendrites (none, gd, ...), arms=[baseline,dendrites,wide,compressed],
  budget (smoke, quick, standard, full), seeds=3 | seed=N, results_dir=./dendrobench-results,
  data.source (offline, online), data.root=DIR, device=auto, dendrites.max_dendrites=N,
  budget_overrides.epochs=N, task_options.KEY=VALUE (each task's options: dendrobench list)
  threads=1 (torch threads per run; part of the record identity), jobs=auto|N (runs in parallel:
  one process per job through Hydra's joblib launcher; several seeds of a task run side by side)
Hydra: --cfg job shows the composed config, --hydra-help shows Hydra's own options.

settings (key=value; the README's table says the same):
"""


def help_text() -> str:
    return HELP + settings.help_text()


_single_run_records: list[dict[str, Any]] = []


def _fail(message: str, code: int = 2) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


# -- subcommands ------------------------------------------------------------------------------
def _cmd_list(argv: list[str]) -> int:
    from dendrobench.cli.listing import main as list_main

    return list_main(argv)


def _cmd_leaderboard(argv: list[str]) -> int:
    from dendrobench.leaderboard.build import main as lb_main

    return lb_main(argv)


def _cmd_check_task(argv: list[str]) -> int:
    from dendrobench.authoring.check_cli import main as check_main

    return check_main(argv)


def _cmd_new_task(argv: list[str]) -> int:
    from dendrobench.authoring.scaffold import main as new_main

    return new_main(argv)


def _cmd_claim_table(argv: list[str]) -> int:
    from dendrobench.evidence.claims import table_main

    return table_main(argv)


SUBCOMMANDS: dict[str, Callable[[list[str]], int]] = {
    "claim-table": _cmd_claim_table,
    "list": _cmd_list,
    "leaderboard": _cmd_leaderboard,
    "check-task": _cmd_check_task,
    "new-task": _cmd_new_task,
}


# -- override pre-validation ------------------------------------------------------------------
def engine_configs() -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / "dendrites").glob("*.yaml"))


def _values(value: str) -> list[str]:
    """The values of a (possibly swept) override; sweep functions are left to Hydra.

    Commas inside brackets belong to a list: ``arms=[baseline],[dendrites]`` is a sweep over two lists.
    """
    if "(" in value or "${" in value:
        return []
    return split_top(value)


OPEN_KEYS = ("budget_overrides.", "dendrites.", "task_options.")
# Hydra options that take their value as the next argument (``--cfg job``)
HYDRA_VALUE_OPTIONS = ("--cfg", "-c", "--package", "-p", "--info", "-i", "--config-path", "-cp",
                       "--config-name", "-cn", "--config-dir", "-cd", "--experimental-rerun")


def prevalidate(args: list[str]) -> list[str]:
    """Check overrides against what is registered; returns them ready for Hydra.

    Keys under ``budget_overrides.``, ``task_options.`` and ``dendrites.`` are forced in (``++``) so that a misspelt
    parameter reaches our own validation, which names the valid ones, instead of Hydra's struct error.
    """
    from dendrobench.contract.registry import plugins
    from dendrobench.running.config import check_writable
    from dendrobench.running.settings import ARMS, DATA_SOURCES, DEVICES, KNOWN_BUDGET_NAMES

    multirun = any(a in ("-m", "--multirun") for a in args)
    out = []
    given: dict[str, str] = {}
    takes_value = False
    for arg in args:
        if takes_value:  # the value of a Hydra option given as a separate argument (`--cfg job`)
            out.append(arg)
            takes_value = False
            continue
        if arg.startswith("-"):
            out.append(arg)
            takes_value = arg in HYDRA_VALUE_OPTIONS
            continue
        if "=" not in arg:
            raise ConfigError(f"unexpected argument {arg!r}; give settings as key=value "
                              f"or a subcommand: {', '.join(SUBCOMMANDS)}")
        key, _, value = arg.partition("=")
        if key.startswith(("~", "hydra.", "hydra/", "+hydra.", "++hydra.")):
            out.append(arg)
            continue
        bare = key.lstrip("+")  # `+key` / `++key` add a key: it must still be one that something reads
        problem = settings.check_key(bare)
        if problem:
            raise ConfigError(problem)
        out.append(f"++{bare}={value}" if bare.startswith(OPEN_KEYS) else f"{bare}={value}" if key != bare else arg)
        given[bare] = value
        if bare == "arms" and not multirun and "," in value and not value.strip().startswith("["):
            raise ConfigError(f"arms={value} is a list: write arms=[{value}] (quoted in the shell if it needs it); "
                              f"with -m, arms=a,b sweeps over single arms")
        if bare == "results_dir":
            for v in _values(value):
                check_writable(Path(v))
        for v in _values(value):
            if bare == "task" and v not in plugins("task") and ":" not in v:
                raise unknown_choice("task", v, plugins("task"))
            elif bare == "dendrites" and v not in engine_configs():
                raise unknown_choice("engine", v, engine_configs())
            elif bare == "budget" and v not in KNOWN_BUDGET_NAMES:
                raise unknown_choice("budget", v, KNOWN_BUDGET_NAMES)
            elif bare == "data.source" and v not in DATA_SOURCES:
                raise unknown_choice("data source", v, DATA_SOURCES)
            elif bare == "claim" and v != "null":
                from dendrobench.evidence.claims import claim_ids

                if v not in claim_ids():
                    raise unknown_choice("claim", v, claim_ids())
                from dendrobench.evidence.claims import check_runnable, get_claim

                check_runnable(get_claim(v))  # before Hydra: one line, exit 2
            elif bare == "device" and v not in DEVICES:
                raise unknown_choice("device", v, DEVICES)
            elif bare == "arms":
                for arm in v.strip("[]").split(","):
                    if arm.strip() and arm.strip() not in ARMS:
                        raise unknown_choice("arm", arm.strip(), ARMS)
            elif bare in ("seeds", "seed") and v != "null":
                int_setting(v, bare, 1 if bare == "seeds" else 0)
    if "seed" in given and "seeds" in given and given["seed"] != "null":
        raise ConfigError(f"seed={given['seed']} and seeds={given['seeds']} contradict each other: give seed=N for "
                          f"one seed or seeds=N for seeds 0..N-1")
    if multirun and "results_dir" not in given:  # Hydra creates results_dir/.multirun before any job
        check_writable(Path(str(settings.defaults()["results_dir"])))
    if "claim" in given and given["claim"] != "null" and "budget" not in given:
        out.append("budget=standard")  # a claim runs its own budgets unless budget=smoke|quick scales them
    return out


# -- the Hydra job ----------------------------------------------------------------------------
def _is_multirun() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.get().mode == RunMode.MULTIRUN
    except Exception:  # noqa: BLE001 - outside Hydra
        return False


def run_job(cfg_dict: dict[str, Any], echo: Callable[[str], None] = print, table: bool = True) -> list[dict[str, Any]]:
    """Validate a composed config, run its suite, print the summary. Used by the CLI and tests.

    ``table=False`` (a job of a multirun) prints one line instead of the table: the parent prints
    one pooled table for the whole sweep (dendrobench.running.sweep).
    """
    from dendrobench.evidence.report import format_table
    from dendrobench.running.config import from_mapping
    from dendrobench.running.runner import Suite

    if cfg_dict.get("protocol") in ("tuned", "fork"):  # their own flows: dendrobench/running/tuning.py, fork.py
        from dendrobench.running.fork import run_fork
        from dendrobench.running.tuning import run_tuned

        records = (run_tuned if cfg_dict["protocol"] == "tuned" else run_fork)(cfg_dict, echo)
        if cfg_dict["protocol"] == "fork":
            from dendrobench.evidence.report import fork_summary

            for line in fork_summary(records):
                echo(line)
        echo("\n" + format_table(records) if table else f"{PROG}: job task={cfg_dict.get('task')} {cfg_dict['protocol']}: done")
        if table and records:
            from dendrobench.leaderboard.build import format_task_row

            echo(format_task_row(records, str(records[0]["task"])))
        return records
    if cfg_dict.get("claim"):
        return run_claim_job(cfg_dict, echo)
    run = from_mapping(cfg_dict)
    suite = Suite(run, echo=echo)  # pins the torch thread count (run.threads)
    echo(f"{PROG}: task={run.task} engine={run.engine} budget={run.budget} arms={','.join(suite.arms)} "
         f"seeds={run.seed_list} data={run.data_source} device={suite.device.type} threads={suite.threads}")
    records = suite.run_all()
    if not table:
        bad = len(bad_runs(records))
        echo(f"{PROG}: job task={run.task} seeds={run.seed_list} done: {len(records) - bad} ok"
             + (f", {bad} failed or diverged" if bad else ""))
        return records
    echo("")
    echo(format_table(records))
    echo(f"\nrecords: {suite.results_dir}")
    cores = parse_jobs("auto")
    if len(run.seed_list) > 1 and cores > 1:
        echo(f"tip: jobs=auto runs the seeds side by side, one process per seed ({cores} cores here; same records)")
    try:
        from dendrobench.leaderboard.build import format_task_row, site_command
    except ImportError:
        return records
    echo(format_task_row(records, str(records[0]["task"]) if records else run.task))  # the name, not an import path
    echo(f"build the leaderboard: {site_command([suite.results_dir])}")
    return records


def record_files(records: list[dict[str, Any]], results_dir: str) -> list[str]:
    from dendrobench.running.results import record_path

    root = Path(results_dir).expanduser().resolve()
    return [str(record_path(root, r["task"], r["arm"], r["seed"], r["config_hash"])) for r in records]


def run_claim_job(cfg_dict: dict[str, Any], echo: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """``claim=ID``: the claim's protocols seed by seed, then one summary table per protocol."""
    from dendrobench.evidence.claims import run_claim
    from dendrobench.evidence.report import format_table

    records = run_claim(cfg_dict, echo=echo)
    for protocol in ("published", "matched"):
        rows = [r for r in records if r.get("protocol") == protocol]
        if rows:
            echo(f"\n{protocol} protocol (claim {cfg_dict['claim']}):")
            echo(format_table(rows))
    echo(f"\nrecords: {Path(str(cfg_dict.get('results_dir', '.'))).expanduser().resolve()}")
    return records


def _hydra_entry(cfg: Any) -> None:
    from omegaconf import OmegaConf

    cfg_dict = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(cfg_dict, dict)
    if not _is_multirun():
        try:
            records = run_job(cfg_dict)  # type: ignore[arg-type]
        except UserError as exc:
            sys.exit(_fail(str(exc), exc.exit_code))
        _single_run_records.extend(records)
        return
    # A job of a sweep, possibly in another process or on another machine: it reports through its
    # outcome file, never by raising (Hydra would stop the sweep at the first failed batch).
    from hydra.core.hydra_config import HydraConfig

    from dendrobench.running.sweep import write_outcome

    hc = HydraConfig.get()
    label = " ".join(hc.overrides.task)
    records, error = [], None
    try:
        records = run_job(cfg_dict, table=False)  # type: ignore[arg-type]
    except UserError as exc:
        error = str(exc)
    except Exception as exc:  # noqa: BLE001 - recorded as this job's failure; the other jobs go on
        error = f"internal error: {type(exc).__name__}: {exc}"
    if error:
        print(f"{PROG}: error in job {label}: {error}", file=sys.stderr)
    write_outcome(hc.runtime.output_dir, hc.overrides.task,
                  record_files(records, str(cfg_dict.get("results_dir"))), error)


def parallel_tip(records: list[dict[str, Any]], args: list[str]) -> str | None:
    """One line pointing at ``jobs=auto`` after several runs went one after another on a machine with
    more cores (2 processes x 1 thread gave 1.8x the throughput here: docs/scaling.md)."""
    from dendrobench.running.sweep import parse_jobs

    cores = parse_jobs("auto")
    if len(records) < 2 or cores < 2 or any(a.startswith("jobs=") for a in args):
        return None
    return (f"tip: these {len(records)} runs went one after another; jobs=auto runs seeds and arms side by "
            f"side on the {cores} cores here, with the same records (docs/scaling.md)")


def _report(records: list[dict[str, Any]], problems: list[str], pooled: bool) -> int:
    """The pooled table (multirun) and the failure list; exit 1 when any run failed or diverged."""
    from dendrobench.evidence.report import format_pooled
    from dendrobench.running.sweep import failure_summary

    if pooled:
        print(f"\n{PROG}: {len(records)} runs over the sweep\n")
        print(format_pooled(records))
    lines = failure_summary(records, problems)
    if lines:
        print(f"{PROG}: " + "\n".join(lines), file=sys.stderr)
        return 1
    return 0


def _version_base() -> dict[str, str]:
    """Hydra 1.3 needs ``version_base`` to skip its 1.1 compatibility mode; Hydra 1.4 deprecates the
    argument and warns on stderr (which would break the one-line error promise). The launcher plugins
    require ``hydra-core>=1.1.0.dev7``, which lets pip pick a 1.4 pre-release, so both must work."""
    from importlib.metadata import version

    major_minor = tuple(int(p) for p in version("hydra-core").split(".")[:2])
    return {"version_base": "1.3"} if major_minor < (1, 4) else {}


def _quiet_plugin_imports() -> None:
    """hydra-ray-launcher registers a resolver the deprecated way at import; Hydra's plugin scanner
    then writes the warning to stderr on every command. Imported here first, with warnings off."""
    import importlib.util

    try:  # find_spec imports the parent: no launcher plugin at all means no hydra_plugins package
        if importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is None:
            return
    except ModuleNotFoundError:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import hydra_plugins.hydra_ray_launcher._config  # noqa: F401
        except Exception:  # noqa: BLE001 - Hydra reports a broken plugin itself
            pass


def _run_hydra(args: list[str]) -> int:
    import hydra

    _quiet_plugin_imports()

    from dendrobench.running.sweep import collect, expected_jobs, fix_sweep_dir, is_multirun

    multirun = is_multirun(args)
    sweep_dir, jobs = None, None
    if multirun:
        args, sweep_dir = fix_sweep_dir(args)
        jobs = expected_jobs(args)
    # An absolute path: the configs are package data, found wherever the package is installed.
    main_fn = hydra.main(config_path=str(CONF_DIR), config_name="config", **_version_base())(_hydra_entry)
    saved = sys.argv
    sys.argv = [PROG, *args]
    _single_run_records.clear()
    try:
        main_fn()
    finally:
        sys.argv = saved
    if not multirun:
        tip = parallel_tip(list(_single_run_records), args)
        if tip:
            print(tip)
        return _report(list(_single_run_records), [], pooled=False)
    if sweep_dir is None:
        print(f"{PROG}: the sweep folder has interpolations; no pooled summary (see each job's output)",
              file=sys.stderr)
        return 0
    records, problems = collect(sweep_dir, jobs)
    return _report(records, problems, pooled=True)


def main(argv: list[str] | None = None) -> int:
    # Before torch is imported: OpenMP threads that spin while waiting make small models 15-100x
    # slower whenever another process holds a core (measured on 2 shared cores); passive waiting
    # costs nothing measurable when the machine is idle.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # Ray's log de-duplication merges the lines of parallel jobs into garbled tables
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    # torch_geometric scripts a helper at import time; torch's deprecation notice is not the user's business
    warnings.filterwarnings("ignore", message=r"`torch.jit.script` is deprecated", category=FutureWarning)
    # Hydra 1.4 deprecates the version_base we pass for 1.3 compatibility: not the user's business either
    warnings.filterwarnings("ignore", message=r"The version_base parameter is deprecated")
    args = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("HYDRA_FULL_ERROR", "0")
    if not args or args[0] in ("-h", "--help", "help") or (
            args[0] not in SUBCOMMANDS and ("--help" in args or "-h" in args)):  # `task=bbbp --help` too
        print(help_text())
        return 0 if args else 2
    if "--hydra-help" in args and args[0] not in SUBCOMMANDS:  # the same whatever the overrides; composing them would fail (no task key yet)
        args = ["--hydra-help"]
    if args[0] in ("--version", "-V"):
        from dendrobench import __version__

        print(f"{PROG} {__version__}")
        return 0
    from dendrobench.running import interrupts, watchdog

    interrupts.install()
    if argv is None:  # this process is the dendrobench command: a run stuck in C may restart it
        watchdog.restart_argv = [sys.executable, *sys.orig_argv[1:]]
    try:
        if args[0] in SUBCOMMANDS:
            return SUBCOMMANDS[args[0]](args[1:])
        return _run_hydra(prevalidate(apply_jobs(args)))
    except UserError as exc:
        return _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        import signal

        if interrupts.received_signal() == signal.SIGTERM:
            return _fail("stopped (SIGTERM); finished runs are kept and resume on the next call", 143)
        return _fail("stopped (interrupted); finished runs are kept and resume on the next call", 130)
    except Exception as exc:  # noqa: BLE001 - never a bare traceback for a user
        if os.environ.get("DENDROBENCH_DEBUG"):
            raise
        return _fail(f"internal error: {type(exc).__name__}: {exc} (set DENDROBENCH_DEBUG=1 for the traceback)", 1)
