"""The offline promise, enforced: while a guard is active in a thread, that thread cannot open a
network connection or resolve a remote host name.

Used by ``check-task`` and by every offline run (load and training), so a plugin that reaches for
the network while claiming offline data fails by name instead of being recorded ``ok``. The socket
functions are patched once per process and pass straight through for threads with no guard, so an
online job running in another thread of the same process is not affected.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

LOOPBACK = ("127.", "::1", "localhost", "0.0.0.0")
_state = threading.local()
_install_lock = threading.Lock()


class NetworkBlocked(OSError):
    """Raised by the guard instead of opening a network connection. An OSError so loaders handle it
    the way they would handle a machine with no network (and the attempt is still recorded)."""


def _host_of(address: Any) -> str:
    return str(address[0]) if isinstance(address, tuple) and address else str(address)


def _remote(host: Any) -> bool:
    return host not in (None, "", b"") and not str(host).startswith(LOOPBACK)


def _blocked(what: str) -> NetworkBlocked:
    attempts = getattr(_state, "attempts", None)
    if attempts is not None:
        attempts.append(what)
    label = getattr(_state, "label", "dendrobench")
    return NetworkBlocked(f"{label}: network access blocked ({what}); offline data must not use the network")


def _install() -> None:
    """Patch the socket functions unless our patches are the current ones (something, e.g. a test's
    monkeypatch, may have put others back since)."""
    with _install_lock:
        if getattr(socket.socket.connect, "_dendrobench_guard", False):
            return
        original_connect, original_connect_ex = socket.socket.connect, socket.socket.connect_ex
        original_create, original_getaddrinfo = socket.create_connection, socket.getaddrinfo

        def guarded() -> bool:
            return getattr(_state, "attempts", None) is not None

        def connect(self: socket.socket, address: Any, *args: Any, **kwargs: Any) -> Any:
            if guarded() and self.family in (socket.AF_INET, socket.AF_INET6) and _remote(_host_of(address)):
                raise _blocked(f"connect to {_host_of(address)!s}")
            return original_connect(self, address, *args, **kwargs)

        def connect_ex(self: socket.socket, address: Any, *args: Any, **kwargs: Any) -> Any:
            if guarded() and self.family in (socket.AF_INET, socket.AF_INET6) and _remote(_host_of(address)):
                raise _blocked(f"connect to {_host_of(address)!s}")
            return original_connect_ex(self, address, *args, **kwargs)

        def create_connection(address: Any, *args: Any, **kwargs: Any) -> Any:
            if guarded() and _remote(_host_of(address)):
                raise _blocked(f"connection to {_host_of(address)!s}")
            return original_create(address, *args, **kwargs)

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            if guarded() and _remote(host):
                raise _blocked(f"DNS lookup of {host!s}")
            return original_getaddrinfo(host, *args, **kwargs)

        for fn in (connect, connect_ex, create_connection, getaddrinfo):
            fn._dendrobench_guard = True  # type: ignore[attr-defined]
        socket.socket.connect = connect  # type: ignore[method-assign]
        socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
        socket.create_connection = create_connection  # type: ignore[assignment]
        socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]


@contextlib.contextmanager
def no_network(attempts: list[str], label: str = "dendrobench") -> Iterator[list[str]]:
    """Block (and record in ``attempts``) every non-loopback connection and DNS lookup made by this
    thread while active. Attempts are recorded even when the caller catches the error and falls
    back, because reaching for the network at all breaks the offline promise."""
    _install()
    outer = (getattr(_state, "attempts", None), getattr(_state, "label", "dendrobench"))
    _state.attempts, _state.label = attempts, label
    try:
        yield attempts
    finally:
        _state.attempts, _state.label = outer
