"""What the checks of one task share, and their outcome types (the checks are in checks.py).

``_TaskUnderTest`` loads the task's data once per source (offline under the network guard; online,
with ``--root``, without it), hashes the splits once and keeps failures, so one broken ``load_data``
is named in every check that needs the data, with the plugin's own file and line.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dendrobench.authoring.digests import split_digests
from dendrobench.contract.diagnostics import plugin_location
from dendrobench.contract.task import Budget, Task, TaskData, require_task_data
from dendrobench.running.netguard import no_network as _no_network


class CheckFailed(AssertionError):
    """A contract check failed; the message is the reason. An AssertionError so pytest shows it plainly."""


@dataclass
class CheckResult:
    """The outcome of one check: ``status`` is ``pass``, ``warn`` (passes, but look) or ``fail``."""

    name: str
    status: str
    reason: str
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status != "fail"


class _Warn(Exception):
    """Raised inside a check body: the check passes with a warning (the message says what to look at)."""


# -- network guard ----------------------------------------------------------------------------
def no_network(attempts: list[str]) -> contextlib.AbstractContextManager[list[str]]:
    """The offline guard of :mod:`dendrobench.running.netguard`, labelled for check-task messages."""
    return _no_network(attempts, label="dendrobench check-task")


# -- shared state of one task's checks --------------------------------------------------------
def _describe_exc(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _plugin_line(exc: BaseException, task: Any = None) -> str:
    """Where the plugin's own code raised (`` (at myplugin.py:12)``), not the innermost frame, which
    is usually inside dendrobench or torch (dendrobench.contract.diagnostics, shared with the runner)."""
    return plugin_location(exc, task)


def _shape_hint(task: Task, output: Any, batch: Any) -> str:
    """Why ``task.loss(output, batch)`` may have failed, when the model's output and the targets have
    the same number of values in different shapes (the usual (n, 1) output vs (n,) targets)."""
    try:
        target = task.targets(batch)
    except Exception:  # noqa: BLE001 - no targets to compare with: no hint
        return ""
    if not (isinstance(output, torch.Tensor) and isinstance(target, torch.Tensor)) or output.shape == target.shape:
        return ""
    if output.numel() != target.numel():
        return ""
    return (f"; the model's output has shape {tuple(output.shape)} and the targets {tuple(target.shape)}: "
            f"return output.squeeze(-1) from the model's forward (or reshape it in loss and predictions)")


class _TaskUnderTest:
    """One task and what its checks share: the offline data (loaded once under the network guard),
    a second load for determinism, and the digests of every split. Failures are kept and re-raised
    for every check that needs them, so one broken ``load_data`` is named in each dependent check."""

    def __init__(self, task: Task, label: str, seed: int = 0, source: str = "offline", root: Path | None = None):
        self.task = task
        self.label = label
        self.seed = seed
        self.source = source  # the data the data checks run on: the offline stand-in, or the real files
        self.root = root
        self.network_attempts: list[str] = []
        self._loaded: dict[str, TaskData | BaseException] = {}
        self._digests: dict[str, list[bytes]] | BaseException | None = None

    def fail(self, what: str, exc: BaseException) -> CheckFailed:
        return CheckFailed(f"task {self.label!r}: {what} raised {_describe_exc(exc)}{_plugin_line(exc, self.task)}")

    def call(self, source: str) -> str:
        root = f", root={str(self.root)!r}" if source == "online" and self.root is not None else ""
        return f"load_data({source!r}, seed={self.seed}{root})"

    def load(self, task: Task, source: str, attempts: list[str] | None = None) -> TaskData:
        """One load as the runner does it: offline under the network guard, online (with ``root``)
        without it, since the real data may legitimately be downloaded."""
        guard = no_network(attempts if attempts is not None else []) if source == "offline" else contextlib.nullcontext()
        with guard:
            return require_task_data(task, task.load_data(source, self.seed, self.root if source == "online" else None))

    def data(self, source: str | None = None) -> TaskData:
        """The data of ``source`` (default: the one the data checks run on), loaded once."""
        source = source or self.source
        if source not in self._loaded:
            try:
                self._loaded[source] = self.load(self.task, source, self.network_attempts if source == "offline" else None)
            except Exception as exc:  # noqa: BLE001 - reported by every check that needs the data
                self._loaded[source] = exc
        got = self._loaded[source]
        if isinstance(got, BaseException):
            raise CheckFailed(f"not checked: task {self.label!r}: {self.call(source)} raised "
                              f"{_describe_exc(got)}{_plugin_line(got, self.task)}")
        return got

    def digests(self) -> dict[str, list[bytes]]:
        data = self.data()
        if self._digests is None:
            try:
                self._digests = {s: split_digests(self.task, getattr(data, s), s) for s in ("train", "val", "test")}
            except Exception as exc:  # noqa: BLE001
                self._digests = exc
        if isinstance(self._digests, BaseException):
            raise CheckFailed(f"task {self.label!r}: could not hash the examples: {_describe_exc(self._digests)}")
        return self._digests

    def fresh_task(self) -> Task:
        """A second instance for the determinism check, so state cached on the instance cannot hide
        a non-deterministic split (a task whose constructor needs arguments is reused as is)."""
        try:
            return type(self.task)()
        except Exception:  # noqa: BLE001
            return self.task

    def smoke_budget(self) -> Budget:
        try:
            budget = self.task.budget("smoke")
        except Exception as exc:  # noqa: BLE001
            raise CheckFailed(f"not checked: task {self.label!r} has no valid smoke budget ({_describe_exc(exc)})") from None
        configure = getattr(self.task, "configure", None)
        if callable(configure):  # optional hook: tasks that pick an architecture per budget
            configure("smoke")
        return budget

    def build(self, data: TaskData, width: float) -> torch.nn.Module:
        try:
            model = self.task.build_model(data, width)
        except Exception as exc:  # noqa: BLE001
            raise self.fail(f"build_model(data, width={width})", exc) from None
        if not isinstance(model, torch.nn.Module):
            raise CheckFailed(f"task {self.label!r}: build_model returned {type(model).__name__}, not a torch.nn.Module")
        return model
