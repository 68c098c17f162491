"""The credit-default task: offline German credit, the MLP, and the online loader served from a
fixture in scikit-learn's own OpenML cache format (no network: conftest forbids sockets)."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from dendrobench.tasks import credit_default as mod
from dendrobench.tasks.credit_default import OPENML_ID, UCI_FEATURES, CreditDefaultTask
from tasktools import fit_batch, shared_data

from dendrobench.contract.registry import get_task
from dendrobench.errors import DataUnavailableError
from dendrobench.running.cost import count_params


@pytest.fixture(autouse=True)
def offline_cache(tmp_path, monkeypatch):
    """A private cache, downloads forbidden, and scikit-learn's OpenML fetcher unable to reach the
    network (not even a DNS lookup): anything not in the fixture cache fails at once."""
    import urllib.error

    import sklearn.datasets._openml as openml

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network unreachable (test)")

    monkeypatch.setenv("DENDROBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DENDROBENCH_OFFLINE", "1")
    monkeypatch.setattr(openml, "urlopen", refuse)
    monkeypatch.setattr(openml.time, "sleep", lambda s: None)


@pytest.fixture(scope="module")
def german():
    return CreditDefaultTask().load_data("offline", 0)


def rows(ds) -> set[bytes]:
    x, y = ds.tensors
    return {x[i].numpy().tobytes() + y[i].numpy().tobytes() for i in range(len(y))}


# -- offline data ---------------------------------------------------------------------------------
def test_registered_and_described():
    task = get_task("credit-default")
    assert isinstance(task, CreditDefaultTask)
    assert task.metric == "roc_auc" and task.modality == "tabular"
    assert set(task.budgets) == {"smoke", "quick", "standard", "converged", "full"}


def test_german_credit_labels_bad_credit_as_positive():
    features, y, categorical = mod.load_german_credit()
    raw = pd.read_csv(mod.german_credit_path())
    assert len(y) == 1000 and int(y.sum()) == 300  # 300 bad / 700 good, as in Statlog German credit
    assert raw["RESPONSE"].iloc[0] == 1 and y[0] == 0  # applicant 1 is "good" in german.data
    assert "OBS#" not in features.columns and "RESPONSE" not in features.columns
    assert categorical == list(mod.GERMAN_CATEGORICAL)


def test_offline_splits(german):
    assert german.dataset == "german-credit" and german.source == "offline"
    assert (len(german.train), len(german.val), len(german.test)) == (600, 200, 200)
    for part in (german.train, german.val, german.test):
        assert abs(float(part.tensors[1].mean()) - 0.3) < 0.01  # stratified
    n_numeric = german.info["features"]["numeric"]
    x_train = german.train.tensors[0][:, :n_numeric]
    assert torch.allclose(x_train.mean(0), torch.zeros(n_numeric), atol=1e-4)  # scaler fitted on train
    assert german.meta["in_features"] == german.train.tensors[0].shape[1] > n_numeric  # one-hot columns


def test_offline_split_deterministic_and_disjoint(german):
    again = CreditDefaultTask().load_data("offline", 7)  # another seed: the same fixed split
    for a, b in ((german.train, again.train), (german.val, again.val), (german.test, again.test)):
        assert torch.equal(a.tensors[0], b.tensors[0]) and torch.equal(a.tensors[1], b.tensors[1])
    train, val, test = rows(german.train), rows(german.val), rows(german.test)
    assert not (train & val) and not (train & test) and not (val & test)


def test_tensor_batches_are_the_per_item_loaders_bit_for_bit(german):
    """The batched reader must not change a single record: same sampler draws, same batches, and
    the global RNG untouched (the per-item loader draws its worker seed from the generator)."""
    from torch.utils.data import DataLoader

    task = CreditDefaultTask()
    for shuffle, size in ((True, 64), (True, 1024), (False, 128)):
        g_old, g_new = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
        per_item = DataLoader(german.train, batch_size=size, shuffle=shuffle, generator=g_old if shuffle else None)
        batched = task.dataloader(german.train, size, shuffle, g_new if shuffle else None)
        for _epoch in range(3):
            torch.manual_seed(1)
            a = list(per_item)
            after_per_item = torch.get_rng_state()
            torch.manual_seed(1)
            b = list(batched)
            assert torch.equal(after_per_item, torch.get_rng_state())  # the same global draws, if any
            assert len(a) == len(b) == -(-len(german.train) // size)
            for (xa, ya), (xb, yb) in zip(a, b):
                assert torch.equal(xa, xb) and torch.equal(ya, yb)
        assert torch.equal(g_old.get_state(), g_new.get_state())


# -- model --------------------------------------------------------------------------------------
def test_model_shapes_and_width(german):
    task = CreditDefaultTask()
    model = task.build_model(german)
    batch = next(iter(task.dataloader(german.val, 32, False, None)))
    assert model(*task.inputs(batch)).shape == (32, 1)
    assert count_params(task.build_model(german, 2.0)) > count_params(model) > count_params(task.build_model(german, 0.5))
    task.configure("full")
    assert count_params(task.build_model(german)) > count_params(model)


def test_a_few_steps_reduce_the_loss_and_evaluate(german):
    task = CreditDefaultTask()
    torch.manual_seed(0)
    model = task.build_model(german)
    batch = next(iter(task.dataloader(german.train, 256, True, torch.Generator().manual_seed(0))))
    first = fit_batch(task, model, batch, steps=40, lr=5e-3)[0]
    assert task.loss(model(*task.inputs(batch)), batch).item() < 0.8 * first
    scores = task.evaluate(model, task.dataloader(german.val, 1024, False, None), torch.device("cpu"))
    assert set(scores) == {"roc_auc", "accuracy"} and 0.5 < scores["roc_auc"] <= 1


# -- online: a fixture in scikit-learn's OpenML cache format --------------------------------------
N_ROWS = 60


def uci_rows(n: int = N_ROWS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Plausible card rows in UCI's column order (23 integers) and labels (a third default)."""
    rng = np.random.default_rng(seed)
    limit = rng.integers(1, 50, n) * 10_000
    sex = rng.integers(1, 3, n)
    edu = rng.integers(1, 5, n)
    mar = rng.integers(1, 4, n)
    age = rng.integers(21, 70, n)
    pay = rng.integers(-2, 4, (n, 6))
    bill = rng.integers(0, 100_000, (n, 6))
    paid = rng.integers(0, 10_000, (n, 6))
    x = np.column_stack([limit, sex, edu, mar, age, pay, bill, paid])
    y = (np.arange(n) % 3 == 0).astype(int)
    return x, y


def gz_json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        json.dump(obj, f)


def write_openml_cache(data_home: Path) -> Path:
    """What ``fetch_openml(data_id=42477, data_home=...)`` leaves behind: description, features and
    qualities JSON and the ARFF file, gzipped under ``openml/openml.org/``. Columns as on OpenML (x1..x23,
    y); ``x2`` (sex) nominal, to cover category columns. Returns the cached ARFF's path."""
    x, y = uci_rows()
    names = [f"x{i}" for i in range(1, 24)]
    lines = ["% fixture in the layout of OpenML 42477", "@RELATION default-of-credit-card-clients", ""]
    lines += ["@ATTRIBUTE x2 {1,2}" if n == "x2" else f"@ATTRIBUTE {n} NUMERIC" for n in names]
    lines += ["@ATTRIBUTE y {0,1}", "", "@DATA"]
    lines += [",".join(str(int(v)) for v in row) + f",{t}" for row, t in zip(x, y)]
    arff = ("\n".join(lines) + "\n").encode()
    file_id = "999001"
    url = f"https://www.openml.org/data/v1/download/{file_id}/default-of-credit-card-clients.arff"
    base = data_home / "openml" / "openml.org"
    arff_path = base / "data" / "v1" / "download" / file_id / "default-of-credit-card-clients.arff.gz"
    arff_path.parent.mkdir(parents=True)
    arff_path.write_bytes(gzip.compress(arff))
    gz_json(base / "api" / "v1" / "json" / "data" / f"{OPENML_ID}.gz", {"data_set_description": {
        "id": str(OPENML_ID), "name": "default-of-credit-card-clients", "version": "1",
        "description": "fixture", "format": "ARFF", "url": url, "file_id": file_id,
        "default_target_attribute": "y", "status": "active", "md5_checksum": hashlib.md5(arff).hexdigest()}})
    features = []
    for i, n in enumerate(names + ["y"]):
        nominal = n in ("x2", "y")
        feat = {"index": str(i), "name": n, "data_type": "nominal" if nominal else "numeric",
                "is_target": "true" if n == "y" else "false", "is_ignore": "false",
                "is_row_identifier": "false", "number_of_missing_values": "0"}
        if nominal:
            feat["nominal_values"] = json.dumps(["1", "2"] if n == "x2" else ["0", "1"])
        features.append(feat)
    gz_json(base / "api" / "v1" / "json" / "data" / "features" / f"{OPENML_ID}.gz", {"data_features": {"feature": features}})
    gz_json(base / "api" / "v1" / "json" / "data" / "qualities" / f"{OPENML_ID}.gz", {"data_qualities": {"quality": [
        {"name": "NumberOfInstances", "value": f"{N_ROWS}.0"}, {"name": "NumberOfFeatures", "value": "24.0"}]}})
    return arff_path


def test_online_from_openml_cache(tmp_path):
    home = tmp_path / "cache" / "sklearn"  # the default data_home under DENDROBENCH_CACHE
    write_openml_cache(home)
    data = CreditDefaultTask().load_data("online", 0)
    assert data.dataset == "uci-credit-default" and data.source == "online"
    assert data.info["from"] == f"openml:{OPENML_ID}"
    assert sum(len(p) for p in (data.train, data.val, data.test)) == N_ROWS
    assert int(sum(p.tensors[1].sum() for p in (data.train, data.val, data.test))) == N_ROWS // 3
    names = data.meta["feature_names"]
    assert "num__LIMIT_BAL" in names and "num__PAY_0" in names and "cat__SEX_1" in names  # UCI names back
    train, val, test = rows(data.train), rows(data.val), rows(data.test)
    assert not (train & val) and not (train & test) and not (val & test)
    task = CreditDefaultTask()
    model = task.build_model(data)
    batch = next(iter(task.dataloader(data.test, 64, False, None)))
    scores = task.evaluate(model, [batch], torch.device("cpu"))
    assert model(*task.inputs(batch)).shape == (len(data.test), 1) and 0 <= scores["roc_auc"] <= 1


def test_online_matches_between_openml_and_csv_layouts(tmp_path):
    """The same rows as OpenML (x1..x23 / y) and as Kaggle's UCI CSV give the same features."""
    write_openml_cache(tmp_path / "cache" / "sklearn")
    from_openml = CreditDefaultTask().load_data("online", 0)
    x, y = uci_rows()
    csv = pd.DataFrame(x, columns=[("PAY_1" if c == "PAY_0" else c) for c in UCI_FEATURES])
    csv.insert(0, "ID", np.arange(1, len(y) + 1))
    csv["default.payment.next.month"] = y
    root = tmp_path / "elsewhere"
    root.mkdir()
    csv.to_csv(root / mod.CSV_NAME, index=False)
    from_csv = CreditDefaultTask().load_data("online", 0, root=root)
    assert from_csv.info["from"] == str(root / mod.CSV_NAME)
    assert torch.allclose(from_csv.train.tensors[0], from_openml.train.tensors[0])
    assert torch.equal(from_csv.test.tensors[1], from_openml.test.tensors[1])


def test_missing_online_data_names_what_and_where(tmp_path):
    with pytest.raises(DataUnavailableError) as err:
        CreditDefaultTask().load_data("online", 0)
    msg = str(err.value)
    assert str(tmp_path / "cache" / "sklearn") in msg and f"data_id={OPENML_ID}" in msg
    assert str(tmp_path / "cache" / "credit-default" / mod.CSV_NAME) in msg


def test_no_network_fails_fast_with_a_clear_error(tmp_path, monkeypatch):
    """Downloads allowed but the network is down: fetch_openml's error becomes ours, at once."""
    monkeypatch.delenv("DENDROBENCH_OFFLINE")  # urlopen is refused by the autouse fixture
    with pytest.raises(DataUnavailableError, match="the download failed"):
        CreditDefaultTask().load_data("online", 0)


def test_corrupt_cached_file_is_reported(tmp_path):
    arff = write_openml_cache(tmp_path / "cache" / "sklearn")
    arff.write_bytes(gzip.compress(b"@RELATION broken\n@DATA\n1,2\n"))
    with pytest.raises(DataUnavailableError, match="corrupt or partial"):
        CreditDefaultTask().load_data("online", 0)


def test_csv_with_wrong_columns_is_named(tmp_path):
    root = tmp_path / "r"
    root.mkdir()
    (root / mod.CSV_NAME).write_text("a,b\n1,2\n")
    with pytest.raises(DataUnavailableError, match=mod.CSV_NAME):
        CreditDefaultTask().load_data("online", 0, root=root)


# -- issue 10: files placed in data.root, split and model options ----------------------------------
def write_root_csv(root: Path, header: str, n: int = N_ROWS) -> Path:
    """UCI_Credit_Card.csv as circulated: UCI's ``ID, X1..X23, Y`` or Kaggle's named header."""
    x, y = uci_rows(n)
    if header == "uci":
        cols = [f"X{i}" for i in range(1, 24)]
        target = "Y"
    else:
        cols = [("PAY_1" if c == "PAY_0" else c) for c in UCI_FEATURES]
        target = "default.payment.next.month"
    table = pd.DataFrame(x, columns=cols)
    table.insert(0, "ID", np.arange(1, n + 1))
    table[target] = y
    root.mkdir(parents=True, exist_ok=True)
    table.to_csv(root / mod.KAGGLE_CSV, index=False)
    return root / mod.KAGGLE_CSV


@pytest.mark.parametrize("header", ["uci", "kaggle"])
def test_uci_credit_card_csv_in_data_root(tmp_path, header):
    path = write_root_csv(tmp_path / "root", header)
    data = CreditDefaultTask().load_data("online", 0, root=path.parent)
    assert data.dataset == "uci-credit-default" and data.info["from"] == str(path)
    assert data.info["rows"] == N_ROWS and data.info["positives"] == N_ROWS // 3
    assert "random_stratified 0.7/0.15/0.15" in data.info["split"] and "random_state=0" in data.info["split"]


def test_both_headers_give_the_same_tensors(tmp_path):
    a = CreditDefaultTask().load_data("online", 0, root=write_root_csv(tmp_path / "a", "uci").parent)
    b = CreditDefaultTask().load_data("online", 0, root=write_root_csv(tmp_path / "b", "kaggle").parent)
    assert torch.equal(a.train.tensors[0], b.train.tensors[0]) and torch.equal(a.test.tensors[1], b.test.tensors[1])


def test_xls_without_xlrd_says_what_to_install(tmp_path, monkeypatch):
    import importlib.util

    root = tmp_path / "root"
    root.mkdir()
    (root / mod.UCI_XLS).write_bytes(b"\xd0\xcf\x11\xe0")  # an OLE2 header: what an .xls starts with
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "xlrd" else real(name, *a))
    with pytest.raises(DataUnavailableError, match="needs the package xlrd"):
        CreditDefaultTask().load_data("online", 0, root=root)


def _task(**options):
    from dendrobench.contract.options import parse_options

    task = CreditDefaultTask()
    task.configure("quick")
    task.set_options(parse_options(task, options))
    return task


def test_claim_split_and_model_options(tmp_path):
    """The PAI claim's protocol: 70/15/15 stratified with seed 1337, MLP [128, 128, 64], 23 inputs."""
    root = write_root_csv(tmp_path / "root", "uci", n=200).parent
    default = CreditDefaultTask().load_data("online", 0, root=root)
    task = _task(fractions=[0.7, 0.15, 0.15], split_seed=1337, hidden=[128, 128, 64], dropout=0.25,
                 encoding="numeric")
    data = task.load_data("online", 0, root=root)
    assert "random_state=1337" in data.info["split"]
    assert [len(p) for p in (data.train, data.val, data.test)] == [len(p) for p in (default.train, default.val, default.test)]
    assert not torch.equal(data.test.tensors[1], default.test.tensors[1]) or \
        not torch.equal(data.test.tensors[0][:, 0], default.test.tensors[0][:, 0])  # other rows
    assert data.meta["in_features"] == 23 and default.meta["in_features"] > 23  # no one-hot
    model = task.build_model(data)
    assert count_params(model) == 27_905  # the claim's baseline MLP, as its README counts it
    assert any(isinstance(m, torch.nn.Dropout) and m.p == 0.25 for m in model.modules())
    moved = _task(split_seed="seed").load_data("online", 3, root=root)
    assert "random_state=3" in moved.info["split"]


@pytest.mark.parametrize("options, expect", [
    ({"fractions": [0.7, 0.2, 0.2]}, "fractions must be three numbers"),
    ({"hidden": [128, 0]}, "hidden must be a non-empty list"),
    ({"encoding": "ordinal"}, "task_options.encoding must be onehot | numeric"),
    ({"split": "scaffold"}, "task_options.split must be random_stratified"),
])
def test_bad_credit_options(options, expect):
    from dendrobench.contract.options import parse_options
    from dendrobench.errors import ConfigError

    with pytest.raises(ConfigError, match=expect.replace("|", r"\|").replace("[", r"\[")):
        parse_options(CreditDefaultTask, options)


@pytest.mark.slow
def test_real_uci_credit_counts():
    root = shared_data("uci-credit-default/UCI_Credit_Card.csv").parent
    data = _task(split_seed=1337).load_data("online", 0, root=root)
    assert data.info["rows"] == 30_000 and data.info["positives"] == 6_636  # 22.12 %
    assert data.info["split_sizes"] == {"train": 21_000, "val": 4_500, "test": 4_500}
