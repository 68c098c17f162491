"""Energy per run: CodeCarbon where installed and asked for, null with the reason otherwise; shown as
a cost ratio to the baseline."""

from __future__ import annotations

import importlib.util
import time

import pytest

from dendrobench.evidence.report import format_table
from dendrobench.running.energy import EnergyMeter


def test_not_asked_for_is_null_with_the_reason():
    meter = EnergyMeter(False)
    meter.start("x")
    meter.stop()
    assert meter.kwh is None and "energy=true" in meter.info["reason"]


def test_without_codecarbon_the_reason_says_what_to_install(monkeypatch):
    import builtins

    import dendrobench.running.energy as energy

    real = builtins.__import__

    def no_codecarbon(name, *args, **kwargs):
        if name.startswith("codecarbon"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(energy, "_tracker", None)
    monkeypatch.setattr(builtins, "__import__", no_codecarbon)
    meter = EnergyMeter(True)
    meter.start("x")
    meter.stop()
    assert meter.kwh is None and 'pip install "dendrobench[energy]"' in meter.info["reason"]


@pytest.mark.skipif(importlib.util.find_spec("codecarbon") is None, reason="codecarbon not installed")
def test_codecarbon_measures_or_says_estimated():
    meter = EnergyMeter(True)
    meter.start("busy")
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 1.0:
        sum(i * i for i in range(10_000))
    meter.stop()
    assert meter.kwh is not None and meter.kwh > 0
    assert meter.info["method"].startswith(("measured", "estimated"))


def test_the_run_table_shows_energy_as_a_ratio_to_the_baseline():
    from recordfactory import make_record as rec

    records = [rec(arm="baseline", seed=0).to_dict(), rec(arm="dendrites", seed=0).to_dict()]
    assert "energy" not in format_table(records)
    records[0]["cost"]["energy_kwh"], records[1]["cost"]["energy_kwh"] = 0.002, 0.003
    records[0]["extra"]["energy"] = {"method": "estimated (CPU(Cpu Load))"}
    table = format_table(records)
    assert "energy" in table and "x1.50" in table and "2.000Wh est." in table
