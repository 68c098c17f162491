"""Energy per run through CodeCarbon (optional: ``pip install "dendrobench[energy]"``, ``energy=true``).

CodeCarbon reads Intel RAPL counters (or NVIDIA's NVML for a GPU) where the machine exposes them:
that is a measurement. Without them (a VM, most AMD hosts, containers without /sys/class/powercap)
it estimates from the CPU's TDP times its load, and the record says "estimated". Without CodeCarbon,
or when not asked for, ``cost.energy_kwh`` stays null and ``extra.energy.reason`` says why.

One tracker per process, one CodeCarbon *task* per run: starting a tracker takes seconds (hardware
detection), a task costs nothing measurable.
"""

from __future__ import annotations

import logging
import os
from typing import Any

_tracker: Any = None


def _method(tracker: Any) -> str:
    hardware = " ".join(str(h) for h in getattr(tracker, "_hardware", []))
    if "RAPL" in hardware.upper() or os.path.isdir("/sys/class/powercap/intel-rapl"):
        return "measured (RAPL)"
    if "GPU" in hardware.upper():
        return "measured (NVML) + estimated CPU"
    return f"estimated ({hardware or 'TDP x load'})"


def _get_tracker() -> Any:
    global _tracker
    if _tracker is None:
        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        from codecarbon import OfflineEmissionsTracker

        _tracker = OfflineEmissionsTracker(country_iso_code=os.environ.get("DENDROBENCH_COUNTRY", "USA"),
                                           save_to_file=False, log_level="error", tracking_mode="process",
                                           measure_power_secs=5)
        _tracker.start()
    return _tracker


class EnergyMeter:
    """Energy of the code between :meth:`start` and :meth:`stop`, in kWh, with how it was obtained."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.kwh: float | None = None
        self.info: dict[str, Any] = {"method": None, "reason": "not asked for (energy=true measures it)"}
        self._task = False

    def start(self, name: str) -> None:
        if not self.enabled:
            return
        try:
            tracker = _get_tracker()
            tracker.start_task(name)
            self._task = True
            self.info = {"method": _method(tracker), "reason": None, "tool": "codecarbon"}
        except ImportError:
            self.info = {"method": None, "reason": 'codecarbon is not installed: pip install "dendrobench[energy]"'}
        except Exception as exc:  # noqa: BLE001 - energy is reported, never fatal to a run
            self.info = {"method": None, "reason": f"codecarbon failed: {type(exc).__name__}: {exc}"}

    def stop(self) -> None:
        if not self._task:
            return
        self._task = False
        try:
            data = _get_tracker().stop_task()
            self.kwh = float(data.energy_consumed)
        except Exception as exc:  # noqa: BLE001
            self.kwh = None
            self.info = {"method": None, "reason": f"codecarbon failed: {type(exc).__name__}: {exc}"}
