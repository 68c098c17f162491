"""Where and with what a run happens: the device a name resolves to, the commit, the package versions
and the platform a record stores, the clock's timestamp format and the one seeding call every arm
makes. Kept apart from the loop so that a record's provenance is defined in one place."""

from __future__ import annotations

import logging
import platform
import random
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

import dendrobench
from dendrobench.running.schedules import LRSchedule, lr_factor  # noqa: F401 - lr_factor re-exported for plugins' checks

log = logging.getLogger("dendrobench")


def utcnow() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from dendrobench.errors import ConfigError

        raise ConfigError("device=cuda asked for but no CUDA device is available; valid here: auto, cpu")
    return torch.device(name)


def git_commit() -> str | None:
    """The dendrobench source commit when running from a checkout (None for an installed wheel)."""
    here = Path(dendrobench.__file__).resolve().parent.parent
    if not (here / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("torch", "torch_geometric", "monai", "torchvision", "scikit-learn", "numpy", "datasets", "perforatedai"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def environment(device: torch.device) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "dendrobench": dendrobench.__version__,
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "git_commit": git_commit(),
    }


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# -- data -------------------------------------------------------------------------------------
