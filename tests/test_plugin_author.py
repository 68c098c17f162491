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


# -- point 3: every Budget field documented, listed without torch --------------------------------
def test_every_budget_field_has_a_meaning_in_the_torch_free_table_and_in_plugins_md():
    from dataclasses import fields

    from dendrobench.contract.budget_fields import BUDGET_FIELD_DOCS
    from dendrobench.contract.task import Budget

    names = [f.name for f in fields(Budget)]
    assert list(BUDGET_FIELD_DOCS) == names  # same fields, in the dataclass's order
    assert all(len(doc) > 15 for doc in BUDGET_FIELD_DOCS.values())
    docs = (Path(__file__).parents[1] / "docs" / "plugins.md").read_text()
    missing = [n for n in names if f"| `{n}` |" not in docs]
    assert not missing, f"docs/plugins.md's budget table lacks {missing}"


def test_list_budgets_names_every_field_with_its_meaning(capsys):
    from dendrobench.cli.listing import main
    from dendrobench.contract.budget_fields import BUDGET_FIELD_DOCS

    assert main(["budgets"]) == 0
    out = capsys.readouterr().out
    for name, doc in BUDGET_FIELD_DOCS.items():
        assert f"  {name:<26} {doc}" in out
    assert "budget_overrides.FIELD=VALUE" in out


# -- point 5: the dendrite count says it is a total ----------------------------------------------
def test_null_arm_message_says_the_final_count_is_a_total_over_layers():
    from dendrobench.running.runner import null_arm_reason

    msg = null_arm_reason(6, 0, 6, 1)
    assert "final model has 6 in total, summed over its layers; max_dendrites counts per layer" in msg


def test_scaffold_and_plugins_md_no_longer_promise_a_minute_per_arm():
    root = Path(__file__).parents[1]
    for path in (root / "docs" / "plugins.md", root / "dendrobench/authoring/templates/new_task/README.md.j2"):
        assert "about a minute per arm" not in path.read_text(), path


# -- point 6: wording ----------------------------------------------------------------------------
def test_a_task_whose_runs_all_failed_says_so_not_no_runs_recorded():
    import recordfactory as rf
    from dendrobench.leaderboard.build import format_task_row

    recs = [rf.make_record("mine", arm, 0, None, status="failed", message="loading data failed: boom").to_dict()
            for arm in ("baseline", "dendrites")]
    text = format_task_row(recs, "mine")
    assert text == "mine: all 2 runs failed, so there is no leaderboard row; first: loading data failed: boom"


def test_a_plugin_only_site_shows_no_built_in_claims(tmp_path):
    import recordfactory as rf
    from dendrobench.leaderboard.build import build_site

    rf.write(tmp_path / "res", rf.paired("my-plugin-task", {"baseline": [.2, .3], "dendrites": [.1, .25]}))
    res = build_site([tmp_path / "res"], tmp_path / "site")
    index = res.index.read_text()
    assert "my-plugin-task" in index
    assert "Published claims and reference numbers" not in index and "Abhishek Nandy" not in index
    claims = res.claims.read_text()
    assert "pai-hackathon-bbbp" not in claims and "No published claim was re-run" in claims
    # a bbbp row keeps its claims table
    rf.write(tmp_path / "res2", rf.paired("bbbp", {"baseline": [.2, .3], "dendrites": [.1, .25]}))
    assert "Published claims and reference numbers" in build_site([tmp_path / "res2"], tmp_path / "s2").index.read_text()


def test_small_effects_keep_two_significant_digits():
    from dendrobench.leaderboard.formatting import fmt_signed

    assert [fmt_signed(v) for v in (0.00031, -0.00012, 0.0, 0.0123, -0.25, 12.5)] == \
        ["+0.00031", "-0.00012", "0", "+0.012", "-0.250", "+12.50"]


def test_a_failed_run_s_record_names_the_plugin_line(tmp_path):
    from dendrobench.running.config import RunConfig, validate
    from dendrobench.running.runner import Suite

    def record(task: str) -> dict:
        run = RunConfig(task=task, budget="smoke", seed=0, arms=["baseline"], results_dir=str(tmp_path / task),
                        progress=False)
        validate(run)
        (rec,) = Suite(run, echo=lambda s: None).run_all()
        assert rec["status"] == "failed"
        return rec

    assert record("author_tasks:RaisesInTorch")["message"].endswith(f"(at author_tasks.py:{line_of('TORCH_CALL')})")
    assert record("author_tasks:ColumnOutput")["message"].endswith(f"(at author_tasks.py:{line_of('LOSS_LINE')})")


def test_the_end_of_run_summary_of_a_plugin_run_by_import_path_says_its_runs_failed(tmp_path, cli_env):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "dendrobench", "task=author_tasks:ReturnsTuple", "budget=smoke",
                          "seeds=1", "arms=[baseline,dendrites]", f"results_dir={tmp_path}", "threads=1"],
                         env=cli_env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert "no runs recorded" not in out.stdout
    assert "csv-task: all 2 runs failed, so there is no leaderboard row; first: loading data failed: TypeError: " \
           "load_data must return" in out.stdout, out.stdout + out.stderr


def test_check_task_takes_a_run_s_data_settings_too(tmp_path, capsys):
    write_csv_splits(tmp_path, duplicate=True)
    assert check_cli.main(["author_tasks:CsvTask", "data.source=online", f"data.root={tmp_path}",
                           "--only", "splits_disjoint"]) == 1
    assert "test[0] == train[7]" in capsys.readouterr().out
