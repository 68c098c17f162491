"""Minutes per arm measured on this machine, shown by `dendrobench list budgets` (issue 20 point 4)."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest
from recordfactory import make_record, write

from dendrobench.running.measured import machine_kind, measured_minutes

HERE = {"platform": platform.platform(), "device": "cpu", "device_name": platform.machine()}


def _rec(arm: str, seed: int, wall: float, **kw):
    env = kw.pop("env", HERE)
    r = make_record("bbbp", arm, seed, 0.3, wall_s=wall, budget="quick", **kw)
    r.env.update(env)
    return r


def test_mean_minutes_per_arm_from_this_kind_of_machine_only(tmp_path: Path) -> None:
    other = {**HERE, "device_name": "riscv64"}
    write(tmp_path, [_rec("baseline", 0, 60), _rec("baseline", 1, 120), _rec("dendrites", 0, 240),
                     _rec("dendrites", 1, 9999, env=other), _rec("dendrites", 2, 9999, status="failed"),
                     _rec("dendrites", 3, 9999, extra_config={"budget_overrides": {"epochs": 50}})])
    m = measured_minutes([tmp_path])
    assert set(m) == {("bbbp", "quick")}
    got = m[("bbbp", "quick")]
    assert got.minutes == pytest.approx({"baseline": 1.5, "dendrites": 4.0}) and got.runs == 3
    assert got.text() == "measured here: baseline 1.5, dendrites 4.0 min per arm (mean of 3 runs)"
    assert machine_kind("Linux-6.18.44-fc-v782-x86_64-with-glibc2.36", "x86_64") == "Linux x86_64"
    assert measured_minutes([tmp_path / "missing"]) == {}


def test_list_budgets_shows_them(tmp_path: Path) -> None:
    write(tmp_path, [_rec("baseline", 0, 30), _rec("dendrites", 0, 90)])
    out = subprocess.run([sys.executable, "-m", "dendrobench", "list", "budgets", "--results", str(tmp_path)],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    line = next(x for x in out.splitlines() if "budget quick" in x and "measured here" in x)
    assert "baseline 0.5, dendrites 1.5 min per arm (mean of 2 runs)" in line
