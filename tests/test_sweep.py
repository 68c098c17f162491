"""Sweeps: the pooled summary and exit code with every launcher, identical records whichever
launcher ran a job, ``jobs=``, and run claims (two sweeps on one folder train each run once)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from dendrobench.errors import ConfigError
from dendrobench.running import runlock as claims
from dendrobench.running.sweep import (
    apply_jobs,
    collect,
    expected_jobs,
    fix_sweep_dir,
    split_arms,
    split_top,
    write_outcome,
)

DIVERGES = "task=sweep_tasks:DivergesOnSeed1"
# what must be equal, bit for bit, between two runs of the same job (timings and dates may differ)
SAME = ("config_hash", "status", "val", "test", "error", "params", "history", "dendrites", "dataset")


def run(args, env, cwd, timeout=600):
    return subprocess.run(["dendrobench", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def records(folder: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def assert_same_records(a: Path, b: Path) -> None:
    ra, rb = records(a), records(b)
    assert ra and sorted(ra) == sorted(rb)  # the same file names: the same hashes
    for name in ra:
        for key in SAME:
            assert ra[name][key] == rb[name][key], (name, key)
        assert ra[name]["cost"]["flops_per_sample"] == rb[name]["cost"]["flops_per_sample"]


# -- arguments --------------------------------------------------------------------------------
def test_split_top_keeps_lists_whole():
    assert split_top("[baseline],[dendrites,wide]") == ["[baseline]", "[dendrites,wide]"]
    assert split_top("bbbp,cifar10") == ["bbbp", "cifar10"]
    assert split_top("[baseline,wide]") == ["[baseline,wide]"]


def test_jobs_gives_each_arm_a_job_of_its_own_but_leaves_user_sweeps_and_claims_alone():
    """One job per arm, arms varying fastest (a seed's dendrites job is handed out before its wide
    job); an arms sweep of the user's own, a single arm and a claim's protocols are left as given."""
    got = apply_jobs(["task=bbbp", "seeds=2", "arms=[baseline, dendrites]", "jobs=2"])
    assert [a for a in got if a.startswith("arms=")] == ["arms=[baseline],[dendrites]"]
    jobs = expected_jobs([a for a in got if a != "-m"])
    assert [j[-1] for j in jobs] == ["arms=[baseline]", "arms=[dendrites]"] * 2
    assert [j[1] for j in jobs] == ["seed=0", "seed=0", "seed=1", "seed=1"]
    for args in (["task=bbbp", "arms=[baseline],[dendrites,wide]"], ["task=bbbp", "arms=[wide]"],
                 ["claim=pai-hackathon-bbbp"]):
        assert split_arms(list(args)) == list(args)
    assert split_arms(["task=bbbp", "claim=null"])[-1] == "arms=[baseline],[dendrites],[wide]"
    assert apply_jobs(["task=bbbp", "jobs=1"]) == ["task=bbbp"]  # one process: arms in turn, as before


def test_jobs_becomes_a_joblib_multirun_over_seeds():
    assert apply_jobs(["task=bbbp", "jobs=1"]) == ["task=bbbp"]
    got = apply_jobs(["task=bbbp", "seeds=3", "jobs=2"])
    assert got[0] == "-m" and "seed=0,1,2" in got and not any(a.startswith("seeds=") for a in got)
    assert "hydra/launcher=local" in got and "hydra.launcher.n_jobs=2" in got
    assert "arms=[baseline],[dendrites],[wide]" in got
    mine = apply_jobs(["-m", "task=a,b", "seed=0", "jobs=auto", "hydra/launcher=submitit_local"])
    assert "hydra/launcher=local" not in mine and "seed=0" in mine
    with pytest.raises(ConfigError, match="jobs must be 'auto' or an integer >= 1"):
        apply_jobs(["task=bbbp", "jobs=0"])


def test_submitit_gets_a_time_limit_from_the_budget_and_local_submitit_a_bound():
    from dendrobench.running.sweep import timeout_minutes

    slurm = apply_jobs(["-m", "task=bbbp", "seed=0,1", "budget=standard", "hydra/launcher=slurm"])
    assert f"hydra.launcher.timeout_min={timeout_minutes(slurm)}" in slurm
    assert timeout_minutes(slurm) >= 3 * 60  # a standard job of 3 arms is ~3 h on 2 cores
    assert timeout_minutes(["budget=smoke,full", "seed=0"]) > timeout_minutes(["budget=quick", "seed=0"])
    mine = apply_jobs(["-m", "task=bbbp", "hydra/launcher=slurm", "hydra.launcher.timeout_min=7"])
    assert [a for a in mine if "timeout_min" in a] == ["hydra.launcher.timeout_min=7"]
    local = apply_jobs(["-m", "task=bbbp", "seed=0,1,2", "hydra/launcher=local_submitit", "jobs=2"])
    assert "hydra.sweeper.max_batch_size=2" in local and not any("n_jobs" in a for a in local)


@pytest.mark.parametrize("preset, target", [
    ("local", "hydra_joblib_launcher.joblib_launcher.JoblibLauncher"),
    ("local_submitit", "hydra_submitit_launcher.submitit_launcher.LocalLauncher"),
    ("slurm", "hydra_submitit_launcher.submitit_launcher.SlurmLauncher"),
])
def test_the_shipped_launcher_presets_compose(preset, target, cli_env, tmp_path):
    pytest.importorskip("hydra_plugins." + target.split(".")[0])
    out = run(["task=toy_task:SpiralTask", f"hydra/launcher={preset}", "--cfg=hydra"], cli_env, tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert target in out.stdout
    if preset == "slurm":
        assert "requeue: true" in out.stdout and "cpus_per_task: 1" in out.stdout and "partition: null" in out.stdout


def test_a_sweep_dir_with_the_time_in_it_is_resolved_once_in_the_parent(tmp_path, monkeypatch):
    """Hydra's own idiom, ``${now:...}``, would otherwise be resolved by each job: the parent could not
    find their outcomes, print no pooled table, and exit 0 whatever failed."""
    monkeypatch.setenv("SWEEP_BASE", str(tmp_path))
    args, folder = fix_sweep_dir(["-m", "task=bbbp", "hydra.sweep.dir=${oc.env:SWEEP_BASE}/s/${now:%Y}", "seed=0,1"])
    assert folder == tmp_path / "s" / time.strftime("%Y")
    assert args == ["-m", "task=bbbp", f"hydra.sweep.dir={folder}", "seed=0,1"]
    mine = ["-m", "hydra.sweep.dir=/x/${hydra.job.name}"]
    assert fix_sweep_dir(mine) == (mine, None)  # a runtime key: left to Hydra, no pooled summary


def test_sweep_dir_is_fixed_under_results_dir(tmp_path):
    args, folder = fix_sweep_dir(["-m", f"results_dir={tmp_path}/r,{tmp_path}/s"])
    assert folder.parent == (tmp_path / "r" / ".multirun") and f"hydra.sweep.dir={folder}" in args


def test_collect_names_jobs_that_never_reported_and_jobs_that_erred(tmp_path):
    write_outcome(tmp_path / "0", ["task=a"], [], error="data to download by hand")
    recs, problems = collect(tmp_path, [["task=a"], ["task=b"]])
    assert recs == [] and len(problems) == 2
    assert "job 0 (task=a): data to download by hand" in problems[0]
    assert "job 1 (task=b): no outcome" in problems[1]


# -- claims -----------------------------------------------------------------------------------
def test_a_claim_is_exclusive_and_released(tmp_path):
    rec = tmp_path / "x.json"
    first = claims.try_claim(rec)
    assert first is not None and claims.try_claim(rec) is None
    info = claims.read_claim(claims.claim_path(rec))
    assert info["pid"] == os.getpid() and info["host"] and info["started"]
    first.release()
    again = claims.try_claim(rec)
    assert again is not None
    again.release()
    assert not claims.claim_path(rec).exists()


def test_a_dead_holders_claim_is_reclaimed_and_an_old_foreign_one_too(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    rec = tmp_path / "x.json"
    claims.claim_path(rec).write_text(json.dumps({"host": claims._host(), "pid": dead.pid, "started": "x"}))
    got = claims.try_claim(rec)
    assert got is not None and claims.read_claim(claims.claim_path(rec))["pid"] == os.getpid()
    got.release()
    foreign = claims.claim_path(rec)
    foreign.write_text(json.dumps({"host": "another-node", "pid": 1, "started": "x"}))
    assert claims.try_claim(rec) is None  # alive as far as we can tell: its heartbeat is fresh
    old = time.time() - claims.STALE_AFTER_S - 5
    os.utime(foreign, (old, old))
    got = claims.try_claim(rec)
    assert got is not None
    got.release()


def test_a_requeued_slurm_job_takes_back_its_own_claim_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    rec = tmp_path / "x.json"
    claims.claim_path(rec).write_text(json.dumps({"host": "node-that-was-preempted", "pid": 7, "job": "4242",
                                                  "started": "x"}))
    got = claims.try_claim(rec)
    assert got is not None
    got.release()
    monkeypatch.setenv("SLURM_JOB_ID", "4343")  # another job's claim with a fresh heartbeat is respected
    claims.claim_path(rec).write_text(json.dumps({"host": "other", "pid": 7, "job": "4242", "started": "x"}))
    assert claims.try_claim(rec) is None


def test_two_concurrent_sweeps_train_each_run_once(cli_env, tmp_path):
    results = tmp_path / "res"
    args = ["task=toy_task:SpiralTask", "budget=smoke", "seeds=2", "arms=[baseline,dendrites]", f"results_dir={results}"]
    procs = [subprocess.Popen(["dendrobench", *args], env=cli_env, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    trained = sum(4 - out.count("resume:") for out, _ in outs)
    assert trained == 4, outs
    assert len(list(results.glob("*.json"))) == 4 and not list(results.glob("*.claim"))


# -- exit codes, pooled summary, identical records --------------------------------------------
def test_a_single_run_with_diverged_runs_exits_1_and_says_how_many(cli_env, tmp_path):
    out = run([DIVERGES, "budget=smoke", "seed=1", "arms=[baseline,dendrites]", f"results_dir={tmp_path / 'r'}"],
              cli_env, tmp_path)
    assert out.returncode == 1, out.stderr
    assert "2 of 2 runs did not finish ok (0 failed, 2 diverged)" in out.stderr


def test_a_sweep_in_a_timestamped_folder_still_pools_and_exits_1(cli_env, tmp_path):
    out = run(["-m", DIVERGES, "budget=smoke", "seed=0,1", "arms=[baseline]", f"results_dir={tmp_path / 'r'}",
               f"hydra.sweep.dir={tmp_path}/multirun/${{now:%Y-%m-%d}}/${{now:%H-%M-%S}}"], cli_env, tmp_path)
    assert out.returncode == 1, out.stderr
    assert "1 of 2 runs did not finish ok (0 failed, 1 diverged)" in out.stderr, out.stderr
    assert out.stdout.count("runs over the sweep") == 1


def test_joblib_sweep_pools_one_table_exits_1_and_matches_sequential_records(cli_env, tmp_path):
    common = [DIVERGES, "budget=smoke", "arms=[baseline,dendrites,wide]"]
    seq = run([*common, "seeds=2", f"results_dir={tmp_path / 'seq'}"], cli_env, tmp_path)
    par = run([*common, "seeds=2", "jobs=2", f"results_dir={tmp_path / 'par'}"], cli_env, tmp_path)
    for out in (seq, par):
        assert out.returncode == 1, out.stderr
        # seed 1 diverges in baseline and dendrites; its wide arm cannot match a diverged dendritic model
        assert "3 of 6 runs did not finish ok (1 failed, 2 diverged)" in out.stderr, out.stderr
    assert par.stdout.count("runs over the sweep") == 1 and par.stdout.count("RER vs base") == 1
    assert_same_records(tmp_path / "seq", tmp_path / "par")


def test_an_arms_sweep_runs_wide_in_its_own_job_after_the_dendrites_job(cli_env, tmp_path):
    results = tmp_path / "r"
    out = run(["-m", "task=toy_task:SpiralTask", "budget=smoke", "seed=0", "arms=[dendrites],[wide]", "jobs=2",
               f"results_dir={results}"], cli_env, tmp_path)
    assert out.returncode == 0, out.stderr
    recs = {r["arm"]: r for r in records(results).values()}
    assert sorted(recs) == ["dendrites", "wide"] and all(r["status"] == "ok" for r in recs.values())
    dend = recs["dendrites"]["params"]
    assert recs["wide"]["extra"]["target_params"] == (dend.get("final_inference") or dend["inference"])
    # gd with switch_mode=fixed says its final size in advance: the sweep's wide job did not wait, and
    # the planned size is the trained one (asserted above); with plateau switching it cannot
    assert recs["wide"]["extra"]["target_source"] == "planned by the engine"
    alone = run(["task=toy_task:SpiralTask", "budget=smoke", "seed=1", "arms=[wide]", "dendrites.switch_mode=plateau",
                 f"results_dir={results}"], cli_env, tmp_path)
    assert alone.returncode == 1 and "the dendrites arm of seed 1 with these settings has no record" in alone.stderr


@pytest.mark.slow  # about 100 s on 2 busy cores: submitit starts a fresh interpreter per job
def test_submitit_local_sweep_reports_and_matches_sequential_records(cli_env, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    common = [DIVERGES, "budget=smoke", "arms=[baseline,dendrites]"]
    seq = run([*common, "seeds=2", f"results_dir={tmp_path / 'seq'}"], cli_env, tmp_path)
    sub = run(["-m", *common, "seed=0,1", "hydra/launcher=local_submitit", "jobs=2", f"results_dir={tmp_path / 'sub'}"],
              cli_env, tmp_path)
    assert seq.returncode == 1 and sub.returncode == 1, sub.stderr
    assert "2 of 4 runs did not finish ok (0 failed, 2 diverged)" in sub.stderr
    assert "4 runs over the sweep" in sub.stdout and "RER vs base" in sub.stdout
    assert_same_records(tmp_path / "seq", tmp_path / "sub")


@pytest.mark.slow  # starts a local Ray cluster (~15 s) and a worker per job
def test_ray_sweep_reports_and_matches_sequential_records(cli_env, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    common = [DIVERGES, "budget=smoke", "arms=[baseline,dendrites]"]
    seq = run([*common, "seeds=2", f"results_dir={tmp_path / 'seq'}"], cli_env, tmp_path)
    ray = run(["-m", *common, "seed=0,1", "hydra/launcher=ray_jobs", f"results_dir={tmp_path / 'ray'}"],
              cli_env, tmp_path)
    assert seq.returncode == 1 and ray.returncode == 1, ray.stderr
    assert "2 of 4 runs did not finish ok (0 failed, 2 diverged)" in ray.stderr
    assert "4 runs over the sweep" in ray.stdout
    assert_same_records(tmp_path / "seq", tmp_path / "ray")


def test_the_thread_count_is_part_of_the_record_identity(tmp_path):
    import torch

    from dendrobench.running.config import RunConfig
    from dendrobench.running.results import config_hash
    from dendrobench.running.runner import Suite

    before = torch.get_num_threads()
    try:
        ids = {}
        for threads in (1, 2):
            suite = Suite(RunConfig(task="toy_task:SpiralTask", threads=threads, results_dir=str(tmp_path)),
                          echo=lambda _: None)
            assert torch.get_num_threads() == threads == suite.threads  # pinned for the run
            ids[threads] = suite.identity("baseline", 0)
    finally:
        torch.set_num_threads(before)
    assert ids[1]["threads"] == 1 and ids[2]["threads"] == 2
    assert "deterministic" in ids[1] and ids[1]["device"] == "cpu"
    assert config_hash(ids[1]) != config_hash(ids[2])
