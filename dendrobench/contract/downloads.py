"""Fetching a task's online data without ever hanging: shared by every task's online loader.

Library downloaders (torchvision's, torch_geometric's) have no timeout and can hang on a closed
network; these helpers fail in seconds with an error the task turns into a DataUnavailableError.
"""

from __future__ import annotations

import os
import tempfile
import urllib.request
from pathlib import Path


def offline_forced() -> bool:
    """``DENDROBENCH_OFFLINE=1`` forbids every download attempt (CI, air-gapped clusters)."""
    return os.environ.get("DENDROBENCH_OFFLINE", "").strip() not in ("", "0")


def download(url: str, dest: Path, timeout: float, chunk: int = 1 << 20) -> None:
    """Fetch ``url`` to ``dest`` atomically (a partial file never takes the real name)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, os.fdopen(fd, "wb") as f:
            while block := response.read(chunk):
                f.write(block)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
