"""Runner rules: matched step budgets, paired seeds, divergence and failure recorded, wide matched."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from toy_task import SpiralTask

from dendrobench.evidence.report import format_table, paired_rer
from dendrobench.running.config import RunConfig, validate
from dendrobench.running.runner import Suite


def suite(tmp_path, **kw) -> Suite:
    run = RunConfig(task="toy_task:SpiralTask", budget="smoke", seeds=1, results_dir=str(tmp_path), progress=False, **kw)
    validate(run)
    return Suite(run, echo=lambda s: None)


def test_every_arm_takes_the_same_steps_and_dendrite_cycles_count_inside(tmp_path):
    recs = suite(tmp_path, arms=["baseline", "dendrites", "wide", "compressed"],
                 dendrites={"engine": "gd", "max_dendrites": 2}).run_all()
    assert [r["arm"] for r in recs] == ["baseline", "dendrites", "wide", "compressed"]
    assert all(r["status"] == "ok" for r in recs), [r["message"] for r in recs]
    budget = SpiralTask.budgets["smoke"]
    assert {r["cost"]["steps"] for r in recs} == {budget.epochs * budget.steps_per_epoch}
    dend = recs[1]
    assert dend["dendrites"]["cycles"] == 2 and [h["event"] for h in dend["history"]].count("dendrites_added") == 2
    # the wide arm matches the final dendritic model's parameters within 5 %
    wide = recs[2]
    target = dend["params"]["final_inference"]
    assert abs(wide["params"]["inference"] - target) / target <= 0.05
    assert recs[3]["extra"]["width"] == 0.67
    assert all(r["cost"]["flops_per_sample"] and r["cost"]["flops_per_sample"] > 0 for r in recs)


def test_paired_seed_gives_same_initial_weights_and_data_order(tmp_path):
    """With dendrites whose output weights stay zero the dendritic arm must retrace the baseline."""
    recs = suite(tmp_path, arms=["baseline", "dendrites"],
                 dendrites={"engine": "gd", "freeze_scale": True}).run_all()
    base, dend = recs
    assert [h["train_loss"] for h in base["history"]] == [h["train_loss"] for h in dend["history"]]
    assert base["test"] == dend["test"]


class NaNTask(SpiralTask):
    def loss(self, output, batch):
        return super().loss(output, batch) * float("nan")


class BrokenTask(SpiralTask):
    def build_model(self, data, width=1.0):
        raise RuntimeError("cannot build")


def test_diverged_and_failed_runs_are_recorded_and_the_suite_goes_on(tmp_path, monkeypatch):
    s = suite(tmp_path, arms=["baseline", "dendrites", "wide"])
    s.task = NaNTask()
    recs = s.run_all()
    assert [r["status"] for r in recs[:2]] == ["diverged", "diverged"]
    assert "non-finite training loss" in recs[0]["message"]
    assert recs[2]["status"] == "failed" and "dendrites arm" in recs[2]["message"]
    s2 = suite(tmp_path / "b", arms=["baseline"])
    s2.task = BrokenTask()
    [rec] = s2.run_all()
    assert rec["status"] == "failed" and "cannot build" in rec["message"]
    assert len(list((tmp_path / "b").glob("*.json"))) == 1


def test_summary_table_and_paired_rer():
    def rec(arm, seed, err):
        return {"arm": arm, "seed": seed, "status": "ok", "error": err, "metric": {"name": "accuracy"},
                "val": {"accuracy": 1 - err}, "test": {"accuracy": 1 - err}, "params": {"inference": 10},
                "cost": {"flops_per_sample": 5.0, "wall_s": 1.0}}

    recs = [rec("baseline", 0, 0.2), rec("dendrites", 0, 0.1), rec("baseline", 1, 0.4), rec("dendrites", 1, 0.4)]
    # the RER of the mean errors (0.05 / 0.3), the leaderboard's estimand; the per-pair mean would be 25 %
    assert paired_rer(recs, "dendrites", "baseline") == pytest.approx(1 / 6)
    assert paired_rer(recs, "wide", "baseline") is None
    recs[0]["cost"]["steps_per_s"], recs[2]["cost"]["steps_per_s"] = 40.0, 60.0
    table = format_table(recs)
    assert "+16.7%" in table and table.count("\n") == 4
    baseline_line = next(line for line in table.splitlines() if line.startswith("baseline"))
    assert "steps/s" in table.splitlines()[0] and baseline_line.rstrip().endswith("50.0")
    assert "± = standard deviation over seeds" in table


def test_optimizer_follows_restructure_without_losing_state():
    from dendrobench.running.runner import sync_optimizer

    model = nn.Sequential(nn.Linear(2, 2))
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.randn(3, 2)).sum().backward()
    opt.step()
    model.add_module("extra", nn.Linear(2, 2))
    opt2 = sync_optimizer(opt, model, lambda ps: torch.optim.Adam(ps))
    # one group takes the new parameters after its own (one multi-tensor call per step); old moments kept
    assert opt2 is opt and len(opt.param_groups) == 1 and opt.state
    assert opt.param_groups[0]["params"] == list(model.parameters())
    # an optimizer of several groups (an engine's own) gets the new parameters as a group of their own
    model.add_module("more", nn.Linear(2, 2))
    opt.add_param_group({"params": [nn.Parameter(torch.zeros(1))], "lr": 0.5})
    model.register_parameter("p", opt.param_groups[1]["params"][0])
    assert sync_optimizer(opt, model, lambda ps: torch.optim.Adam(ps)) is opt
    assert len(opt.param_groups) == 3 and opt.param_groups[2]["params"] == list(model.more.parameters())
    assert opt.param_groups[2]["lr"] == 0.1
