"""How long a budget takes on this machine, from the records already here (issue 20 point 4).

``dendrobench list budgets`` shows, beside each budget, the mean training clock per arm of the
finished runs in the results folder that ran on this kind of machine (same operating system and
architecture, on the CPU: ``env.platform``'s first word and ``env.device_name``; a kernel build or a
VM image does not split them),
so a user can tell a two-second budget from a two-hour one before starting it. Torch-free: the
listing must start fast (tests/test_startup.py)."""

from __future__ import annotations

import platform
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dendrobench.running.results import iter_records


@dataclass(frozen=True)
class Measured:
    """Mean training minutes per arm over ``runs`` finished runs of one (task, budget)."""

    minutes: dict[str, float]
    runs: int

    def text(self) -> str:
        arms = ", ".join(f"{a} {_fmt(m)}" for a, m in self.minutes.items())
        return f"measured here: {arms} min per arm (mean of {self.runs} runs)"


def _fmt(minutes: float) -> str:
    return f"{minutes:.1f}" if minutes < 10 else f"{minutes:.0f}"


def machine_kind(platform_text: str, device_name: str) -> str:
    """``Linux x86_64`` from ``Linux-6.18.44-...`` and ``x86_64``."""
    return f"{platform_text.split('-')[0]} {device_name}"


def measured_minutes(results_dirs: Iterable[Path], this_machine: str | None = None) -> dict[tuple[str, str], Measured]:
    """(task, budget) -> :class:`Measured`, from ok matched runs on ``this_machine`` (default: this one,
    :func:`machine_kind`).

    Tuning trials, claims' own protocols and runs with budget overrides are left out: they do not
    take the budget's own time."""
    here = this_machine or machine_kind(platform.platform(), platform.machine())
    walls: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for folder in results_dirs:
        if not Path(folder).is_dir():
            continue
        for rec in iter_records(Path(folder), problems=[]):
            env, cost, cfg = rec.get("env") or {}, rec.get("cost") or {}, rec.get("config") or {}
            wall = cost.get("wall_s")
            if (rec.get("status") != "ok" or env.get("device") != "cpu"
                    or machine_kind(str(env.get("platform") or ""), str(env.get("device_name") or "")) != here
                    or (rec.get("protocol") or "matched") != "matched" or rec.get("claim")
                    or cfg.get("budget_overrides") or not isinstance(wall, (int, float))):
                continue
            walls[(str(rec["task"]), str(rec["budget"]))][str(rec["arm"])].append(float(wall))
    return {key: Measured({arm: sum(v) / len(v) / 60 for arm, v in sorted(arms.items())},
                          sum(len(v) for v in arms.values()))
            for key, arms in walls.items()}
