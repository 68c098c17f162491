"""``dendrobench check-task NAME [--source online --root DIR]``: the contract checks from the shell.

Exit 0 when every check passes (warnings included), 1 when any fails (including a plugin that cannot
be loaded or instantiated), 2 for an unknown task or bad arguments. ``--source online --root DIR``
runs the data checks (determinism, disjoint splits, training) on the real files under DIR instead of
the offline stand-in, so duplicates across the real splits are found before a run is published.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from dendrobench.authoring.checks import CHECKS, PROG, CheckResult, _describe_exc, _plugin_line, task_checks
from dendrobench.contract.names import DATA_SOURCES
from dendrobench.errors import UserError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Run the task plugin contract checks on a task "
                                "(registered name or import path pkg.module:Class).")
    p.add_argument("name", nargs="?", help="task name (dendrobench list) or import path")
    p.add_argument("--only", default=None, help=f"comma-separated checks to run; all: {', '.join(CHECKS)}")
    p.add_argument("--list", action="store_true", help="list the checks with what each verifies")
    p.add_argument("--source", default="offline", choices=DATA_SOURCES,
                   help="the data the data checks load (default offline: the stand-in that ships with the task)")
    p.add_argument("--root", default=None, help="folder handed to load_data as root (with --source online)")
    return p


# a run's own spelling, accepted here too: the same words select the same data
_RUN_KEYS = {"data.source": "--source", "data.root": "--root"}


def _run_style(argv: list[str]) -> list[str]:
    """``data.source=online data.root=DIR`` (as a run takes them) -> ``--source online --root DIR``."""
    out = []
    for arg in argv:
        key, eq, value = arg.partition("=")
        out += [_RUN_KEYS[key], value] if eq and key in _RUN_KEYS else [arg]
    return out


def main(argv: list[str] | None = None) -> int:
    """``dendrobench check-task NAME``: 0 all pass, 1 any fail (including a plugin that cannot be
    loaded or instantiated), 2 unknown task or bad arguments."""
    args = _parser().parse_args(_run_style(sys.argv[1:] if argv is None else argv))
    if args.list:
        for name, fn in CHECKS.items():
            print(f"{name:20s} {' '.join((fn.__doc__ or '').split())}")
        return 0
    if not args.name:
        print(f"{PROG}: error: give a task name; valid tasks: {', '.join(_task_names()) or '(none registered)'}",
              file=sys.stderr)
        return 2
    root = None
    if args.root is not None:
        if args.source != "online":
            print(f"{PROG}: error: --root is only read with --source online (the offline data ships with the "
                  f"task); add --source online or drop --root", file=sys.stderr)
            return 2
        root = Path(args.root).expanduser()
        if not root.is_dir():
            print(f"{PROG}: error: --root {args.root!r} is not a folder; give the folder holding the task's "
                  f"online data", file=sys.stderr)
            return 2
    only = [c.strip() for c in args.only.split(",") if c.strip()] if args.only else None
    if only:
        bad = [c for c in only if c not in CHECKS]
        if bad:
            print(f"{PROG}: error: unknown check {bad[0]!r}; valid checks: {', '.join(CHECKS)}", file=sys.stderr)
            return 2
    from dendrobench.contract.registry import PluginLoadError, load_task_class, plugins

    t0 = time.perf_counter()
    try:
        cls = load_task_class(args.name)
    except PluginLoadError as exc:
        if args.name not in plugins("task"):  # an import path that does not import: a typo, most likely
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return 2
        return _report_broken(args.name, f"the plugin failed to load: {exc}")
    except UserError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    try:
        instance = cls()
    except Exception as exc:  # noqa: BLE001 - the task's constructor raised: a broken plugin, named
        return _report_broken(args.name, f"task {args.name!r}: creating the task raised {_describe_exc(exc)}{_plugin_line(exc, cls)}")
    checks = list(task_checks(instance, only, label=args.name, source=args.source, root=root))
    data = f", data {args.source}" + (f" from {root}" if root else "")
    print(f"{PROG} {args.name}: {cls.__module__}.{cls.__qualname__}"
          f" (modality {getattr(cls, 'modality', '?')}, metric {getattr(cls, 'metric', '?')}{data})")
    results = []
    for check in checks:
        result = check.run()
        results.append(result)
        _print_result(result)
    return _summary(args.name, results, time.perf_counter() - t0)


def _task_names() -> list[str]:
    from dendrobench.contract.registry import task_names

    return task_names()


def _print_result(result: CheckResult) -> None:
    print(f"  {result.status.upper():4s}  {result.name:20s} {result.reason}  [{result.seconds:.1f} s]", flush=True)


def _summary(label: str, results: list[CheckResult], seconds: float) -> int:
    failed = [r for r in results if r.status == "fail"]
    warned = [r for r in results if r.status == "warn"]
    passed = len(results) - len(failed)
    extra = f" ({len(warned)} with a warning)" if warned else ""
    verdict = "FAILED" if failed else "OK"
    names = f": {', '.join(r.name for r in failed)}" if failed else ""
    print(f"{label}: {verdict}: {passed} passed{extra}, {len(failed)} failed{names} in {seconds:.1f} s")
    return 1 if failed else 0


def _report_broken(label: str, reason: str) -> int:
    result = CheckResult("loads", "fail", reason)
    print(f"{PROG} {label}:")
    _print_result(result)
    return _summary(label, [result], 0.0)
