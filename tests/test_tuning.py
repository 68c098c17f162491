"""protocol=tuned (issue 22 point 1): the same K Sobol trials per arm on tuning seeds scored on
validation, the best trial's settings on the evaluation seeds; trials are records that resume."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from dendrobench.errors import ConfigError
from dendrobench.evidence import stats
from dendrobench.running import tuning
from dendrobench.running.config import RunConfig

TOY = "task=toy_task:SpiralTask"


def cli(args, env, cwd, timeout=300):
    return subprocess.run([sys.executable, "-m", "dendrobench", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def test_sobol_points_are_seeded_extensible_and_fill_the_cube():
    eight = tuning.unit_points(8, 0)
    assert len(eight) == 8 and all(len(p) == 3 and all(0 <= x < 1 for x in p) for p in eight)
    assert tuning.unit_points(8, 0) == eight  # seeded
    assert tuning.unit_points(2, 0) == eight[:2]  # raising K keeps the first trials (they resume)
    assert tuning.unit_points(8, 1) != eight
    # a Sobol block of 2^m points has one point in each of the 2^m equal slices of every axis
    for axis in range(3):
        assert sorted(math.floor(p[axis] * 8) for p in eight) == list(range(8))


def test_trial_settings_follow_the_declared_space():
    for u in tuning.unit_points(16, 3):
        base = tuning.trial_settings("baseline", u, 1e-3, "gd", {"switch_mode": "fixed"})
        dend = tuning.trial_settings("dendrites", u, 1e-3, "gd", {"switch_mode": "fixed"})
        assert set(base) == {"lr", "weight_decay"}
        assert set(dend) == {"lr", "weight_decay", "max_dendrites"}
        assert {k: dend[k] for k in base} == base  # trial i: the same lr and weight decay for every arm
        assert 1e-4 * 0.999 <= base["lr"] <= 1e-2 * 1.001
        assert 1e-6 * 0.999 <= base["weight_decay"] <= 1e-2 * 1.001
        assert dend["max_dendrites"] in (1, 2, 3, 4)
    values = {tuning.trial_settings("dendrites", u, 1e-3, "gd", {})["max_dendrites"] for u in tuning.unit_points(8, 0)}
    assert values == {1, 2, 3, 4}  # 8 Sobol points cover the integer knob
    plateau = tuning.trial_settings("dendrites", [0.5] * 3, 1e-3, "gd", {"switch_mode": "plateau"})
    assert "patience" in plateau and "max_dendrites" not in plateau
    assert "max_dendrites" not in tuning.trial_settings("dendrites", [0.5] * 3, 1e-3, "someplugin", {})


@pytest.mark.parametrize("raw, expect", [
    ({"trials": 0}, "tuning.trials must be an integer >= 1"),
    ({"trials": "many"}, "tuning.trials must be an integer >= 1"),
    ({"seeds": 0}, "tuning.seeds must be an integer >= 1"),
    ({"trails": 3}, "unknown setting.*tuning.trails.*valid tuning settings: tuning.trials"),
])
def test_bad_tuning_settings_are_named(raw, expect):
    with pytest.raises(ConfigError, match=expect):
        tuning.parse_tuning(raw)


def test_evaluation_seeds_may_not_reach_the_tuning_seeds():
    run = RunConfig(task="x", protocol="tuned", seed=tuning.TUNING_SEED_BASE)
    with pytest.raises(ConfigError, match="below 1000000"):
        tuning.check_protocol(run)
    with pytest.raises(ConfigError, match="protocol=published is a claim's own protocol"):
        tuning.check_protocol(RunConfig(task="x", protocol="published"))


@pytest.mark.parametrize("args, expect", [
    (["protocol=sideways"], "unknown protocol 'sideways'; valid protocols: "),
    (["protocol=published"], "protocol=published is a claim's own protocol"),
    (["protocol=tuned", "tuning.trials=0"], "tuning.trials must be an integer >= 1"),
    (["protocol=tuned", "tuning.trails=2"], "unknown setting 'tuning.trails'; valid tuning settings"),
])
def test_bad_protocol_input_is_one_line_exit_2(args, expect, cli_env, tmp_path):
    import re

    out = cli([TOY, "budget=smoke", *args, f"results_dir={tmp_path / 'r'}"], cli_env, tmp_path)
    assert out.returncode == 2, out.stderr + out.stdout
    lines = [ln for ln in out.stderr.strip().splitlines() if ln]
    assert len(lines) == 1 and re.search(expect, lines[0]), out.stderr
    assert not list((tmp_path / "r").glob("*.json"))


def test_tuned_protocol_runs_writes_trials_resumes_and_is_labelled_tuned(cli_env, tmp_path):
    results = tmp_path / "res"
    args = [TOY, "budget=smoke", "protocol=tuned", "tuning.trials=2", "seeds=2", f"results_dir={results}"]
    out = cli(args, cli_env, tmp_path)
    assert out.returncode == 0, out.stderr + out.stdout
    files = sorted(results.glob("*.json"))
    recs = {f: json.loads(f.read_text()) for f in files}
    trials = [r for r in recs.values() if tuning.is_trial(r)]
    finals = [r for r in recs.values() if not tuning.is_trial(r)]
    # 2 trials x 3 arms x 1 tuning seed, then 3 arms x 2 evaluation seeds
    assert len(trials) == 6 and len(finals) == 6
    assert all(r["protocol"] == "tuned" and r["status"] == "ok" for r in recs.values())
    assert {r["seed"] for r in trials} == {tuning.TUNING_SEED_BASE} and {r["seed"] for r in finals} == {0, 1}
    for arm in ("baseline", "dendrites", "wide"):
        mine = sorted((r for r in trials if r["arm"] == arm), key=lambda r: r["config"]["tuning"]["trial"])
        assert [r["config"]["tuning"]["trial"] for r in mine] == [0, 1]
        assert len({r["config_hash"] for r in mine}) == 2  # the trial id and its settings are in the identity
        assert all(r["config"]["report_split"] == "val" for r in mine)  # scored on validation
        for r in mine:  # a trial's error is its validation error
            metric = r["metric"]["name"]
            assert r["error"] == pytest.approx(1 - r["val"][metric])
            assert r["config"]["budget_spec"]["lr"] == r["config"]["tuning"]["settings"]["lr"]
        best = min(mine, key=lambda r: (r["error"], r["config"]["tuning"]["trial"]))
        for f in (r for r in finals if r["arm"] == arm):
            info = f["config"]["tuning"]
            assert info["role"] == "final" and info["best_trial"] == best["config"]["tuning"]["trial"]
            assert f["config"]["budget_spec"]["lr"] == best["config"]["budget_spec"]["lr"]
            assert f["config"]["budget_spec"]["weight_decay"] == best["config"]["budget_spec"]["weight_decay"]
            assert f["config"]["report_split"] == "test"
    dend_trials = [r for r in trials if r["arm"] == "dendrites"]
    assert {r["config"]["dendrites"]["max_dendrites"] for r in dend_trials} == {
        r["config"]["tuning"]["settings"]["max_dendrites"] for r in dend_trials}
    assert "tuning: baseline: best trial" in out.stdout and "[tuned]" in out.stdout

    # the leaderboard: one row, from the final records only, labelled tuned
    rows = stats.summarize(list(recs.values()))
    assert len(rows) == 1 and rows[0].key.protocol == "tuned"
    assert sorted(r["seed"] for r in rows[0].records) == [0, 0, 0, 1, 1, 1]
    from dendrobench.leaderboard.build import build_site

    site = tmp_path / "site"
    build_site([results], site)
    assert "tuned: 2 Sobol trials per arm" in (site / "index.html").read_text()
    page = next((site / "tasks").glob("*.html")).read_text()
    assert "Tuning (protocol tuned)" in page and "K = 2 trials" in page and "weight_decay: log-uniform" in page

    # a second invocation trains nothing: every trial and final run resumes from its record
    mtimes = {f: f.stat().st_mtime_ns for f in files}
    again = cli(args, cli_env, tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("resume:") == 12
    assert sorted(results.glob("*.json")) == files and {f: f.stat().st_mtime_ns for f in files} == mtimes
