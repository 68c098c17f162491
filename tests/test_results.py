"""Records: schema, atomic write, hashing."""

from __future__ import annotations

import json
import os

import pytest

from dendrobench.results import (
    Record,
    RecordError,
    atomic_write_json,
    config_hash,
    iter_records,
    read_record,
    record_path,
    validate,
    write_record,
)


def make_record(**kw) -> Record:
    base = dict(config_hash="abcdef0123456789", task="t", dataset="d", data_source="offline", arm="baseline",
                engine="gd", seed=0, budget="smoke", metric={"name": "accuracy", "higher_is_better": True},
                config={}, env={"python": "3", "torch": "2", "dendrobench": "0", "device": "cpu", "git_commit": None},
                started="2026-01-01T00:00:00Z", finished="2026-01-01T00:00:01Z")
    base.update(kw)
    return Record(**base)


def test_record_round_trip_and_schema(tmp_path):
    path = tmp_path / "r.json"
    rec = make_record(val={"accuracy": 0.9}, test={"accuracy": 0.8}, error=0.2)
    write_record(path, rec)
    data = read_record(path)
    assert data["schema_version"] == 1 and data["error"] == 0.2 and data["status"] == "ok"
    assert set(json.loads(path.read_text())) >= {"config_hash", "history", "cost", "params", "dendrites", "env"}


def test_nan_is_stored_as_null_so_any_reader_parses_it(tmp_path):
    path = tmp_path / "r.json"
    write_record(path, make_record(status="diverged", message="nan", val={"accuracy": float("nan")}))
    assert json.loads(path.read_text())["val"]["accuracy"] is None


@pytest.mark.parametrize("mutate, reason", [
    (lambda d: d.update(schema_version=2), "schema_version"),
    (lambda d: d.pop("cost"), "missing keys: cost"),
    (lambda d: d.update(arm="sideways"), "arm"),
    (lambda d: d.update(status="maybe"), "status"),
])
def test_invalid_records_are_rejected_with_a_reason(mutate, reason):
    data = make_record().to_dict()
    mutate(data)
    with pytest.raises(RecordError, match=reason):
        validate(data)


def test_truncated_file_is_reported_by_name(tmp_path):
    good = tmp_path / "good.json"
    write_record(good, make_record())
    bad = tmp_path / "bad.json"
    bad.write_text(good.read_text()[:40])
    problems = []
    found = list(iter_records(tmp_path, problems))
    assert len(found) == 1
    assert problems and problems[0][0] == bad and "not valid JSON" in problems[0][1]


def test_non_utf8_file_is_a_problem_not_the_end_of_the_walk(tmp_path):
    (tmp_path / "a.json").write_bytes(b"\xff\xfe{")
    write_record(tmp_path / "b.json", make_record())
    problems = []
    assert len(list(iter_records(tmp_path, problems))) == 1
    assert "not UTF-8" in problems[0][1]


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "r.json"
    atomic_write_json(path, {"v": 1})

    with pytest.raises(TypeError):  # a tuple key cannot be JSON: the write fails half-way
        atomic_write_json(path, {"v": 2, "k": {(1, 2): 3}})
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temp file left behind


def test_hash_is_stable_and_sensitive():
    a = {"task": "x", "seed": 0, "budget_spec": {"epochs": 2, "lr": 0.1}}
    assert config_hash(a) == config_hash(dict(reversed(list(a.items()))))
    assert config_hash(a) != config_hash({**a, "seed": 1})
    p = record_path(tmp := __import__("pathlib").Path("/r"), "a/b<c>", "wide", 3, config_hash(a))
    assert p.parent == tmp and "/" not in p.name.replace(".json", "") and "<" not in p.name
    assert os.path.basename(p).startswith("a_b_c___wide__seed3__")
