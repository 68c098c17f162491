"""Fair cost and no silent null arm (issue 9 items 4 and 5): the clock leaves out one-time warm-up
so it does not depend on which arm ran first; params, FLOPs and time describe the selected model;
a dendritic arm without dendrites says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dendrobench.evidence.report import format_table
from dendrobench.running import training
from dendrobench.running.config import RunConfig, validate
from dendrobench.running.runner import Suite, null_arm_reason

TESTS = Path(__file__).parent

# Runs baseline arms one after another in a fresh process (where the one-time costs are still to
# pay) and prints their wall_s. Each arm is its own Suite with its own results folder.
ORDER_SCRIPT = """
import json, sys, tempfile
from pathlib import Path
import torch
torch.set_num_threads(1)
from dendrobench.running.config import RunConfig
from dendrobench.running.runner import Suite
tmp = Path(tempfile.mkdtemp())
walls = {}
for seed in map(int, sys.argv[1:]):
    run = RunConfig(task="toy_task:SpiralTask", budget="quick", arms=["baseline"], seed=seed,
                    results_dir=str(tmp / str(seed)), dendrites={"engine": "none"}, device="cpu",
                    threads=1, progress=False)
    rec = Suite(run, echo=lambda s: None).run_all()[0]
    assert rec["status"] == "ok", rec["message"]
    walls[seed] = rec["cost"]["wall_s"]
print(json.dumps(walls))
"""


def _walls(order: list[int]) -> dict[int, float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", ORDER_SCRIPT, *map(str, order)], capture_output=True, text=True,
                         env=env, timeout=600, check=True)
    return {int(k): v for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}


def test_time_ratio_of_identical_arms_does_not_depend_on_order() -> None:
    """Before issue 9 the first arm of a process carried the warm-up: x0.02 here (15 s against 0.3 s
    on a loaded machine), x0.04-0.18 for bbbp at smoke.

    Two identical baseline arms (seeds 0 and 1: same model, same steps), run in both orders, each
    order in a fresh process. The clock this guards against makes the first arm 5-50x slower; noise
    on a shared 2-core machine scatters sub-second clocks by about +-20 % (CI saw 1.41, 0.83, 0.82).
    So the test stops at the first attempt within 0.9-1.1 and otherwise asks the median of 3 fresh
    processes to lie within 0.6-1.67: far from the bug, wide enough for the noise.
    """
    for order in ([0, 1], [1, 0]):
        ratios = []
        for _ in range(3):
            walls = _walls(order)
            ratios.append(walls[order[1]] / walls[order[0]])
            if 0.9 <= ratios[-1] <= 1.1:
                break
        shown = [round(r, 3) for r in ratios]
        assert 0.9 <= ratios[-1] <= 1.1 or 0.6 <= np.median(ratios) <= 1 / 0.6, \
            f"order {order}: second/first wall_s = {shown}"


def _suite(tmp_path: Path, **kw) -> Suite:
    run = RunConfig(task="toy_task:SpiralTask", budget="smoke", seeds=1, results_dir=str(tmp_path),
                    progress=False, **kw)
    validate(run)
    return Suite(run, echo=lambda s: None)


def test_warm_up_does_not_change_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with_warm = _suite(tmp_path / "a", arms=["baseline", "dendrites"]).run_all()
    monkeypatch.setattr(training, "warm_up", lambda *a, **k: 0.0)
    without = _suite(tmp_path / "b", arms=["baseline", "dendrites"]).run_all()
    for a, b in zip(with_warm, without):
        assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]
        assert a["test"] == b["test"]
    assert all(r["extra"]["warmup_s"] >= 0 and r["cost"]["wall_s"] > 0 for r in with_warm)
    # the clock covers training only: less than the whole run, which also builds, tests and counts FLOPs
    assert all(r["cost"]["wall_s"] < r["extra"]["total_s"] for r in with_warm)


def test_selected_and_final_model_costs_are_both_recorded(tmp_path: Path) -> None:
    [base, dend] = _suite(tmp_path, arms=["baseline", "dendrites"], dendrites={"engine": "gd"}).run_all()
    for rec in (base, dend):
        p, c = rec["params"], rec["cost"]
        assert p["inference"] == rec["extra"]["params_selected"]
        assert {"final_inference", "final_train"} <= set(p) and c["flops_per_sample_final"] > 0
        assert 0 < c["wall_s_selected"] <= c["wall_s"]
    assert base["params"]["inference"] == base["params"]["final_inference"]
    assert dend["params"]["final_inference"] > base["params"]["inference"]  # the final model has dendrites
    if dend["dendrites"]["at_selected"] == dend["dendrites"]["final"]:
        assert dend["params"]["inference"] == dend["params"]["final_inference"]
    else:
        assert dend["params"]["inference"] < dend["params"]["final_inference"]


def test_null_dendritic_arm_is_flagged_in_record_and_table(tmp_path: Path) -> None:
    recs = _suite(tmp_path, arms=["baseline", "dendrites"], dendrites={"engine": "gd", "max_dendrites": 0}).run_all()
    dend = recs[1]
    assert dend["dendrites"]["added"] == 0 and dend["dendrites"]["null_arm"] is True
    assert "added no dendrites" in dend["dendrites"]["null_reason"]
    assert "null_arm" not in recs[0]["dendrites"]  # the baseline has nothing to flag
    table = format_table(recs)
    assert "0 dendrites" in table and "compares the baseline with itself" in table
    ok = _suite(tmp_path / "ok", arms=["dendrites"], dendrites={"engine": "gd"}).run_all()[0]
    assert ok["dendrites"]["null_arm"] is False and ok["dendrites"]["null_reason"] is None


def test_null_arm_reason_rules() -> None:
    assert null_arm_reason(0, 0, 0, 3).startswith("added no dendrites")
    assert "selected model (epoch 2) has 0 dendrites (the final model has 4 in total, summed over its layers; " \
           "max_dendrites counts per layer)" in null_arm_reason(4, 0, 4, 2)
    assert null_arm_reason(4, 4, 4, 5) is None
    # added, then all dropped (PAI's rollback): the selected model is the base model (issue 24)
    assert null_arm_reason(3, 0, 0, 5) == ("added 3 dendrites, then dropped all of them: "
                                          "the selected model is the base model")
    assert null_arm_reason(4, None, None, 5) is None  # an engine that cannot count its dendrites: unknown
