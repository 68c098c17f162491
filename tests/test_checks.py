"""The contract checks: they pass on a good task and fail, with a reason, on deliberately broken ones.

Each broken task breaks exactly one clause; ``only=`` runs the checks that matter so the file stays fast.
"""

from __future__ import annotations

import socket

import pytest
import torch
from torch import nn
from torch.utils.data import ConcatDataset, Dataset, TensorDataset
from toy_task import SpiralTask, spirals

from dendrobench.authoring import check_cli, checks
from dendrobench.authoring.checks import CheckFailed, CheckResult, check_task, task_checks
from dendrobench.contract.task import Budget, TaskData


def by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}


# -- deliberately broken tasks ----------------------------------------------------------------
class OverlappingSplits(SpiralTask):
    def load_data(self, source, seed, root=None):
        data = super().load_data(source, seed, root)
        data.test = ConcatDataset([data.test, TensorDataset(*data.train[:5])])  # five training examples leak
        return data


class NonDeterministicSplit(SpiralTask):
    def load_data(self, source, seed, root=None):
        pool = spirals(1600, 7)
        order = torch.randperm(1600)  # unseeded: a different split on every load
        parts = [TensorDataset(*pool[order[a:b]]) for a, b in ((0, 800), (800, 1200), (1200, 1600))]
        return TaskData(*parts, dataset="spirals", source=source)


class OpensSocket(SpiralTask):
    def load_data(self, source, seed, root=None):
        try:  # a loader that "checks for updates" and falls back quietly: still a broken promise
            socket.create_connection(("example.com", 443), timeout=1).close()
        except OSError:
            pass
        return super().load_data(source, seed, root)


class WidthIgnored(SpiralTask):
    def build_model(self, data, width=1.0):
        return nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 2))


class LoadDataRaises(SpiralTask):
    name = "raises-in-load"

    def load_data(self, source, seed, root=None):
        raise FileNotFoundError("spirals.csv not found")


class BuildModelRaises(SpiralTask):
    def build_model(self, data, width=1.0):
        raise KeyError("in_features")


class NanLoss(SpiralTask):
    def loss(self, output, batch):
        return super().loss(output, batch) * float("nan")


class BadMetadata(SpiralTask):
    name = "Bad Name"
    description = ""
    metric = "f1"
    budgets = {"smoke": Budget(epochs=1, batch_size=8, lr=0.1), "quick": Budget(epochs=0, batch_size=8, lr=0.1)}


class Opaque:
    """An example part the generic hash cannot read (a plugin's own record type)."""

    def __init__(self, x: torch.Tensor, y: int):
        self.x, self.y = x, y


class OpaqueExamples(Dataset):
    def __init__(self, base: TensorDataset):
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> Opaque:
        x, y = self.base[i]
        return Opaque(x, int(y))


class OpaqueTask(SpiralTask):
    def load_data(self, source, seed, root=None):
        d = super().load_data(source, seed, root)
        return TaskData(OpaqueExamples(d.train), OpaqueExamples(d.val), OpaqueExamples(d.test), "spirals", source)


class OpaqueTaskWithKey(OpaqueTask):
    def example_key(self, example: Opaque):
        return (example.x, example.y)


# -- the good task ----------------------------------------------------------------------------
def test_every_check_passes_on_the_toy_task():
    results = check_task(SpiralTask())
    assert [r.name for r in results] == list(checks.CHECKS)
    failed = [f"{r.name}: {r.reason}" for r in results if not r.passed]
    assert not failed
    assert all(r.reason for r in results)  # a pass says what it saw
    assert "fixed-batch loss" in by_name(results)["trains_on_smoke"].reason


@pytest.mark.parametrize("check", task_checks(SpiralTask(), only=["metadata", "budgets", "splits_disjoint"]), ids=str)
def test_checks_parametrize_like_a_plugin_test_suite(check):
    result = check()  # raises CheckFailed on failure
    assert result.status == "pass"


def test_task_checks_by_registered_name_and_import_path():
    assert [c.name for c in task_checks("toy_task:SpiralTask", only=["metadata"])] == ["metadata"]
    assert {c.name for c in task_checks("bbbp")} == set(checks.CHECKS)  # creating checks loads nothing yet


# -- each broken clause is caught with a reason -----------------------------------------------
def test_overlapping_splits_fail_with_the_shared_examples():
    r = by_name(check_task(OverlappingSplits(), only=["splits_disjoint"]))["splits_disjoint"]
    assert r.status == "fail"
    assert "5 example(s) of test also in train" in r.reason and "(e.g. test[400] == train[0])" in r.reason


def test_non_deterministic_split_fails():
    r = by_name(check_task(NonDeterministicSplit(), only=["split_determinism"]))["split_determinism"]
    assert r.status == "fail"
    assert "differs between two loads with seed 0" in r.reason and "different examples" in r.reason


def test_opening_a_socket_in_offline_load_fails_even_when_the_loader_swallows_it():
    r = by_name(check_task(OpensSocket(), only=["offline_no_network"]))["offline_no_network"]
    assert r.status == "fail" and "tried the network" in r.reason and "example.com" in r.reason
    # the guard is off again: the call passes through to what was there before (conftest's own guard)
    from conftest import NetworkAccessError

    with socket.socket() as s, pytest.raises(NetworkAccessError):
        s.connect(("192.0.2.1", 80))


def test_ignored_width_fails_with_the_counts():
    r = by_name(check_task(WidthIgnored(), only=["width_multiplier"]))["width_multiplier"]
    assert r.status == "fail"
    assert "does not grow with width" in r.reason and "width 0.5: 22, width 1.0: 22, width 2.0: 22" in r.reason


def test_load_data_raising_is_a_failed_check_naming_the_task():
    results = by_name(check_task(LoadDataRaises()))
    assert results["metadata"].passed and results["budgets"].passed
    for name in ("offline_no_network", "split_determinism", "splits_disjoint", "metric_range", "trains_on_smoke",
                 "width_multiplier"):
        assert results[name].status == "fail"
        assert "task 'raises-in-load': load_data('offline', seed=0) raised FileNotFoundError: spirals.csv not found" \
            in results[name].reason


def test_build_model_raising_is_a_failed_check_naming_the_task():
    results = by_name(check_task(BuildModelRaises(), only=["width_multiplier", "trains_on_smoke", "metric_range"]))
    for r in results.values():
        assert r.status == "fail"
        assert "task 'spirals': build_model(data, width=" in r.reason and "KeyError" in r.reason
        assert "test_checks.py:" in r.reason  # where the plugin raised


def test_nan_loss_fails_smoke_training():
    r = by_name(check_task(NanLoss(), only=["trains_on_smoke"]))["trains_on_smoke"]
    assert r.status == "fail" and "non-finite training loss nan at step 1" in r.reason


def test_bad_metadata_metric_and_budgets_fail():
    results = by_name(check_task(BadMetadata(), only=["metadata", "metric", "budgets"]))
    assert "description is missing" in results["metadata"].reason
    assert "name 'Bad Name' is not a valid task name: use lower-case" in results["metadata"].reason
    assert "metric 'f1' is not a known evaluator" in results["metric"].reason
    assert "known: accuracy, mean_dice, perplexity, roc_auc" in results["metric"].reason
    assert "missing budget(s) standard, full" in results["budgets"].reason


def test_the_optional_converged_budget_is_checked_and_other_names_are_refused():
    good = SpiralTask()
    good.budgets = {**SpiralTask.budgets, "converged": Budget(epochs=4, batch_size=16, lr=1e-2)}
    r = by_name(check_task(good, only=["budgets"]))["budgets"]
    assert r.status == "pass" and r.reason.startswith("smoke, quick, standard, converged, full valid"), r.reason
    bad = SpiralTask()
    bad.budgets = {**SpiralTask.budgets, "converged": Budget(epochs=0, batch_size=16, lr=1e-2)}
    r = by_name(check_task(bad, only=["budgets"]))["budgets"]
    assert r.status == "fail" and "converged: budget epochs must be a positive integer" in r.reason
    odd = SpiralTask()
    odd.budgets = {**SpiralTask.budgets, "medium": Budget(epochs=4, batch_size=16, lr=1e-2)}
    r = by_name(check_task(odd, only=["budgets"]))["budgets"]
    assert r.status == "fail" and "unknown budget name(s) medium; valid names: smoke, quick" in r.reason


def test_examples_the_generic_hash_cannot_read_need_an_example_key():
    r = by_name(check_task(OpaqueTask(), only=["splits_disjoint"]))["splits_disjoint"]
    assert r.status == "fail" and "example_key(example)" in r.reason
    ok = by_name(check_task(OpaqueTaskWithKey(), only=["splits_disjoint", "split_determinism"]))
    assert all(r.status == "pass" for r in ok.values()), ok


def test_a_failing_check_raises_for_pytest_with_the_reason():
    (check,) = task_checks(WidthIgnored(), only=["width_multiplier"])
    with pytest.raises(CheckFailed, match="width_multiplier: parameter count does not grow"):
        check()


def test_example_digest_sees_content_dtype_and_structure():
    d = checks.example_digest
    t = SpiralTask()
    assert d(t, (torch.tensor([1.0, 2.0]), 1)) == d(t, (torch.tensor([1.0, 2.0]), 1))
    assert d(t, (torch.tensor([1.0, 2.0]), 1)) != d(t, (torch.tensor([1.0, 2.5]), 1))
    assert d(t, torch.tensor([1, 2])) != d(t, torch.tensor([1.0, 2.0]))
    assert d(t, torch.tensor(3)) != d(t, torch.tensor([3]))
    assert d(t, {"x": torch.zeros(2), "y": 0}) == d(t, {"y": 0, "x": torch.zeros(2)})


# -- the command ------------------------------------------------------------------------------
def test_cli_reports_each_check_and_a_summary(capsys):
    assert check_cli.main(["toy_task:SpiralTask", "--only", "metadata,width_multiplier"]) == 0
    out = capsys.readouterr().out
    assert "PASS  metadata" in out and "PASS  width_multiplier" in out
    assert "toy_task:SpiralTask: OK: 2 passed, 0 failed" in out


def test_cli_exit_1_when_a_check_fails(capsys):
    assert check_cli.main(["test_checks:WidthIgnored", "--only", "width_multiplier"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  width_multiplier" in out and "FAILED: 0 passed, 1 failed: width_multiplier" in out


def test_cli_unknown_task_is_one_line_listing_the_tasks(capsys):
    assert check_cli.main(["no-such-task"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown task 'no-such-task'; valid tasks: " in err and "bbbp" in err
    assert check_cli.main(["toy_task:SpiralTask", "--only", "speed"]) == 2
    assert "unknown check 'speed'; valid checks: metadata" in capsys.readouterr().err


class ConstructorRaises(SpiralTask):
    def __init__(self):
        raise RuntimeError("needs a licence key")


def test_cli_task_that_cannot_be_created_is_a_failed_check_not_a_traceback(capsys):
    assert check_cli.main(["test_checks:ConstructorRaises"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  loads" in out and "task 'test_checks:ConstructorRaises': creating the task raised RuntimeError: " \
        "needs a licence key" in out
    assert "Traceback" not in out
