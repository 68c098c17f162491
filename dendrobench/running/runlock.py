"""Run claims: a run about to train takes an exclusive lock file next to its record.

Two sweeps on one ``results_dir`` (or cluster jobs on shared storage) would otherwise both find a
record missing and both train it. The claim is ``<record>.claim``, created with
``O_CREAT | O_EXCL`` (atomic on local filesystems and on NFSv3+), holding the holder's host, PID and
start time. While a run trains, a daemon thread touches the claim every ``HEARTBEAT_S`` seconds.

A claim is *stale*, and is taken over, when its holder is on this host and its process is gone, or
when it has not been touched for ``STALE_AFTER_S`` (a holder on another host that crashed or lost
its node), or when it was taken by the same scheduler job before a requeue (SLURM's job id is kept
across a requeue, so a preempted job resumes at once). Taking over renames the stale file to a unique name first: of two processes that find
the same stale claim, exactly one rename succeeds.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dendrobench.running.results import pid_alive

HEARTBEAT_S = 30.0
STALE_AFTER_S = 600.0  # 20 missed heartbeats: only for holders on other hosts (or unreadable claims)
SUFFIX = ".claim"


def claim_path(record: Path) -> Path:
    """``x.json`` -> ``x.claim`` (never read as a record: records are ``*.json``)."""
    return Path(record).with_suffix(SUFFIX)


def _host() -> str:
    return socket.gethostname()


def _job() -> str | None:
    """The scheduler's job id (SLURM: job and array task), the same across a requeue of that job."""
    job = os.environ.get("SLURM_ARRAY_JOB_ID") or os.environ.get("SLURM_JOB_ID")
    task = os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{job}_{task}" if job and task else job


def read_claim(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def is_stale(path: Path, stale_after_s: float = STALE_AFTER_S) -> bool:
    """Whether the claim at ``path`` may be taken over (a vanished claim is not stale: it is free)."""
    try:
        age = time.time() - Path(path).stat().st_mtime
    except FileNotFoundError:
        return False
    info = read_claim(path)
    if info and info.get("job") and info.get("job") == _job() and info.get("pid") != os.getpid():
        return True  # this scheduler job's own earlier attempt, before a requeue (preemption, timeout)
    if info and info.get("host") == _host() and isinstance(info.get("pid"), int):
        return not pid_alive(info["pid"]) or age > stale_after_s
    # another host (its PIDs mean nothing here) or a claim still being written / unreadable
    return age > stale_after_s


def describe(path: Path) -> str:
    info = read_claim(path) or {}
    return f"{info.get('host', '?')} pid {info.get('pid', '?')} since {info.get('started', '?')}"


@dataclass
class Claim:
    """A held claim; release it (or use it as a context manager) when the record is written."""

    path: Path
    token: str
    _stop: threading.Event
    _thread: threading.Thread | None = None

    def release(self) -> None:
        self._stop.set()
        info = read_claim(self.path)
        if info is None or info.get("token") == self.token:  # never remove a claim someone else took over
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _heartbeat(path: Path, stop: threading.Event, every: float) -> None:
    while not stop.wait(every):
        with contextlib.suppress(OSError):
            os.utime(path)


def try_claim(record: Path, stale_after_s: float = STALE_AFTER_S, heartbeat_s: float = HEARTBEAT_S) -> Claim | None:
    """Take the claim on ``record``'s run, reclaiming a stale one; None while someone else holds it."""
    path = claim_path(record)
    path.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    for _ in range(5):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            if not is_stale(path, stale_after_s):
                return None
            aside = path.with_name(f"{path.name}.stale-{token}")
            try:
                os.rename(path, aside)  # only one of several reclaimers gets it
            except FileNotFoundError:
                continue
            aside.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as fh:
            json.dump({"host": _host(), "pid": os.getpid(), "token": token, "job": _job(),
                       "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, fh)
        stop = threading.Event()
        thread = threading.Thread(target=_heartbeat, args=(path, stop, heartbeat_s), daemon=True,
                                  name=f"dendrobench-claim-{path.name}")
        thread.start()
        return Claim(path, token, stop, thread)
    return None
