"""Issue 13 (hardening): every fault a sweep can meet is recorded, named and survived.

The faults come from small plugins in ``tests/badtasks.py`` run by import path, as a user's plugin
would be. Runner behaviour is tested in process (fast); exit codes, signals and a run stuck in C
through the console script.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from dendrobench.running.config import RunConfig, validate
from dendrobench.running.runner import RUN_TMP_PREFIX, Suite


def suite(tmp_path, task, echo=None, **kw) -> Suite:
    kw.setdefault("arms", ["baseline", "dendrites"])
    run = RunConfig(task=task, budget="smoke", seed=0, results_dir=str(tmp_path / "res"), progress=False, **kw)
    validate(run)
    return Suite(run, echo=echo or (lambda s: None))


def records(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def cli(args, env, cwd, timeout=300):
    return subprocess.run([sys.executable, "-m", "dendrobench", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


# -- item 1: SystemExit / KeyboardInterrupt from a plugin ----------------------------------------
@pytest.mark.parametrize("task, message", [("badtasks:CallsSysExit", "SystemExit: 3"),
                                           ("badtasks:RaisesKeyboardInterrupt", "KeyboardInterrupt: not a real")])
def test_plugin_exit_or_fake_interrupt_is_a_failed_run_and_the_sweep_goes_on(tmp_path, task, message, monkeypatch):
    from dendrobench.running import interrupts

    monkeypatch.setattr(interrupts, "installed", lambda: True)  # as under the CLI: only a real signal stops
    recs = suite(tmp_path, task).run_all()
    assert [r["status"] for r in recs] == ["failed", "failed"]
    assert all(r["message"].startswith(message) for r in recs), [r["message"] for r in recs]
    assert len(records(tmp_path / "res")) == 2


def test_a_real_interrupt_still_stops_the_sweep(tmp_path, monkeypatch):
    from dendrobench.running import interrupts

    monkeypatch.setattr(interrupts, "installed", lambda: True)
    monkeypatch.setattr(interrupts, "_received", [signal.SIGINT])
    with pytest.raises(KeyboardInterrupt):
        suite(tmp_path, "badtasks:RaisesKeyboardInterrupt").run_all()
    assert records(tmp_path / "res") == []


def test_cli_exit_code_says_plugin_exits_failed(cli_env, tmp_path):
    out = cli(["task=badtasks:CallsSysExit", "budget=smoke", "seed=0", "arms=[baseline,dendrites]",
               f"results_dir={tmp_path / 'res'}"], cli_env, tmp_path)
    assert out.returncode == 1, out.stderr
    recs = records(tmp_path / "res")
    assert [r["status"] for r in recs] == ["failed", "failed"]


# -- item 2: run_timeout_s ------------------------------------------------------------------------
def test_run_stuck_in_python_is_stopped_recorded_and_the_sweep_goes_on(tmp_path):
    s = suite(tmp_path, "badtasks:LoopsForever", run_timeout_s=1.5)
    t0 = time.monotonic()
    recs = s.run_all()
    assert time.monotonic() - t0 < 20
    assert [r["status"] for r in recs] == ["failed", "failed"]
    assert all(r["message"] == "timeout after 1.5 s (run_timeout_s)" for r in recs)
    assert recs[0]["extra"]["run_timeout_s"] == 1.5


def test_timeout_defaults_and_validation():
    from dendrobench.errors import ConfigError
    from dendrobench.running.config import DEFAULT_RUN_TIMEOUT_S, effective_timeout

    run = RunConfig(task="toy_task:SpiralTask", budget="smoke")
    assert effective_timeout(run) == DEFAULT_RUN_TIMEOUT_S["smoke"] > 0
    assert effective_timeout(RunConfig(task="x", budget="full")) is None
    assert effective_timeout(RunConfig(task="x", budget="smoke", run_timeout_s=0)) is None
    with pytest.raises(ConfigError, match="run_timeout_s must be >= 0"):
        validate(RunConfig(task="toy_task:SpiralTask", run_timeout_s=-1))


def test_watchdog_calls_stuck_when_a_c_call_ignores_the_timeout():
    """libc sleep() through ctypes: the exception waits until the call returns, so after the grace
    period the watchdog hands over to ``stuck`` (which the runner uses to record and restart)."""
    import ctypes

    from dendrobench.running import watchdog

    stuck_at: list[float] = []
    t0 = time.monotonic()
    with pytest.raises(watchdog.RunTimeout):
        with watchdog.Watch(0.5, stuck=lambda: stuck_at.append(time.monotonic() - t0)):
            ctypes.CDLL(None).sleep(4)
            for _ in range(10**6):  # the pending exception is delivered here, once back in Python
                pass
    assert len(stuck_at) == 1 and 2.0 <= stuck_at[0] < 4.0
    assert watchdog.restart_process("x") is False  # not the dendrobench command: cannot restart


@pytest.mark.slow
def test_run_stuck_in_c_is_stopped_by_restarting_and_the_other_arms_run(cli_env, tmp_path):
    """The command restarts itself, keeps the finished records and the timed-out one, runs the rest.
    (The timeout is generous: an exception raised during a first-time import would break that
    module for the rest of the process, so the ok arms must finish well inside it.)"""
    res = tmp_path / "res"
    t0 = time.monotonic()
    out = cli(["task=badtasks:SlowOnlyForDendrites", "budget=smoke", "seed=0", "arms=[baseline,dendrites,compressed]",
               "run_timeout_s=40", f"results_dir={res}"], cli_env, tmp_path, timeout=600)
    assert time.monotonic() - t0 < 500
    assert out.returncode == 1, out.stderr[-2000:]
    by_arm = {r["arm"]: r for r in records(res)}
    assert by_arm["baseline"]["status"] == "ok" and by_arm["compressed"]["status"] == "ok", by_arm
    assert by_arm["dendrites"]["status"] == "failed"
    assert by_arm["dendrites"]["message"].startswith("timeout after 40 s")
    assert "restarting" in out.stdout + out.stderr


# -- item 3: the offline network guard at run time ------------------------------------------------
@pytest.mark.parametrize("task, host", [("badtasks:PhonesHome", "192.0.2.1"),
                                        ("badtasks:PhonesHomeQuietly", "example.com")])
def test_offline_run_that_reaches_for_the_network_fails_naming_the_host(tmp_path, task, host):
    recs = suite(tmp_path, task).run_all()
    assert [r["status"] for r in recs] == ["failed", "failed"]
    assert all(host in r["message"] for r in recs), [r["message"] for r in recs]
    assert recs[0]["extra"]["network_guard"].startswith("offline")


def test_guard_is_recorded_and_online_runs_are_not_guarded(tmp_path):
    ok = suite(tmp_path, "toy_task:SpiralTask", arms=["baseline"]).run_all()[0]
    assert ok["status"] == "ok" and ok["extra"]["network_guard"].startswith("offline: ")
    online = suite(tmp_path, "badtasks:PhonesHomeQuietly", arms=["baseline"], data_source="online").run_all()[0]
    assert online["status"] == "ok" and online["extra"]["network_guard"] == "none (online)"


# -- item 5: task identity --------------------------------------------------------------------------
def test_task_is_recorded_by_its_own_name_with_its_origin(tmp_path):
    messages: list[str] = []
    rec = suite(tmp_path, "toy_task:SpiralTask", arms=["baseline"], echo=messages.append).run_all()[0]
    assert rec["task"] == "spirals"
    assert rec["extra"]["task_origin"] == {"requested": "toy_task:SpiralTask", "class": "toy_task:SpiralTask",
                                           "via": "import path"}


def test_import_path_task_named_like_a_registered_one_warns(tmp_path, monkeypatch):
    from toy_task import SpiralTask

    from dendrobench.contract import registry
    from dendrobench.running.runner import task_origin

    fake = {"spirals": registry.Plugin("spirals", "elsewhere:Spirals", "someone")}
    monkeypatch.setattr(registry, "plugins", lambda kind: fake)
    origin = task_origin("toy_task:SpiralTask", SpiralTask())
    assert "share one leaderboard row" in origin["clash"]
    fake = {"spiral-alias": registry.Plugin("spiral-alias", "toy_task:SpiralTask", "someone")}
    origin = task_origin("spiral-alias", SpiralTask())
    assert origin["name"] == "spirals" and origin["via"] == "entry point" and "named 'spirals'" in origin["clash"]


# -- items 7, 8: an empty split; data loading that fails -----------------------------------------------
def test_empty_split_names_task_and_split(tmp_path):
    recs = suite(tmp_path, "badtasks:EmptyVal").run_all()
    assert "task 'spirals': the val split of 'spirals' (offline) is empty" in recs[0]["message"]


def test_failed_data_loading_is_said_once_per_seed_with_the_arms_it_blocked(tmp_path):
    said: list[str] = []
    recs = suite(tmp_path, "badtasks:DataFails", arms=["baseline", "dendrites", "wide"], echo=said.append).run_all()
    assert [r["status"] for r in recs] == ["failed"] * 3
    lines = (Path(__file__).parent / "badtasks.py").read_text().splitlines()
    line = lines.index('        raise RuntimeError("the data file is corrupt")') + 1
    message = f"loading data failed: RuntimeError: the data file is corrupt (at badtasks.py:{line})"  # the plugin's line
    assert all(r["message"] == message for r in recs)
    assert recs[0]["extra"]["blocked_arms"] == ["baseline", "dendrites", "wide"]
    failures = [s for s in said if "corrupt" in s]
    assert failures == [f"seed 0: {message} (arms not run: baseline, dendrites, wide)"]


# -- items 12, 13: leftovers of killed processes; file modes ---------------------------------------
def test_stale_temp_files_of_dead_processes_are_removed_on_the_next_run(tmp_path):
    from dendrobench.running.results import _tmp_tag

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = _tmp_tag().rsplit("-", 1)[0]
    res = tmp_path / "res"
    res.mkdir()
    orphan = res / f".spirals__baseline__seed0__abc.json.{host}-{dead.pid}.x1y2.tmp"
    orphan.write_text("{")
    live = res / f".spirals__baseline__seed0__abc.json.{_tmp_tag()}.x1y2.tmp"  # a writer still running
    live.write_text("{")
    legacy_old = res / ".spirals__wide__seed0__abc.json.k2j3h4.tmp"  # an older dendrobench's name
    legacy_old.write_text("{")
    os.utime(legacy_old, (time.time() - 7200, time.time() - 7200))
    legacy_new = res / ".spirals__wide__seed1__abc.json.k2j3h5.tmp"
    legacy_new.write_text("{")
    run_dir = Path(tempfile.gettempdir()) / f"{RUN_TMP_PREFIX}{dead.pid}-abc"
    run_dir.mkdir(exist_ok=True)
    suite(tmp_path, "toy_task:SpiralTask", arms=["baseline"])
    assert not orphan.exists() and live.exists() and not run_dir.exists()
    assert not legacy_old.exists() and legacy_new.exists()


def test_records_are_written_with_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        suite(tmp_path, "toy_task:SpiralTask", arms=["baseline"]).run_all()
    finally:
        os.umask(old)
    (path,) = (tmp_path / "res").glob("*.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_sigterm_stops_with_one_line_and_keeps_finished_runs(cli_env, tmp_path):
    res = tmp_path / "res"
    proc = subprocess.Popen([sys.executable, "-m", "dendrobench", "task=badtasks:Slow", "budget=smoke", "seeds=50",
                             "arms=[baseline]", f"results_dir={res}", "budget_overrides.steps_per_epoch=20"],
                            env=cli_env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list(res.glob("*.json"))) < 1:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == ("dendrobench: error: stopped (SIGTERM); finished runs are kept "
                                            "and resume on the next call")
    assert all(r["status"] == "ok" for r in records(res)) and records(res)
    assert not list(res.glob(".*.tmp"))


# -- item 9: files that cannot be written ---------------------------------------------------------------
def test_full_disk_during_a_record_write_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    import errno

    from dendrobench.cli import main as cli
    from dendrobench.running import results

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(results.os, "fsync", full)
    try:
        code = cli.main(["task=toy_task:SpiralTask", "budget=smoke", "seed=0", "arms=[baseline]",
                         f"results_dir={tmp_path / 'res'}"])
    except SystemExit as exc:  # in process, the Hydra job exits with the code
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "No space left on device" in err[0] and "records written before are kept" in err[0]
    assert not list((tmp_path / "res").glob("*.tmp")) and not list((tmp_path / "res").glob(".*.tmp"))


def test_results_dir_that_cannot_be_written_is_refused_before_training(tmp_path):
    from dendrobench.errors import ConfigError
    from dendrobench.running.config import check_writable

    with pytest.raises(ConfigError, match="results_dir '/proc/x' is not writable"):
        check_writable(Path("/proc/x"))


# -- item 4: a plugin that ignores `source` --------------------------------------------------------
def test_check_task_catches_a_loader_that_ignores_source():
    from dendrobench.authoring.checks import check_task

    (r,) = check_task("badtasks:IgnoresSource", only=["sources_differ"])
    assert r.status == "fail" and "returned dataset 'spirals', the same as offline" in r.reason
    (r,) = check_task("badtasks:SingleSource", only=["sources_differ"])
    assert r.status == "pass" and "single source" in r.reason
    (r,) = check_task("toy_task:DownloadFirstSpirals", only=["sources_differ"])
    assert r.status == "pass"  # declared single source


def test_check_task_does_not_compare_when_online_data_is_not_here():
    from toy_task import DownloadFirstSpirals

    from dendrobench.authoring.checks import check_task

    class TwoSources(DownloadFirstSpirals):
        single_source = False

    (r,) = check_task(TwoSources(), only=["sources_differ"])
    assert r.status == "warn" and "online data not available here" in r.reason and "--source online --root" in r.reason


def test_record_carries_the_dataset_the_loader_returned(tmp_path):
    rec = suite(tmp_path, "badtasks:IgnoresSource", arms=["baseline"], data_source="online").run_all()[0]
    assert rec["data_source"] == "online" and rec["dataset"] == "spirals"


# -- item 19: an import path that does not import ----------------------------------------------------
def test_import_path_that_is_not_importable_says_how_to_fix_it():
    from dendrobench.contract.registry import get_task, refresh
    from dendrobench.errors import ConfigError

    refresh()
    with pytest.raises(ConfigError, match=r"module 'mypkg.mytask' was not found .*must be importable: install its "
                                          r"package .* or put the folder holding 'mypkg' on PYTHONPATH"):
        get_task("mypkg.mytask:MyTask")
    with pytest.raises(ConfigError, match=r"module 'toy_task' has no 'NoSuchTask'"):
        get_task("toy_task:NoSuchTask")


# -- item 20: check-task and new-task agree ----------------------------------------------------------
def test_check_task_applies_the_new_task_name_rule(capsys):
    from toy_task import SpiralTask

    from dendrobench.authoring.checks import check_task

    class Underscored(SpiralTask):
        name = "my_task"

    (r,) = check_task(Underscored(), only=["metadata"])
    assert r.status == "fail" and "not a valid task name" in r.reason and "the rule of new-task" in r.reason


def test_check_task_list_points_to_docs_in_the_repo(capsys):
    from dendrobench.authoring import check_cli

    assert check_cli.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "DESIGN.md" not in out and "docs/plugins.md" in out
    assert (Path(__file__).resolve().parent.parent / "docs" / "plugins.md").is_file()


@pytest.mark.parametrize("name, cls", [("my-task", "MyTask"), ("ecg-beats", "EcgBeatsTask"), ("task", "Task")])
def test_scaffold_class_names_do_not_repeat_task(name, cls):
    from dendrobench.authoring.scaffold import Names

    assert Names.from_task_name(name).class_name == cls


# -- item 21: docs say what each evaluator expects -----------------------------------------------------
def test_plugins_doc_lists_every_evaluators_expected_input():
    from dendrobench.contract.metrics import EVALUATORS

    doc = (Path(__file__).resolve().parent.parent / "docs" / "plugins.md").read_text()
    for name, ev in EVALUATORS.items():
        assert f"| `{name}` | {ev.expected_input_format} |" in doc
    assert "must override `predictions`" in doc
