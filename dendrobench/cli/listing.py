"""``dendrobench list``: what is registered -- tasks (with modality, metric, data), engines (with
their parameters) and budgets. A plugin that fails to load is listed with its error.

Descriptions come from :mod:`dendrobench.cli.catalog`, so listing imports no task or engine
(and no torch) unless one changed since the last listing.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dendrobench.cli.catalog import Catalog, fingerprint
from dendrobench.contract.registry import plugins
from dendrobench.errors import ConfigError


def _budget_line(name: str, b) -> str:
    steps = f"{b.epochs}x{b.steps_per_epoch}" if b.steps_per_epoch else f"{b.epochs} epochs"
    extra = f", {b.max_train_examples} train examples" if b.max_train_examples else ""
    return f"{name}: {steps}, batch {b.batch_size}, lr {b.lr:g}{extra}"


def _describe_task(name: str) -> dict[str, Any]:
    from dendrobench.contract.options import declared, fields_doc
    from dendrobench.contract.registry import load_task_class

    cls = load_task_class(name)
    info = [f"{cls.modality:<10} metric={cls.metric:<11} {cls.description}"]
    info += [f"  data.source={source}: {what}" for source, what in cls.datasets.items()]
    options = declared(cls)
    if options is not None:
        info.append("  task_options: " + ", ".join(f"{k} ({v})" for k, v in fields_doc(options).items()))
    budgets = [f"  budget {_budget_line(bname, budget)}" for bname, budget in cls.budgets.items()]
    return {"info": info, "budgets": budgets, "budget_names": list(cls.budgets)}


def _describe_engine(name: str) -> dict[str, Any]:
    from dendrobench.contract.registry import get_engine_class

    cls = get_engine_class(name)
    params = cls.parameters_doc()
    return {"description": cls.description, "params": ", ".join(f"{k}={v}" for k, v in params.items())}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dendrobench list", description=__doc__)
    parser.add_argument("what", nargs="?", choices=["tasks", "engines", "budgets", "claims"], help="only one section")
    parser.add_argument("--results", action="append", type=Path, metavar="DIR",
                        help="with budgets: folders of records whose training clocks give the minutes per arm "
                             "measured on this machine (default: the results_dir setting's default)")
    args = parser.parse_args(argv)
    measured: dict = {}
    if args.what == "budgets":
        from dendrobench.running.measured import measured_minutes
        from dendrobench.running.settings import defaults

        measured = measured_minutes(args.results or [Path(str(defaults()["results_dir"]))])
    catalog = Catalog()
    out: list[str] = []
    pad = " " * 16
    if args.what in (None, "tasks", "budgets"):
        out.append("tasks:" if args.what != "budgets" else "budgets (budget=NAME; each task's four budgets below):")
        for name, plugin in sorted(plugins("task").items()):
            try:
                desc = catalog.describe(fingerprint("task", name, plugin.value, plugin.dist),
                                        lambda name=name: _describe_task(name))
            except ConfigError as exc:
                out.append(f"  {name:<16} unavailable: {exc}")
                continue
            if args.what == "budgets":
                out.append(f"  {name}")
            else:
                out.append(f"  {name:<16} {desc['info'][0]}")
                out.extend(f"  {pad} {line}" for line in desc["info"][1:])
            if args.what in (None, "budgets"):
                for bname, line in zip(desc["budget_names"], desc["budgets"]):
                    m = measured.get((name, bname))
                    out.append(f"  {pad} {line}" + (f"; {m.text()}" if m else ""))
            if plugin.dist and plugin.dist != "dendrobench":
                out.append(f"  {pad}   (plugin from {plugin.dist})")
    if args.what == "budgets":
        from dendrobench.contract.budget_fields import BUDGET_FIELD_DOCS

        out.append("budget fields (change one for a run with budget_overrides.FIELD=VALUE; docs/plugins.md):")
        out.extend(f"  {name:<26} {doc}" for name, doc in BUDGET_FIELD_DOCS.items())
    if args.what in (None, "engines"):
        out.append("engines (dendrites=NAME, parameters as dendrites.KEY=VALUE):")
        for name, plugin in sorted(plugins("engine").items()):
            try:
                desc = catalog.describe(fingerprint("engine", name, plugin.value, plugin.dist),
                                        lambda name=name: _describe_engine(name))
            except ConfigError as exc:
                out.append(f"  {name:<16} unavailable: {exc}")
                continue
            out.append(f"  {name:<16} {desc['description']}")
            if desc["params"]:
                out.append(f"  {pad}   {desc['params']}")
        dendrites = sorted(plugins("dendrite"))
        out.append(f"dendrite kinds (dendrites.dendrite=NAME): {', '.join(dendrites)}")
    if args.what in (None, "claims"):
        from dendrobench.evidence.claims import list_lines

        out.extend(list_lines())
    catalog.save()
    print("\n".join(out))
    return 0
