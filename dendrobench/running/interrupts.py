"""Telling a real Ctrl-C (or SIGTERM) from a plugin that raises ``KeyboardInterrupt``/``SystemExit``.

A sweep must stop when the user asks, and only then: library code that calls ``sys.exit()`` (an
``argparse`` on ``sys.argv``) or raises ``KeyboardInterrupt`` itself is a failed run, recorded, and
the sweep goes on. The signal handlers installed here note that a signal really arrived before
raising, so the runner can re-raise exactly those. SIGTERM (``kill``, a batch scheduler) is handled
like SIGINT: finished runs are kept and the CLI says so in one line.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

_received: list[int] = []


def real_interrupt() -> bool:
    """Whether SIGINT or SIGTERM reached this process since the handlers were installed."""
    return bool(_received)


def received_signal() -> int | None:
    return _received[-1] if _received else None


def _handler(signum: int, frame: Any) -> None:
    _received.append(signum)
    raise KeyboardInterrupt(signal.Signals(signum).name)


def install() -> None:
    """Install the handlers (main thread only: Python delivers signals there). A no-op elsewhere."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(sig) in (signal.SIG_IGN,):  # e.g. nohup'ed: respect the parent's choice
            continue
        signal.signal(sig, _handler)


def installed() -> bool:
    return signal.getsignal(signal.SIGINT) is _handler


def stops_sweep(exc: BaseException) -> bool:
    """Whether ``exc`` must end the sweep: a ``KeyboardInterrupt`` that a real signal caused (or any,
    when our handlers are not installed, e.g. the runner used as a library), and nothing else."""
    if not isinstance(exc, KeyboardInterrupt):
        return False
    return real_interrupt() or not installed()
