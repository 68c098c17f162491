"""What ``dendrobench list`` shows about each plugin, cached so that listing does not import torch.

Describing a task or an engine means importing its class, and with it torch, torch_geometric or
MONAI: 10-25 s on a cold start. The description only changes when the plugin's code or version
does, so it is kept in ``$DENDROBENCH_CACHE/catalog.json`` under a fingerprint of the entry point,
its distribution's version and the size and modification time of the module file (and of the
dendrobench code that renders it). A plugin that fails to load is never cached: installing what it
was missing fixes it on the next call.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

FORMAT = 1
_RENDERERS = ("cli/listing.py", "cli/catalog.py", "contract/options.py")


def cache_file() -> Path:
    env = os.environ.get("DENDROBENCH_CACHE")
    base = Path(env).expanduser() if env else Path.home() / ".cache" / "dendrobench"
    return base / "catalog.json"


def _stamp(path: str | None) -> str:
    try:
        st = os.stat(path) if path else None
    except OSError:
        return "?"
    return f"{st.st_size}:{st.st_mtime_ns}" if st else "?"


def _find_spec(name: str) -> Any:
    """``importlib.util.find_spec`` without importing the parent packages (whose ``__init__`` may
    import torch): each level is asked of the meta-path finders with its parent's search path."""
    if name in sys.modules:
        return getattr(sys.modules[name], "__spec__", None)
    parent = name.rpartition(".")[0]
    path = None
    if parent:
        parent_spec = _find_spec(parent)
        if parent_spec is None or parent_spec.submodule_search_locations is None:
            return None
        path = list(parent_spec.submodule_search_locations)
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        try:
            spec = find(name, path)
        except (ImportError, ValueError, TypeError):
            continue
        if spec is not None:
            return spec
    return None


def fingerprint(kind: str, name: str, target: str, dist: str | None) -> str:
    spec = _find_spec(target.partition(":")[0])
    origin = getattr(spec, "origin", None)
    try:
        dist_version = version(dist) if dist else "?"
    except PackageNotFoundError:
        dist_version = "?"
    here = Path(__file__).resolve().parent.parent
    renderers = ",".join(_stamp(str(here / r)) for r in _RENDERERS)
    return f"{FORMAT}|{kind}|{name}|{target}|{dist}|{dist_version}|{_stamp(origin)}|{renderers}"


class Catalog:
    """Cached plugin descriptions; ``describe`` renders (importing the plugin) only on a miss."""

    def __init__(self, path: Path | None = None):
        self.path = path or cache_file()
        try:
            self.data: dict[str, Any] = json.loads(self.path.read_text())
            if not isinstance(self.data, dict):
                self.data = {}
        except (OSError, ValueError):
            self.data = {}
        self.changed = False

    def describe(self, key: str, render: Callable[[], Any]) -> Any:
        if key in self.data:
            return self.data[key]
        value = render()  # raises for a plugin that cannot load: not cached
        self.data[key] = value
        self.changed = True
        return value

    def save(self) -> None:
        if not self.changed:
            return
        try:
            from dendrobench.running.results import atomic_write_json

            atomic_write_json(self.path, self.data)
        except Exception:  # noqa: BLE001 - a cache that cannot be written only costs time
            pass
