"""Records: schema, atomic write, hashing."""

from __future__ import annotations

import json
import os

import pytest

from dendrobench.running.results import (
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


# -- issue 13 item 10: one bad file never stops a reader ---------------------------------------
def _good(tmp_path):
    rec = make_record(val={"accuracy": 0.9}, test={"accuracy": 0.8}, error=0.2,
                      history=[{"epoch": 1, "step": 10, "train_loss": 0.5, "val": {"accuracy": 0.9}, "event": None}])
    write_record(tmp_path / "good.json", rec)
    return json.loads((tmp_path / "good.json").read_text())


def _problems(tmp_path):
    problems = []
    found = list(iter_records(tmp_path, problems))
    return found, {p.name: why for p, why in problems}


def test_hostile_json_is_skipped_with_one_line_each(tmp_path):
    good = _good(tmp_path)
    (tmp_path / "deep.json").write_text("[" * 1000 + "]" * 1000)
    (tmp_path / "deep_in_config.json").write_text(
        json.dumps({**good, "config": {}}).replace('"config": {}', '"config": ' + "[" * 200 + "]" * 200))
    (tmp_path / "bigint.json").write_text(json.dumps({**good, "seed": 0}).replace('"seed": 0', '"seed": ' + "9" * 5000))
    (tmp_path / "params400.json").write_text(json.dumps({**good, "params": {"train": 1, "inference": int("9" * 400)}}))
    (tmp_path / "params200.json").write_text(json.dumps({**good, "params": {"train": 1, "inference": 10**200}}))
    (tmp_path / "val_list.json").write_text(json.dumps({**good, "history": [{**good["history"][0], "val": [0.5]}]}))
    (tmp_path / "nan.json").write_text(json.dumps({**good, "error": float("nan")}))
    (tmp_path / "negparams.json").write_text(json.dumps({**good, "params": {"train": -5, "inference": 3}}))
    (tmp_path / "val_str.json").write_text(json.dumps({**good, "test": {"accuracy": "high"}}))
    found, why = _problems(tmp_path)
    assert len(found) == 1 and found[0]["error"] == 0.2
    assert set(why) == {"deep.json", "deep_in_config.json", "bigint.json", "params400.json", "params200.json",
                        "val_list.json", "nan.json", "negparams.json", "val_str.json"}
    assert "nested too deeply" in why["deep.json"] and "nested more than 64" in why["deep_in_config.json"]
    assert "5000 digits" in why["bigint.json"]
    assert "400 digits" in why["params400.json"] and "params/inference" in why["params200.json"]
    assert "history/0/val" in why["val_list.json"]
    assert "NaN" in why["nan.json"] and "params/train" in why["negparams.json"]
    assert all("\n" not in w for w in why.values())


def test_only_regular_files_of_bounded_size_are_read(tmp_path, monkeypatch):
    import dendrobench.running.results as results

    _good(tmp_path)
    os.mkfifo(tmp_path / "x.json")  # opening it for reading would block forever
    (tmp_path / "zero.json").symlink_to("/dev/zero")  # reading it never ends
    monkeypatch.setattr(results, "MAX_RECORD_BYTES", 5000)
    (tmp_path / "huge.json").write_text(json.dumps({"message": "x" * 6000}))
    found, why = _problems(tmp_path)
    assert len(found) == 1
    assert "not a regular file" in why["x.json"] and "not a regular file" in why["zero.json"]
    assert "larger than" in why["huge.json"]


def test_tightened_schema_still_reads_what_the_runner_writes(tmp_path):
    """Every shape the runner writes stays valid: extra cost/dendrite keys, nulls, epochs, events."""
    rec = make_record(
        status="diverged", message="loss is NaN", error=None, val={"accuracy": float("inf")},
        params={"train": None, "inference": None},
        cost={"steps": 300, "epochs": 30, "wall_s": 1.9, "flops_per_sample": 30912.0, "peak_mem_mb": 839.8,
              "energy_kwh": None, "steps_per_epoch": 10},
        dendrites={"cycles": 2, "added": 6, "at_selected": 6, "final": 6, "engine_note": "pai"},
        history=[{"epoch": 1, "step": 10, "train_loss": float("nan"), "val": {"accuracy": None, "loss": 2.0},
                  "event": "dendrites_added"}],
        extra={"selected_epoch": 1, "data_info": {"rows": 10**9}})
    write_record(tmp_path / "r.json", rec)
    assert read_record(tmp_path / "r.json")["val"] == {"accuracy": None}


@pytest.mark.parametrize("mutate", [
    lambda d: d["history"][0].update(val=[0.5]),
    lambda d: d["history"][0].update(val={"accuracy": "x"}),
    lambda d: d["history"][0].update(step=-1),
    lambda d: d["history"][0].update(epoch=1.5),
    lambda d: d["history"][0].update(train_loss=True),
    lambda d: d["history"][0].update(event=3),
    lambda d: d["history"][0].pop("event"),
    lambda d: d["history"].append(7),
    lambda d: d.update(val={"accuracy": [1]}),
    lambda d: d.update(test={"accuracy": 1e301}),
    lambda d: d["params"].update(inference=10**16),
    lambda d: d["params"].update(train=2.5),
    lambda d: d["cost"].update(steps=-3),
    lambda d: d["cost"].update(wall_s=-1.0),
    lambda d: d["cost"].update(flops_per_sample="many"),
    lambda d: d["dendrites"].update(added=-1),
    lambda d: d["dendrites"].update(cycles=True),
])
def test_fast_reader_checks_agree_with_the_full_schema(tmp_path, mutate):
    """Readers check the nested parts in plain Python (speed); both paths must reject the same records."""
    data = _good(tmp_path)
    validate(data, full=False)
    validate(data, full=True)
    mutate(data)
    with pytest.raises(RecordError):
        validate(data, full=True)
    with pytest.raises(RecordError):
        validate(data, full=False)


def test_compiled_schema_check_accepts_and_rejects_exactly_as_jsonschema(tmp_path):
    """validate() asks fastjsonschema first and jsonschema only on a rejection: for every shallow field
    set to every kind of value, both must agree on what is a valid record."""
    import copy

    from dendrobench.running.results import _fast_check, _validator

    good = _good(tmp_path)
    values = [None, "", "x", -1, 0, 2, 2.0, 1.5, 10**20, True, [], [1], {}, {"a": 1}]
    paths = [(k,) for k in good] + [(k, j) for k in good if isinstance(good[k], dict) for j in good[k]]
    checked = rejected = 0
    for full in (True, False):
        fast, reference = _fast_check(full), _validator(full)
        for path in paths:
            for value in values:
                data = copy.deepcopy(good)
                (data[path[0]] if len(path) == 2 else data)[path[-1]] = value
                ok_ref = not any(True for _ in reference.iter_errors(data))
                try:
                    fast(data)
                    ok_fast = True
                except Exception:
                    ok_fast = False
                assert ok_fast == ok_ref, (full, path, value)
                checked += 1
                rejected += not ok_ref
    assert checked > 1000 and 0.2 < rejected / checked < 0.95
