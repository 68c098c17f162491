"""``dendrobench new-task NAME``: scaffold a task plugin package that passes ``check-task`` as generated.

A contributor's first hour decides whether they add a task at all; starting from a package that
already installs, registers its entry point, runs and passes every contract check means they only
ever replace working pieces with their own. The templates are Jinja2 files shipped as package data
(``dendrobench/authoring/templates/new_task``), so this works from a non-editable wheel too.

Nothing that exists is ever destroyed: an existing, non-empty folder is refused unless ``--force``,
and even then only the generated files are written, each file it replaces first kept as ``*.bak``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from dendrobench.errors import UserError

PROG = "dendrobench new-task"
NAME_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
NAME_RULE = ("lower-case letters and digits, words joined by single hyphens, starting with a letter, "
             "at most 40 characters (e.g. 'ecg-arrhythmia', 'mnist3d')")

# What each modality's template generates: the stand-in data, the model and the metric.
MODALITIES: dict[str, dict[str, str]] = {
    "tabular": {"metric": "roc_auc", "data": "a binary scikit-learn make_classification table (1,200 rows, 20 features)",
                "model": "MLP", "meta": '{"in_features": x.shape[1]}'},
    "image": {"metric": "accuracy", "data": "noisy 12x12 images of four shapes (1,200 images)",
              "model": "small CNN", "meta": '{"in_channels": 1, "classes": len(CLASSES)}'},
    "graph": {"metric": "accuracy", "data": "12-node random vs. two-community graphs (1,200 dense adjacency matrices)",
              "model": "dense GCN", "meta": '{"classes": len(CLASSES)}'},
    "text": {"metric": "accuracy", "data": "token sequences from three Markov chains (1,200 sequences)",
             "model": "1D text CNN", "meta": '{"vocab": VOCAB, "classes": len(CLASSES)}'},
    "3d-volume": {"metric": "accuracy", "data": "noisy 8x8x8 volumes of three shapes (1,200 volumes)",
                  "model": "small 3D CNN", "meta": '{"in_channels": 1, "classes": len(CLASSES)}'},
}


@dataclass(frozen=True)
class Names:
    """Every name derived from the task name, so the templates never disagree with each other."""

    name: str  # the task name: `dendrobench task=NAME`, the entry point's name
    module: str  # python identifier form of the name
    package: str  # the import package of the plugin
    dist: str  # the distribution name on PyPI
    class_name: str

    @classmethod
    def from_task_name(cls, name: str) -> Names:
        module = name.replace("-", "_")
        parts = name.split("-")
        # `my-task` -> MyTask (not MyTaskTask); `ecg-beats` -> EcgBeatsTask
        class_name = "".join(p.capitalize() for p in parts) + ("" if parts[-1] == "task" else "Task")
        return cls(name=name, module=module, package=f"dendrobench_{module}", dist=f"dendrobench-{name}",
                   class_name=class_name)


def validate_name(name: str) -> None:
    """A task name becomes a CLI value, an entry-point name, a Python package and a PyPI name:
    only names valid as all four are accepted."""
    if not NAME_RE.match(name) or len(name) > 40:
        raise UserError(f"invalid task name {name!r}: use {NAME_RULE}")
    from dendrobench.contract.registry import plugins

    taken = plugins("task").get(name)
    if taken is not None and taken.dist != Names.from_task_name(name).dist:
        raise UserError(f"task name {name!r} is already registered by {taken.dist or 'another package'} "
                        f"({taken.value}); choose another name")


def template_root() -> Traversable:
    return files("dendrobench.authoring").joinpath("templates", "new_task")


def _walk(node: Traversable, prefix: str = "") -> list[tuple[str, Traversable]]:
    out = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        rel = f"{prefix}{child.name}"
        if child.is_dir():
            out.extend(_walk(child, rel + "/"))
        elif child.name.endswith(".j2"):
            out.append((rel, child))
    return out


def _target_path(rel: str, names: Names) -> str:
    """Template path -> generated path: ``package/`` is the import package, the test is named after the task."""
    rel = rel[: -len(".j2")]
    if rel.startswith("package/"):
        rel = f"{names.package}/{rel[len('package/'):]}"
    if rel == "tests/test_task.py":
        rel = f"tests/test_{names.module}.py"
    return rel


def render(name: str, modality: str) -> dict[str, str]:
    """Every generated file's relative path and text, rendered in memory (a template error leaves
    no half-written folder behind)."""
    import jinja2

    from dendrobench import __version__

    names = Names.from_task_name(name)
    spec = MODALITIES[modality]
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True,
                             lstrip_blocks=True, autoescape=False)  # noqa: S701 - generates Python/TOML, not HTML
    context: dict[str, Any] = {
        **names.__dict__, "modality": modality, "metric": spec["metric"], "data_blurb": spec["data"],
        "meta": spec["meta"], "dendrobench_version": __version__,
        "description": f"{modality} classification with a {spec['model']} on generated stand-in data (replace with yours)",
    }
    return {_target_path(rel, names): env.from_string(node.read_text(encoding="utf-8")).render(context)
            for rel, node in _walk(template_root())}


def _backup(path: Path) -> Path:
    candidate, n = path.with_name(path.name + ".bak"), 1
    while candidate.exists():
        candidate, n = path.with_name(f"{path.name}.bak{n}"), n + 1
    shutil.copy2(path, candidate)
    return candidate


def write(files_: dict[str, str], target: Path, force: bool) -> tuple[list[Path], list[tuple[Path, Path]]]:
    """Write the rendered files into ``target``; returns (written, [(replaced, backup)])."""
    if target.exists() and not target.is_dir():
        raise UserError(f"{target} exists and is not a folder; choose another --dir")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise UserError(f"folder {target} already exists and is not empty; choose another --dir, or pass --force "
                        "to write the generated files into it (files it replaces are kept as *.bak)")
    written, backups = [], []
    for rel, text in files_.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            if path.read_text(encoding="utf-8", errors="replace") == text:
                written.append(path)
                continue
            backups.append((path, _backup(path)))
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written, backups


def create(name: str, modality: str = "tabular", directory: Path | None = None, force: bool = False) -> Path:
    """Generate the plugin package for task ``name``; returns its folder. Raises UserError for bad input."""
    validate_name(name)
    if modality not in MODALITIES:
        raise UserError(f"unknown modality {modality!r}; valid modalities: {', '.join(MODALITIES)}")
    target = (directory or Path(Names.from_task_name(name).dist)).expanduser().resolve()
    write(render(name, modality), target, force)
    return target


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Scaffold a dendrobench task plugin package that passes "
                                "`dendrobench check-task` as generated.")
    p.add_argument("name", help=f"the task name: {NAME_RULE}")
    p.add_argument("--modality", default="tabular", choices=list(MODALITIES),
                   help="which stand-in data and model to start from (default: tabular)")
    p.add_argument("--dir", type=Path, default=None, help="the package folder to create (default: ./dendrobench-NAME)")
    p.add_argument("--force", action="store_true",
                   help="write into an existing folder; files replaced are kept as *.bak, nothing is deleted")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        validate_name(args.name)
        names = Names.from_task_name(args.name)
        target = (args.dir or Path(names.dist)).expanduser().resolve()
        written, backups = write(render(args.name, args.modality), target, args.force)
    except UserError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"{PROG}: error: cannot write the package: {exc}", file=sys.stderr)
        return 2
    print(f"created task plugin {args.name!r} ({args.modality}) in {target}")
    for path in written:
        print(f"  {path.relative_to(target)}")
    for path, bak in backups:
        print(f"  replaced {path.relative_to(target)} (previous version kept as {bak.name})")
    print(f"""next:
  pip install -e {target}
  dendrobench check-task {args.name}
  dendrobench task={args.name} budget=smoke seeds=1
then replace the generated data and model in {names.package}/task.py with yours (see its README).""")
    return 0
