"""``run_timeout_s``: stop a run that takes too long, record it ``failed``, go on with the sweep.

Two stages, because a run can hang in two ways:

1. **Python code** (a loop in a plugin): when the time is up a :class:`RunTimeout` is raised in the
   run's own thread (``PyThreadState_SetAsyncExc``), it unwinds like any exception and the runner
   records ``failed: timeout after N s``. It derives from ``BaseException`` so a plugin's
   ``except Exception`` cannot swallow it.
2. **A C call that never returns** (a native loop, a deadlocked library): no exception can reach it,
   and no thread can be killed on its own. After a grace period the watchdog writes the failed
   record itself and, when the process was started by the ``dendrobench`` command, re-executes that
   same command (``os.execv``). Finished records resume as usual and the timed-out run is listed in
   ``DENDROBENCH_TIMED_OUT`` so the new process keeps its failed record instead of retrying it. Run
   inside another program (a test, a notebook), the watchdog cannot replace the process: it logs that
   the run is stuck and leaves it.

No child process per run: loading data once per seed and the per-run cost stay as they were.

A caveat of stage 1: an exception raised while the run is importing a module for the first time
leaves that module half-initialised for the rest of the process, so later runs may fail with odd
import errors. Timeouts are meant to be generous (the defaults are hours for ``quick``); set one far
below a run's normal length and the sweep mostly records timeouts anyway.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
from collections.abc import Callable

log = logging.getLogger("dendrobench")

TIMED_OUT_ENV = "DENDROBENCH_TIMED_OUT"
# Set by the CLI when this process *is* the dendrobench command, so that re-executing it is safe.
restart_argv: list[str] | None = None


class RunTimeout(BaseException):  # noqa: N818 - reads as what happened: "RunTimeout: timeout after 5 s"
    """Raised inside a run whose ``run_timeout_s`` passed."""


def timed_out_paths() -> set[str]:
    """Records that timed out in an earlier incarnation of this command (see the module docstring)."""
    return {p for p in os.environ.get(TIMED_OUT_ENV, "").split(os.pathsep) if p}


def grace_seconds(timeout: float) -> float:
    """How long a run has to unwind after the exception before it counts as stuck in C."""
    return min(30.0, max(2.0, timeout * 0.1))


def _async_raise(thread_id: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc else None)


class Watch:
    """Arms a timer for one run in the current thread. ``stuck`` is called (from the watchdog thread)
    if the run has not ended a grace period after the exception was raised."""

    def __init__(self, seconds: float | None, stuck: Callable[[], None]):
        self.seconds = seconds
        self.stuck = stuck
        self.thread_id = threading.get_ident()
        self.lock = threading.Lock()
        self.armed = False
        self.fired = False
        self.timers: list[threading.Timer] = []

    def __enter__(self) -> Watch:
        if self.seconds:
            self.armed = True
            self._start(float(self.seconds), self._fire)
        return self

    def _start(self, seconds: float, fn: Callable[[], None]) -> None:
        timer = threading.Timer(seconds, fn)
        timer.daemon = True
        self.timers.append(timer)
        timer.start()

    def _fire(self) -> None:
        with self.lock:
            if not self.armed:
                return
            self.fired = True
            _async_raise(self.thread_id, RunTimeout)
            self._start(grace_seconds(float(self.seconds or 0)), self._hard)

    def _hard(self) -> None:
        with self.lock:
            if not self.armed:
                return
        self.stuck()

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.armed = False
            for timer in self.timers:
                timer.cancel()
            if self.fired:  # an exception still pending (the run ended just before) must not escape later
                _async_raise(self.thread_id, None)


def restart_process(timed_out: str) -> bool:
    """Replace this process by a fresh run of the same command; False when that is not possible."""
    if restart_argv is None:
        return False
    done = timed_out_paths() | {timed_out}
    os.environ[TIMED_OUT_ENV] = os.pathsep.join(sorted(done))
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os.execv(restart_argv[0], restart_argv)
    return True  # not reached
