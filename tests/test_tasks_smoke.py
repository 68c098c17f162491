"""Every built-in task, end to end on its smoke budget and offline data, through the runner's
real suite (and bbbp through the console script, as a user would run it)."""

from __future__ import annotations

import json
import subprocess

import pytest

from dendrobench.contract.registry import get_task
from dendrobench.running.config import RunConfig, validate
from dendrobench.running.runner import Suite

BUILTIN = ["bbbp", "cifar10", "brain-tumour", "credit-default", "wikitext2"]


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_task_smoke_all_arms(name, tmp_path):
    run = RunConfig(task=name, budget="smoke", seed=0, results_dir=str(tmp_path), progress=False,
                    dendrites={"engine": "gd", "max_dendrites": 1})
    validate(run)
    records = Suite(run, echo=lambda s: None).run_all()
    assert [r["arm"] for r in records] == ["baseline", "dendrites", "wide"]
    assert all(r["status"] == "ok" for r in records), [r["message"] for r in records]
    task = get_task(name)
    metric = task.metric
    steps = {r["cost"]["steps"] for r in records}
    assert len(steps) == 1 and steps.pop() > 0  # the same optimizer steps for every arm
    for r in records:
        assert r["data_source"] == "offline" and r["dataset"] and r["task"] == name
        assert metric in r["val"] and metric in r["test"] and r["error"] is not None and r["error"] >= 0
        assert r["params"]["inference"] > 0 and r["cost"]["flops_per_sample"]
    dend, wide = records[1], records[2]
    # the final model holds the dendrite (the selected checkpoint may predate its cycle), and the
    # wide arm matches the final model's size
    final = dend["params"]["final_inference"]
    assert dend["dendrites"]["cycles"] == 1 and final > records[0]["params"]["inference"]
    assert dend["params"]["inference"] in (records[0]["params"]["inference"], final)
    assert abs(wide["params"]["inference"] - final) <= 0.05 * final
    assert dend["extra"]["export"]["torchscript"].startswith("ok"), dend["extra"]["export"]


def test_bbbp_smoke_through_the_console_script(cli_env, tmp_path):
    results = tmp_path / "res"
    out = subprocess.run(["dendrobench", "task=bbbp", "budget=smoke", "seeds=1", f"results_dir={results}"],
                         env=cli_env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    for word in ("val roc_auc", "test roc_auc", "RER vs base", "RER vs wide", "FLOPs/sample", "leaderboard row",
                 "dendrobench leaderboard"):
        assert word in out.stdout, word
    records = [json.loads(p.read_text()) for p in sorted(results.glob("*.json"))]
    assert sorted(r["arm"] for r in records) == ["baseline", "dendrites", "wide"]
    assert {r["dataset"] for r in records} == {"b3db"}
    assert all(r["status"] == "ok" and 0.4 < r["val"]["roc_auc"] <= 1 for r in records)
    assert records[0]["extra"]["data_info"]["invalid_smiles_dropped"] >= 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]
