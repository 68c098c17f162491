"""The package's layer order, enforced: no import cycles, no import from a lower layer to a higher one.

Read from the source with ``ast`` (nothing is imported), counting imports inside functions too: a
lazy import that hides a loop is still a loop. The order, lowest first, is the one
docs/architecture.md draws; a module may import from its own layer's package or from any lower
layer, never from a higher or a sibling one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# folder on disk -> the import name it is installed as (pyproject.toml's package-dir)
SOURCES = {"dendrobench": "dendrobench", "tasks": "dendrobench.tasks", "baselines": "dendrobench.baselines",
           "leaderboard": "dendrobench.leaderboard"}

# Lowest first. Several packages on one line are siblings: neither may import the other.
LAYERS: list[tuple[str, ...]] = [
    ("dendrobench.errors",),
    ("dendrobench.contract",),
    ("dendrobench.api",),
    ("dendrobench.baselines", "dendrobench.dendrites"),
    ("dendrobench.tasks",),
    ("dendrobench.running",),
    ("dendrobench.evidence",),
    ("dendrobench.leaderboard", "dendrobench.authoring"),
    ("dendrobench.cli",),
    ("dendrobench.__main__",),
]
# The package root holds only __version__; every layer may read it.
ANYONE = ("dendrobench",)
# Tasks are plugins: they see the plugin surface and the reference models, as an outside plugin does.
TASKS_MAY_IMPORT = ("dendrobench.api", "dendrobench.errors", "dendrobench.baselines", "dendrobench.tasks")


def modules() -> dict[str, Path]:
    found = {}
    for folder, package in SOURCES.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = [p for p in path.relative_to(ROOT / folder).with_suffix("").parts if p != "__init__"]
            found[".".join([package, *parts])] = path
    return found


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if path.name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_edges(mods: dict[str, Path]) -> set[tuple[str, str, int]]:
    """(importer, imported module, line) for every import of a project module, at any depth."""
    edges = set()
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                       and getattr(block.test, "id", getattr(block.test, "attr", None)) == "TYPE_CHECKING"
                       for stmt in block.body for n in ast.walk(stmt)}
        for node in ast.walk(tree):
            if id(node) in typing_only:  # annotations only: never imported at run time
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(name, path, node)
                # `from pkg import sub` imports the submodule when there is one, else a name from pkg
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for target in targets:
                while target and target not in mods:  # `import a.b.c` of a name inside a.b
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.add((name, target, node.lineno))
    return edges


def layer_of(module: str) -> int | None:
    for rank, packages in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in packages):
            return rank
    return None


def package_of(module: str) -> str:
    for packages in LAYERS:
        for p in packages:
            if module == p or module.startswith(p + "."):
                return p
    return module


def layer_violations(edges: set[tuple[str, str, int]], mods: dict[str, Path]) -> list[str]:
    bad = []
    for src, dst, line in sorted(edges):
        if dst in ANYONE:
            continue
        where = f"{mods[src].relative_to(ROOT)}:{line}"
        if src.startswith("dendrobench.tasks."):
            if not any(dst == p or dst.startswith(p + ".") for p in TASKS_MAY_IMPORT):
                bad.append(f"{where}: task {src} imports {dst} (tasks import only {', '.join(TASKS_MAY_IMPORT)})")
            continue
        a, b = layer_of(src), layer_of(dst)
        if a is None or b is None:
            bad.append(f"{where}: {src if a is None else dst} is in no declared layer")
        elif b > a or (b == a and package_of(src) != package_of(dst)):
            bad.append(f"{where}: {src} (layer {a}) imports {dst} (layer {b})")
    return bad


def cycles(edges: set[tuple[str, str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for src, dst, _ in edges:
        graph.setdefault(src, set()).add(dst)
        graph.setdefault(dst, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_module_is_in_a_layer():
    missing = [m for m in modules() if m not in ANYONE and layer_of(m) is None]
    assert not missing, f"add these to LAYERS (and docs/architecture.md): {missing}"


def test_no_import_cycles():
    found = cycles(import_edges(modules()))
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_no_upward_or_sideways_imports():
    bad = layer_violations(import_edges(modules()), modules())
    assert not bad, "\n".join(bad)


def test_the_checker_catches_a_cycle_and_an_upward_import(tmp_path):
    """The test above cannot pass by reading nothing: on a planted cycle and a planted upward
    import it fails."""
    mods = {"dendrobench.contract.a": tmp_path / "a.py", "dendrobench.contract.b": tmp_path / "b.py",
            "dendrobench.running.r": tmp_path / "r.py"}
    mods["dendrobench.contract.a"].write_text("from dendrobench.contract import b\n")
    mods["dendrobench.contract.b"].write_text("def f():\n    import dendrobench.contract.a\n")
    mods["dendrobench.running.r"].write_text("x = 1\n")
    edges = import_edges(mods)
    assert cycles(edges) == [["dendrobench.contract.a", "dendrobench.contract.b"]]
    mods["dendrobench.contract.b"].write_text("from dendrobench.running.r import x\n")
    global ROOT
    old, ROOT = ROOT, tmp_path
    try:
        bad = layer_violations(import_edges(mods), mods)
    finally:
        ROOT = old
    assert len(bad) == 1 and "imports dendrobench.running.r" in bad[0]


@pytest.mark.parametrize("package", ["contract", "running", "evidence", "authoring", "cli", "dendrites",
                                     "tasks", "baselines", "leaderboard"])
def test_each_subpackage_says_what_it_owns(package):
    name = "dendrobench" if package in ("contract", "running", "evidence", "authoring", "cli", "dendrites") else ""
    init = ROOT / name / package / "__init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
    assert doc and len(doc.split()) >= 20, f"{init.relative_to(ROOT)} needs a paragraph saying what it owns"
