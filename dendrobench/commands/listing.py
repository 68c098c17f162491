"""``dendrobench list``: what is registered -- tasks (with modality, metric, data), engines (with
their parameters) and budgets. A plugin that fails to load is listed with its error."""

from __future__ import annotations

import argparse

from dendrobench.errors import ConfigError
from dendrobench.options import declared, fields_doc
from dendrobench.registry import engine_names, get_engine_class, load_task_class, plugins, task_names


def _budget_line(name: str, b) -> str:
    steps = f"{b.epochs}x{b.steps_per_epoch}" if b.steps_per_epoch else f"{b.epochs} epochs"
    extra = f", {b.max_train_examples} train examples" if b.max_train_examples else ""
    return f"{name}: {steps}, batch {b.batch_size}, lr {b.lr:g}{extra}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dendrobench list", description=__doc__)
    parser.add_argument("what", nargs="?", choices=["tasks", "engines", "budgets", "claims"], help="only one section")
    args = parser.parse_args(argv)
    out: list[str] = []
    if args.what in (None, "tasks", "budgets"):
        out.append("tasks:")
        for name in task_names():
            try:
                cls = load_task_class(name)
            except ConfigError as exc:
                out.append(f"  {name:<16} unavailable: {exc}")
                continue
            if args.what != "budgets":
                out.append(f"  {name:<16} {cls.modality:<10} metric={cls.metric:<11} {cls.description}")
                for source, what in cls.datasets.items():
                    out.append(f"  {'':<16}   data.source={source}: {what}")
                options = declared(cls)
                if options is not None:
                    out.append(f"  {'':<16}   task_options: " + ", ".join(
                        f"{k} ({v})" for k, v in fields_doc(options).items()))
            if args.what in (None, "budgets"):
                for bname, budget in cls.budgets.items():
                    out.append(f"  {'':<16}   budget {_budget_line(bname, budget)}")
            dist = plugins("task")[name].dist
            if dist and dist != "dendrobench":
                out.append(f"  {'':<16}   (plugin from {dist})")
    if args.what in (None, "engines"):
        out.append("engines (dendrites=NAME, parameters as dendrites.KEY=VALUE):")
        for name in engine_names():
            try:
                cls = get_engine_class(name)
            except ConfigError as exc:
                out.append(f"  {name:<16} unavailable: {exc}")
                continue
            out.append(f"  {name:<16} {cls.description}")
            params = cls.parameters_doc()
            if params:
                out.append(f"  {'':<16}   " + ", ".join(f"{k}={v}" for k, v in params.items()))
        dendrites = sorted(plugins("dendrite"))
        out.append(f"dendrite kinds (dendrites.dendrite=NAME): {', '.join(dendrites)}")
    if args.what in (None, "claims"):
        from dendrobench.published_claims import list_lines

        out.extend(list_lines())
    print("\n".join(out))
    return 0
