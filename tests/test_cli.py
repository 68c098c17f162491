"""The console script end to end on the synthetic task: bad input, runs, resume, no litter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TOY = "task=toy_task:SpiralTask"


def run(args, env, cwd, timeout=120):
    return subprocess.run(["dendrobench", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("args, expect", [
    (["task=nope"], "unknown task 'nope'; valid tasks: "),
    ([TOY, "dendrites=magic"], "unknown engine 'magic'; valid engines: .*gd.*none"),
    ([TOY, "budget=huge"], "unknown budget 'huge'; valid budgets: converged, full, quick, smoke, standard"),
    # converged is optional: a task without one names the budgets it has
    ([TOY, "budget=converged"], "unknown budget 'converged'; valid budgets: full, quick, smoke, standard"),
    ([TOY, "arms=[baseline,sideways]"], "unknown arm 'sideways'; valid arms: "),
    ([TOY, "seeds=0"], "seeds must be an integer >= 1"),
    ([TOY, "budget_overrides.epochs=-3"], "budget epochs must be a positive integer"),
    ([TOY, "budget_overrides.epoch=3"], "unknown budget field"),
    ([TOY, "dendrites.max_dendrite=3"], "valid parameters: .*max_dendrites"),
    ([TOY, "colour=red"], "unknown setting 'colour'; valid settings: task"),
    ([TOY, "data.source=cloud"], "unknown data source 'cloud'; valid data sources: offline, online"),
    ([TOY, "precision=fp16"], "unknown precision 'fp16'; valid precisions: bf16, fp32"),
    ([TOY, "results_dir=/etc/hostname/sub"], "results_dir .* is not a folder"),
    (["budget=smoke"], "no task given"),
    # issue 13 items 9 and 18: one line, exit 2, before any training
    ([TOY, "seed=0", "seeds=5"], "seed=0 and seeds=5 contradict each other"),
    ([TOY, "+data.split=random"], "unknown setting 'data.split'; valid data settings: data.source, data.root"),
    ([TOY, "data.split=random"], "unknown setting 'data.split'; valid data settings"),
    ([TOY, "+colour=red"], "unknown setting 'colour'; valid settings: task"),
    ([TOY, "arms=baseline,dendrites"], r"write arms=\[baseline,dendrites\]"),
    ([TOY, "results_dir=/proc/x"], "results_dir '/proc/x' is not writable"),
    (["-m", TOY, "results_dir=/proc/x"], "results_dir '/proc/x' is not writable"),
    ([TOY, "run_timeout_s=-1"], "run_timeout_s must be >= 0"),
])
def test_bad_input_is_one_line_exit_2(args, expect, cli_env, tmp_path):
    import re

    out = run(args + [f"results_dir={tmp_path / 'r'}"] * (not any(a.startswith("results_dir") for a in args)),
              cli_env, tmp_path)
    assert out.returncode == 2, out.stderr + out.stdout
    lines = [ln for ln in out.stderr.strip().splitlines() if ln]
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert re.search(expect, lines[0]), lines[0]
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").glob("*.json"))


def test_smoke_run_writes_records_prints_table_and_resumes(cli_env, tmp_path):
    results = tmp_path / "res"
    out = run([TOY, "budget=smoke", "seeds=2", f"results_dir={results}"], cli_env, tmp_path)
    assert out.returncode == 0, out.stderr
    for word in ("baseline", "dendrites", "wide", "RER vs base", "FLOPs/sample", str(results)):
        assert word in out.stdout
    files = sorted(results.glob("*.json"))
    assert len(files) == 6
    recs = [json.loads(f.read_text()) for f in files]
    assert {r["arm"] for r in recs} == {"baseline", "dendrites", "wide"}
    assert all(r["status"] == "ok" for r in recs)
    # nothing but the results in the working directory: no Hydra outputs/ or logs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]
    assert ("jobs=auto runs seeds and arms side by side" in out.stdout) == (len(os.sched_getaffinity(0)) > 1)
    mtimes = {f: f.stat().st_mtime_ns for f in files}
    again = run([TOY, "budget=smoke", "seeds=2", f"results_dir={results}"], cli_env, tmp_path)
    assert again.returncode == 0 and again.stdout.count("resume:") == 6
    assert {f: f.stat().st_mtime_ns for f in files} == mtimes


def test_corrupt_record_is_reported_kept_aside_and_redone(cli_env, tmp_path):
    results = tmp_path / "res"
    args = [TOY, "budget=smoke", "seed=0", "arms=[baseline]", f"results_dir={results}"]
    assert run(args, cli_env, tmp_path).returncode == 0
    [path] = results.glob("*.json")
    path.write_text('{"schema_version": 1, "task": ')
    out = run(args, cli_env, tmp_path)
    assert out.returncode == 0
    assert "unusable" in out.stdout and path.name in out.stdout
    aside = list(results.glob("*.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == '{"schema_version": 1, "task": '
    assert json.loads(path.read_text())["status"] == "ok"


def test_the_parallel_tip_shows_only_where_it_would_help(monkeypatch):
    from dendrobench.cli import main as cli
    from dendrobench.running import sweep

    monkeypatch.setattr(sweep, "parse_jobs", lambda value: 2)
    assert "jobs=auto" in cli.parallel_tip([{}, {}], ["task=bbbp"])
    assert cli.parallel_tip([{}], ["task=bbbp"]) is None  # one run: nothing to parallelise
    assert cli.parallel_tip([{}, {}], ["task=bbbp", "jobs=1"]) is None  # the user chose
    monkeypatch.setattr(sweep, "parse_jobs", lambda value: 1)
    assert cli.parallel_tip([{}, {}], ["task=bbbp"]) is None  # one core


def test_online_data_to_download_is_one_line_and_records_nothing(cli_env, tmp_path):
    results = tmp_path / "res"
    out = run(["task=toy_task:DownloadFirstSpirals", "data.source=online", "budget=smoke", "seed=0",
               f"results_dir={results}"], cli_env, tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    [line] = out.stderr.strip().splitlines()
    assert "download it from" in line and "spirals.csv" in line
    assert not results.exists() or not list(results.glob("*.json"))


def test_list_shows_tasks_engines_budgets(cli_env, tmp_path):
    out = run(["list"], cli_env, tmp_path)
    assert out.returncode == 0, out.stderr
    for word in ("tasks:", "engines", "gd", "max_dendrites", "budget smoke", "dendrite kinds"):
        assert word in out.stdout


def test_multirun_runs_every_job_and_keeps_the_cwd_clean(cli_env, tmp_path):
    results = tmp_path / "res"
    out = run(["-m", TOY, "budget=smoke", "seed=0,1", "arms=[baseline]", f"results_dir={results}"], cli_env, tmp_path)
    assert out.returncode == 0, out.stderr
    assert len(list(results.glob("*.json"))) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]


def test_help_and_python_module_entry(cli_env, tmp_path):
    out = subprocess.run([sys.executable, "-m", "dendrobench", "--help"], env=cli_env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "dendrobench task=NAME" in out.stdout
    assert Path(tmp_path).exists()


def test_data_root_without_the_online_source_is_refused_before_training(tmp_path):
    """Issue 23, point 1: `data.root` with the offline default was silently ignored (the run trained
    on the stand-in). It is now one line, exit 2, before anything is written."""
    out = subprocess.run(["dendrobench", "task=credit-default", "budget=smoke", f"data.root={tmp_path}",
                          f"results_dir={tmp_path / 'r'}"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr
    lines = [line for line in out.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "data.source=online" in lines[0], out.stderr
    assert not list((tmp_path / "r").rglob("*.json"))  # an empty folder at most: no record written
