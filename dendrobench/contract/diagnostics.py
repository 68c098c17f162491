"""Where in a plugin's own code something went wrong, for error messages.

A plugin author reading "(at checks.py:185)" or a bare torch traceback learns nothing about their
own code; the runner and ``check-task`` both name the plugin's file and line instead, through the
functions here, so the two always say the same thing. Torch-free (only the standard library), so
any layer may use it.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
import sysconfig
import traceback
from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parent.parent  # dendrobench/
_BUILTIN_TASKS = _PACKAGE / "tasks"  # the built-in tasks are plugins too: their lines are worth naming
# libraries a plugin calls into: a frame inside them is never "the plugin's line"
_LIBRARIES = ("torch", "numpy", "scipy", "sklearn", "pandas", "torch_geometric", "torchvision", "monai",
              "datasets", "PIL", "tqdm", "rdkit", "hydra", "omegaconf", "jinja2")
_STDLIB = tuple(Path(p).resolve() for p in {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]})


def _is_library(path: Path) -> bool:
    if path.is_relative_to(_PACKAGE):
        return not path.is_relative_to(_BUILTIN_TASKS)
    if any(part in _LIBRARIES for part in path.parts[:-1]) and "site-packages" in path.parts:
        return True
    return any(path.is_relative_to(root) and "site-packages" not in path.parts for root in _STDLIB)


def _source_root(obj: Any) -> Path | None:
    """Where the plugin defining ``obj`` (a task instance or class) lives: the folder of its file
    (its package), or the file alone when that folder is an import root such as site-packages,
    which holds other libraries too. None when it cannot be found."""
    try:
        cls = obj if isinstance(obj, type) else type(obj)
        file = Path(inspect.getfile(cls)).resolve()
    except (TypeError, OSError):
        return None
    roots = set()
    for entry in sys.path:
        with contextlib.suppress(OSError):
            roots.add(Path(entry or ".").resolve())
    return file if file.parent in roots else file.parent


def plugin_frame(exc: BaseException, task: Any = None) -> tuple[str, int] | None:
    """(file name, line) of the innermost traceback frame in the plugin's own code: in the folder
    of ``task``'s source file when it is given and such a frame exists, else the innermost frame
    outside dendrobench (its built-in tasks excepted), the standard library and the libraries tasks
    call (torch, numpy, scikit-learn ...). None when every frame is library code."""
    frames = [(Path(f.filename), f.lineno) for f in traceback.extract_tb(exc.__traceback__)]
    resolved = []
    for path, line in frames:
        try:
            resolved.append((path.resolve(), line))
        except OSError:
            resolved.append((path, line))
    root = _source_root(task) if task is not None else None
    if root is not None and not _is_library(root if root.suffix == ".py" else root / "x.py"):
        mine = [(p, n) for p, n in resolved if p == root or p.is_relative_to(root)]
        if mine:
            return mine[-1][0].name, mine[-1][1] or 0
    outside = [(p, n) for p, n in resolved if not _is_library(p) and p.suffix == ".py"]
    if outside:
        return outside[-1][0].name, outside[-1][1] or 0
    return None


def plugin_location(exc: BaseException, task: Any = None) -> str:
    """`` (at myplugin.py:12)`` for :func:`plugin_frame`, or an empty string."""
    where = plugin_frame(exc, task)
    return f" (at {where[0]}:{where[1]})" if where else ""


def defined_at(func: Any) -> str:
    """``myplugin.py:12``: where a function or method is defined (its ``def`` line), or ''."""
    func = getattr(func, "__func__", func)
    try:
        _, line = inspect.getsourcelines(func)
        return f"{Path(inspect.getsourcefile(func) or '').name}:{line}"
    except (TypeError, OSError):
        return ""
