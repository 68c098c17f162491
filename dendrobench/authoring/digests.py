"""Content hashes of examples, for check-task's split checks (determinism, disjointness).

Kept apart from the checks themselves so a plugin's own tests can hash examples (for example to
compare two loaders) without the check machinery. Types are part of the encoding.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from dendrobench.contract.task import Task


def _feed(h: Any, obj: Any, depth: int = 0) -> None:
    """Feed a canonical encoding of ``obj`` into hash ``h``. Types are part of the encoding so
    ``1`` and ``1.0`` or a list and a tuple of the same values do not collide by accident."""
    if depth > 20:
        raise TypeError("example nests deeper than 20 levels")
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu()
        if obj.is_sparse:
            obj = obj.to_dense()
        h.update(f"T{obj.dtype}{tuple(obj.shape)}".encode())
        h.update(obj.reshape(-1).contiguous().view(torch.uint8).numpy().tobytes() if obj.numel() else b"")
    elif isinstance(obj, np.ndarray):
        if obj.dtype == object:
            h.update(f"O{obj.shape}".encode())
            for item in obj.reshape(-1):
                _feed(h, item, depth + 1)
        else:
            h.update(f"N{obj.dtype}{obj.shape}".encode())
            h.update(np.ascontiguousarray(obj).tobytes())
    elif obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, np.generic)):
        h.update(f"S{type(obj).__name__}:{obj!r};".encode())
    elif isinstance(obj, Mapping):
        h.update(f"M{len(obj)}".encode())
        for key in sorted(obj, key=repr):
            _feed(h, key, depth + 1)
            _feed(h, obj[key], depth + 1)
    elif isinstance(obj, (tuple, list)):
        h.update(f"L{type(obj).__name__}{len(obj)}".encode())
        for item in obj:
            _feed(h, item, depth + 1)
    elif callable(getattr(obj, "to_dict", None)):  # torch_geometric Data / HeteroData
        h.update(f"D{type(obj).__name__}".encode())
        _feed(h, obj.to_dict(), depth + 1)
    elif callable(getattr(obj, "tobytes", None)):  # PIL images
        h.update(f"B{type(obj).__name__}{getattr(obj, 'size', '')}{getattr(obj, 'mode', '')}".encode())
        h.update(obj.tobytes())
    else:
        raise TypeError(f"cannot hash an example part of type {type(obj).__module__}.{type(obj).__name__}; "
                        "give the task an example_key(example) method returning bytes, a string or tensors")


def example_digest(task: Task, example: Any) -> bytes:
    """A content hash of one example: the task's ``example_key(example)`` if it has one, else the
    example itself (tensors, arrays, numbers, strings, tuples, dicts, torch_geometric ``Data``)."""
    key = getattr(task, "example_key", None)
    h = hashlib.blake2b(digest_size=16)
    _feed(h, key(example) if callable(key) else example)
    return h.digest()


def split_digests(task: Task, dataset: Any, split: str) -> list[bytes]:
    """Digests of every example of a map-style split, in order."""
    if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
        raise TypeError(f"the {split} split is a {type(dataset).__name__}, not a map-style dataset with "
                        "len() and [i]; the runner needs both (deterministic subsets, epochs)")
    return [example_digest(task, dataset[i]) for i in range(len(dataset))]


