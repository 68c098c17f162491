"""protocol=fork (issue 21 point 4): one shared baseline phase, then dendrites / more base training /
plain units of the same parameter count, each reported against more base training."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from dendrobench.dendrites.modules import DendriticLayer
from dendrobench.errors import ConfigError
from dendrobench.evidence import stats
from dendrobench.running import fork

TOY = "task=toy_task:SpiralTask"


def cli(args, env, cwd, timeout=300):
    return subprocess.run([sys.executable, "-m", "dendrobench", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("layer", [nn.Linear(7, 16), nn.Linear(64, 2), nn.Conv2d(3, 8, 3, padding=1)])
def test_plain_units_match_a_dendrite_branch_and_leave_the_function_unchanged(layer):
    torch.manual_seed(0)
    wrapped = DendriticLayer(copy.deepcopy(layer))
    x = torch.randn(4, 7) if isinstance(layer, nn.Linear) and layer.in_features == 7 else (
        torch.randn(4, 64) if isinstance(layer, nn.Linear) else torch.randn(2, 3, 5, 5))
    before = wrapped(x)
    branch = fork.UnitsBranch(layer, fork.units_for(layer), "tanh")
    wrapped.add_branch(branch)
    assert torch.equal(wrapped(x), before)  # U is zero at the fork
    units = sum(p.numel() for p in branch.parameters())
    dendrite = fork.dendrite_branch_params(layer)
    per_unit = fork.fan_in(layer) + 1 + fork.out_width(layer)
    assert abs(units - dendrite) <= per_unit / 2  # the closest whole number of units
    assert not any(p is branch.scale for p in branch.parameters())  # the scale is a constant, not a parameter
    wrapped(x).sum().backward()  # and the units train: U gets a gradient at once
    assert branch.dendrite[2].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("raw, expect", [
    ({"at": "soon"}, "fork.at must be half, plateau or an epoch number"),
    ({"at": 0}, "fork.at must be half, plateau or an epoch number"),
    ({"patience": 0}, "fork.patience must be an integer >= 1"),
    ({"where": 3}, "unknown setting.*fork.where.*valid fork settings: fork.at, fork.patience"),
])
def test_bad_fork_settings_are_named(raw, expect):
    with pytest.raises(ConfigError, match=expect):
        fork.parse_fork(raw)


def test_shared_phase_check_finds_a_first_phase_that_differs():
    def rec(arm, losses, added_at=None):
        hist = [{"epoch": i + 1, "step": i + 1, "train_loss": v, "val": {"accuracy": v},
                 "event": "dendrites_added" if added_at == i + 1 else None} for i, v in enumerate(losses)]
        return {"arm": arm, "seed": 0, "status": "ok", "history": hist}

    same = [rec("baseline", [0.5, 0.4, 0.3]), rec("dendrites", [0.5, 0.35, 0.3], 1), rec("wide", [0.5, 0.2], 1)]
    assert fork.shared_phase(same) == []
    differ = [rec("baseline", [0.5, 0.4, 0.3]), rec("dendrites", [0.5, 0.41, 0.3], 2)]
    assert fork.shared_phase(differ) == ["seed 0 dendrites: its first 2 epochs differ from the baseline's"]
    apart = [rec("baseline", [0.5, 0.4]), rec("dendrites", [0.5, 0.4], 1), rec("wide", [0.5, 0.4], 2)]
    assert fork.shared_phase(apart) == ["seed 0: the arms forked at different epochs ['1', '2']"]


@pytest.mark.parametrize("args, expect", [
    (["dendrites=cc"], "protocol=fork needs dendrites=gd"),
    (["fork.at=3"], "fork.at=3 must be an epoch from 1 to 2"),
])
def test_bad_fork_input_is_one_line_exit_2(args, expect, cli_env, tmp_path):
    out = cli([TOY, "budget=smoke", "protocol=fork", *args, f"results_dir={tmp_path / 'r'}"], cli_env, tmp_path)
    assert out.returncode == 2, out.stderr + out.stdout
    lines = [ln for ln in out.stderr.strip().splitlines() if ln]
    assert len(lines) == 1 and expect in lines[0], out.stderr
    assert not list((tmp_path / "r").glob("*.json"))


def test_fork_shares_the_first_phase_matches_parameters_and_resumes(cli_env, tmp_path):
    results = tmp_path / "res"
    args = [TOY, "budget=smoke", "budget_overrides.epochs=4", "protocol=fork", "fork.at=2", "seeds=2",
            f"results_dir={results}"]
    out = cli(args, cli_env, tmp_path)
    assert out.returncode == 0, out.stderr + out.stdout
    files = sorted(results.glob("*.json"))
    recs = [json.loads(f.read_text()) for f in files]
    assert len(recs) == 6 and all(r["protocol"] == "fork" and r["status"] == "ok" for r in recs)
    assert fork.shared_phase(recs) == []
    assert "every arm of every seed had the baseline's first phase exactly" in out.stdout
    for seed in (0, 1):
        arms = {r["arm"]: r for r in recs if r["seed"] == seed}
        assert fork.fork_epoch(arms["dendrites"]) == fork.fork_epoch(arms["wide"]) == 2
        assert fork.fork_epoch(arms["baseline"]) is None
        # the same steps after the fork; the control has the dendritic model's parameters (within 5 %)
        assert {r["cost"]["steps"] for r in arms.values()} == {arms["baseline"]["cost"]["steps"]}
        d, w = arms["dendrites"]["params"]["final_inference"], arms["wide"]["params"]["final_inference"]
        assert d > arms["baseline"]["params"]["final_inference"] and abs(w - d) / d <= 0.05
        assert arms["wide"]["extra"]["target_source"] == "plain units at the fork"
        # after the fork the three continuations really differ
        assert arms["dendrites"]["history"][2]["train_loss"] != arms["baseline"]["history"][2]["train_loss"]
        assert arms["wide"]["history"][2]["train_loss"] != arms["dendrites"]["history"][2]["train_loss"]
    assert "(a) dendrites vs (b) more base training" in out.stdout
    assert "(c) plain units vs (b) more base training" in out.stdout
    rows = stats.summarize(recs)
    assert len(rows) == 1 and rows[0].key.protocol == "fork"
    mtimes = {f: f.stat().st_mtime_ns for f in files}
    again = cli(args, cli_env, tmp_path)
    assert again.returncode == 0 and again.stdout.count("resume:") == 6
    assert {f: f.stat().st_mtime_ns for f in sorted(results.glob("*.json"))} == mtimes
