"""Issue 23: what a new plugin author hit in their first hour, each point pinned by a test.

The plugins are in ``tests/author_tasks.py``, named by import path as a user's own task could be.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from author_tasks import write_csv_splits

from dendrobench.authoring import check_cli
from dendrobench.authoring.checks import check_task

TASKS = Path(__file__).with_name("author_tasks.py")


def line_of(marker: str) -> int:
    """The line of ``author_tasks.py`` holding ``# <- MARKER``."""
    for n, text in enumerate(TASKS.read_text().splitlines(), 1):
        if f"# <- {marker}" in text:
            return n
    raise AssertionError(marker)


# -- point 2: check-task on the real files -------------------------------------------------------
def test_check_task_online_root_names_a_row_duplicated_across_train_and_test(tmp_path, capsys):
    write_csv_splits(tmp_path, duplicate=True)
    code = check_cli.main(["author_tasks:CsvTask", "--source", "online", "--root", str(tmp_path),
                           "--only", "splits_disjoint,split_determinism"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "FAIL  splits_disjoint" in out and "'csv-files' (online)" in out
    assert "1 example(s) of test also in train (e.g. test[0] == train[7])" in out
    assert "PASS  split_determinism" in out


def test_check_task_online_root_runs_every_data_check_on_the_real_files(tmp_path):
    write_csv_splits(tmp_path)
    results = {r.name: r for r in check_task("author_tasks:CsvTask", source="online", root=tmp_path)}
    assert all(r.status == "pass" for r in results.values()), {n: r.reason for n, r in results.items()}
    assert "'csv-files' (online)" in results["splits_disjoint"].reason
    assert "online 'csv-files'" in results["sources_differ"].reason
    assert "'csv-generated'" in results["offline_no_network"].reason  # that check stays on the offline data


def test_check_task_root_needs_the_online_source_and_a_folder(tmp_path, capsys):
    assert check_cli.main(["author_tasks:CsvTask", "--root", str(tmp_path)]) == 2
    assert "--root is only read with --source online" in capsys.readouterr().err
    assert check_cli.main(["author_tasks:CsvTask", "--source", "online", "--root", str(tmp_path / "no")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_sources_differ_warns_when_the_online_data_is_missing():
    (r,) = check_task("author_tasks:CsvTask", only=["sources_differ"])
    assert r.status == "warn", r
    assert "online data not available here" in r.reason and "--source online --root DIR" in r.reason


# -- point 4: errors name the plugin's file and line, the runner and the checker alike ------------
def test_load_data_returning_a_tuple_is_named_the_same_by_checker_and_runner(tmp_path):
    from dendrobench.running.config import RunConfig, validate
    from dendrobench.running.runner import Suite

    expected = f"load_data must return dendrobench.api.TaskData(train, val, test, dataset, source), got tuple " \
               f"(at author_tasks.py:{line_of('LOAD_DATA_DEF')})"
    results = check_task("author_tasks:ReturnsTuple")
    data_checks = [r for r in results if r.name not in ("metadata", "metric", "budgets")]
    assert data_checks and all(r.status == "fail" and expected in r.reason for r in data_checks), \
        [r.reason for r in data_checks]
    assert not any("checks.py" in r.reason or "check_state.py" in r.reason for r in results)

    run = RunConfig(task="author_tasks:ReturnsTuple", budget="smoke", seed=0, arms=["baseline"],
                    results_dir=str(tmp_path), progress=False)
    validate(run)
    (rec,) = Suite(run, echo=lambda s: None).run_all()
    assert rec["status"] == "failed" and expected in rec["message"], rec["message"]


def test_an_error_raised_inside_torch_is_located_at_the_plugin_line_that_called_it():
    (r,) = check_task("author_tasks:RaisesInTorch", only=["offline_no_network"])
    assert r.status == "fail" and f"(at author_tasks.py:{line_of('TORCH_CALL')})" in r.reason, r.reason


def test_two_logits_for_roc_auc_report_the_real_shape_and_the_fix():
    (r,) = check_task("author_tasks:TwoLogits", only=["metric_range"])
    assert r.status == "fail"
    assert "y_pred has shape (40, 2)" in r.reason and "(80,)" not in r.reason
    assert "overrides Task.predictions" in r.reason and "output[:, 1] - output[:, 0]" in r.reason


def test_an_n_by_1_output_against_n_targets_is_explained_before_torch_s_message():
    (r,) = check_task("author_tasks:ColumnOutput", only=["trains_on_smoke"])
    assert r.status == "fail"
    assert f"(at author_tasks.py:{line_of('LOSS_LINE')})" in r.reason, r.reason
    assert "output has shape (16, 1) and the targets (16,)" in r.reason and "squeeze(-1)" in r.reason


@pytest.mark.parametrize("frames_inside", ["dendrobench", "torch"])
def test_plugin_location_skips_library_frames(frames_inside):
    from dendrobench.contract.diagnostics import plugin_location

    def plugin_code():
        import torch

        torch.zeros(2) @ torch.zeros(3)  # raises inside torch

    try:
        if frames_inside == "dendrobench":
            from dendrobench.contract.task import require_task_data

            require_task_data(object(), ())
        else:
            plugin_code()
    except Exception as exc:  # noqa: BLE001
        where = plugin_location(exc)
    assert where.startswith(" (at test_plugin_author.py:"), where
