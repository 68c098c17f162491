"""Discovery of tasks, engines and dendrite kinds through entry points.

Built-in tasks register through the project's own entry points exactly like a third-party plugin
(as pytest and lm-evaluation-harness do); a task can also be named by import path
(``mypkg.mymodule:MyTask``). A plugin that fails to import is reported by name, never fatal to
the others.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from dendrobench.errors import ConfigError, unknown_choice

GROUPS = {"task": "dendrobench.tasks", "engine": "dendrobench.engines", "dendrite": "dendrobench.dendrites"}


@dataclass(frozen=True)
class Plugin:
    name: str
    value: str  # "module:attr"
    dist: str | None  # the distribution that registered it


@cache
def plugins(kind: str) -> dict[str, Plugin]:
    found: dict[str, Plugin] = {}
    for ep in entry_points(group=GROUPS[kind]):
        dist = getattr(getattr(ep, "dist", None), "name", None)
        found.setdefault(ep.name, Plugin(ep.name, ep.value, dist))
    return found


def refresh() -> None:
    """Forget what was discovered (after installing a plugin in the same process, e.g. in tests)."""
    plugins.cache_clear()
    _load.cache_clear()


def import_object(path: str) -> Any:
    module_name, _, attr = path.partition(":")
    module = importlib.import_module(module_name)
    obj = module
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part)
    return obj


@cache
def _load(kind: str, name: str) -> Any:
    known = plugins(kind)
    if name in known:
        target = known[name].value
    elif ":" in name or "." in name:
        target = name
    else:
        raise unknown_choice(kind, name, known)
    try:
        return import_object(target)
    except ConfigError:
        raise
    except ModuleNotFoundError as exc:
        module = target.partition(":")[0]
        if name not in known and exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            # the plugin's own module is missing (not a dependency inside it): say how to make it importable
            raise PluginLoadError(
                f"{kind} {name!r}: module {module!r} was not found (no module named {exc.name!r}); a {kind} given by "
                f"import path must be importable: install its package (pip install -e PATH) or put the folder "
                f"holding {module.split('.')[0]!r} on PYTHONPATH") from exc
        raise PluginLoadError(f"{kind} {name!r} ({target}) failed to load: {type(exc).__name__}: {exc}") from exc
    except AttributeError as exc:
        module, _, attr = target.partition(":")
        raise PluginLoadError(f"{kind} {name!r}: module {module!r} has no {attr!r} ({exc})") from exc
    except Exception as exc:  # a broken plugin is named, with what went wrong
        raise PluginLoadError(f"{kind} {name!r} ({target}) failed to load: {type(exc).__name__}: {exc}") from exc


class PluginLoadError(ConfigError):
    pass


def load_task_class(name: str) -> type:
    from dendrobench.contract.task import Task

    obj = _load("task", name)
    if not (isinstance(obj, type) and issubclass(obj, Task)):
        raise PluginLoadError(f"task {name!r} resolves to {obj!r}, which is not a dendrobench.contract.task.Task subclass")
    return obj


def get_task(name: str):
    """A fresh task instance by registered name or import path; a constructor that raises is
    reported with the plugin's name (in a multirun the other jobs go on)."""
    cls = load_task_class(name)
    try:
        return cls()
    except Exception as exc:
        raise PluginLoadError(f"task {name!r} ({cls.__module__}.{cls.__qualname__}) failed to start: "
                              f"{type(exc).__name__}: {exc}") from exc


def get_engine_class(name: str) -> type:
    from dendrobench.contract.engine import DendriteEngine

    obj = _load("engine", name)
    if not (isinstance(obj, type) and issubclass(obj, DendriteEngine)):
        raise PluginLoadError(f"engine {name!r} resolves to {obj!r}, which is not a DendriteEngine subclass")
    return obj


def get_dendrite_kind(name: str) -> Any:
    obj = _load("dendrite", name)
    if not callable(getattr(obj, "build", None)):
        raise PluginLoadError(f"dendrite {name!r} resolves to {obj!r}, which has no build(layer, **params)")
    return obj


def task_names() -> list[str]:
    return sorted(plugins("task"))


def engine_names() -> list[str]:
    return sorted(plugins("engine"))
