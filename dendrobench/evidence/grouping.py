"""Records into leaderboard rows: which runs may be pooled and paired (the module docstring of
:mod:`dendrobench.evidence.stats` states the rules), how a row is keyed and labelled, and which record
of several for one (row, arm, seed) counts. Kept apart from the tests and intervals so that "what is
a row" can be read, and changed, without the statistics.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from dendrobench.evidence.fields import _canon, _recency, claim_of, dedupe, protocol_of


class GroupKey(NamedTuple):
    """What identifies one leaderboard row. The first five fields are what the index shows as
    columns; ``row_id`` (a short hash of every setting, see :func:`row_settings`) tells apart rows
    that share them but differ in a setting (an engine parameter, a budget override ...)."""

    task: str
    dataset: str | None
    data_source: str
    engine: str
    budget: str
    protocol: str = "matched"
    claim: str | None = None
    row_id: str = ""



def _flat(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(f"{prefix}.{k}" if prefix else str(k), v))
        return out
    if isinstance(value, list):
        value = tuple(value)
    return {prefix: value}


def scale_settings(record: dict[str, Any]) -> dict[str, Any]:
    """What no two runs may differ in to be pooled at all, whatever the protocol: task and its
    version, data, claim, budget name and a precision other than fp32. A claim's summary keeps one
    such set (a smoke check beside the real run is never mixed in); a row adds the rest
    (:func:`common_settings`)."""
    cfg = record.get("config") or {}
    out = {"task": str(record["task"]), "task_version": cfg.get("task_version"),
           "dataset": record.get("dataset"), "data_source": str(record["data_source"]),
           "claim": claim_of(record), "budget": str(record["budget"])}
    if (precision := cfg.get("precision") or "fp32") != "fp32":  # bf16 runs never pool with fp32 ones
        out["precision"] = precision
    return out


def common_settings(record: dict[str, Any]) -> dict[str, Any]:
    """Settings that every arm of a comparison shares (flattened; see :class:`GroupSummary`)."""
    cfg = record.get("config") or {}
    scale = scale_settings(record)
    out: dict[str, Any] = {k: scale[k] for k in ("task", "task_version", "dataset", "data_source")}
    out.update(protocol=protocol_of(record), claim=scale["claim"], budget=scale["budget"])
    if "precision" in scale:
        out["precision"] = scale["precision"]
    if out["protocol"] == "published":
        # a claim's published protocol gives its arms unequal budgets, and may give them different
        # models (credit: MLP 128-wide baseline, 64-wide dendritic), on purpose: the claim file and
        # the scale it ran at (smoke | quick | its own) decide them, so those are the row
        return out
    if out["protocol"] == "tuned":  # each arm has its own tuned lr and weight decay (dendrobench/running/tuning.py)
        from dendrobench.running.tuning import row_budget_spec

        out.update(_flat("budget", row_budget_spec(record)))
    else:
        out.update(_flat("budget", cfg.get("budget_spec") or {}))
    # the task's protocol options as the user gave them (the record hash holds the non-default ones)
    out.update(_flat("task_options", cfg.get("task_options") or {}))
    return out


def engine_settings(record: dict[str, Any]) -> dict[str, Any]:
    """The engine and its parameters (what the dendritic arms, and the wide arm through its target
    parameter count, depend on)."""
    dend = (record.get("config") or {}).get("dendrites")
    params = {k: v for k, v in dend.items() if k != "engine"} if isinstance(dend, dict) else {}
    return {"engine": str(record["engine"]), **_flat("dendrites", params)}


def arm_settings(record: dict[str, Any]) -> dict[str, Any]:
    """Settings only one arm depends on."""
    cfg = record.get("config") or {}
    if record.get("arm") == "compressed":
        return {"compressed_width": cfg.get("compressed_width")}
    if record.get("arm") == "wide":
        return {"wide_tolerance": cfg.get("wide_tolerance")}
    return {}


@dataclass
class _Row:
    common: dict[str, Any]
    engine: dict[str, Any]
    arm_specific: dict[str, dict[str, Any]]  # arm -> its own settings (compressed width, wide tolerance)
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def settings(self) -> dict[str, Any]:
        out = {**self.common, **self.engine}
        for extra in self.arm_specific.values():
            out.update(extra)
        return out


def _budget_names(records: Sequence[dict[str, Any]]) -> str:
    names = sorted({str(r["budget"]) for r in records})
    return "/".join(names) if names else ""


def group_rows(records: Iterable[dict[str, Any]]) -> list[_Row]:
    """Records into rows (see the module docstring). A baseline record joins every row of its
    common settings; a dendrites record every row of its engine setting; a wide or compressed
    record the rows of its own tolerance or width. A record whose ``dataset`` is null (the run failed
    before its data loaded) joins the rows of the same settings when exactly one dataset has rows."""
    from dendrobench.running.tuning import is_trial

    # tuning trials are evidence for a choice, not rows; base_more_training (a claim's baseline with the
    # dendritic arm's extra steps) is summarised by the claim (published_claims.claim_summary), not here
    recs = [r for r in dedupe(records) if not is_trial(r) and r.get("arm") != "base_more_training"]
    by_common: dict[str, list[dict[str, Any]]] = defaultdict(list)
    commons: dict[str, dict[str, Any]] = {}
    for rec in recs:
        c = common_settings(rec)
        k = _canon(c)
        commons[k] = c
        by_common[k].append(rec)
    for k in [k for k, c in commons.items() if c["dataset"] is None]:
        siblings = [k2 for k2, c2 in commons.items() if c2["dataset"] is not None and {**c2, "dataset": None} == commons[k]]
        if len(siblings) == 1:
            by_common[siblings[0]].extend(by_common.pop(k))
            commons.pop(k)
    rows: list[_Row] = []
    for k, members in by_common.items():
        common = commons[k]
        engines: dict[str, dict[str, Any]] = {}
        engine_key: dict[int, str] = {}  # id(record) -> its engine setting, computed once
        for rec in members:
            if rec.get("arm") != "baseline":
                e = engine_settings(rec)
                engine_key[id(rec)] = _canon(e)
                engines[engine_key[id(rec)]] = e
        if not engines:  # baseline-only: one row, whatever engine each run was started with
            names = sorted({str(r["engine"]) for r in members})
            rows.append(_Row(common, {"engine": ",".join(names)}, {}, list(members)))
            continue
        for ek, eng in engines.items():
            mine = [r for r in members if r.get("arm") == "baseline" or engine_key[id(r)] == ek]
            variants: dict[str, list[dict[str, Any]]] = {}  # arm -> distinct own settings
            for arm in ("compressed", "wide"):
                seen = {_canon(arm_settings(r)): arm_settings(r) for r in mine if r.get("arm") == arm}
                variants[arm] = list(seen.values()) or [{}]
            for cw in variants["compressed"]:
                for wt in variants["wide"]:
                    own = {"compressed": cw, "wide": wt}
                    chosen = [r for r in mine if r.get("arm") not in own or not own[r["arm"]]
                              or arm_settings(r) == own[r["arm"]]]
                    rows.append(_Row(common, eng, {a: s for a, s in own.items() if s}, chosen))
    return rows


def _row_key(row: _Row) -> GroupKey:
    c = row.common
    digest = hashlib.sha256(_canon(row.settings).encode()).hexdigest()[:10]
    budget = c.get("budget") or _budget_names(row.records)
    return GroupKey(c["task"], c["dataset"], c["data_source"], str(row.engine["engine"]), budget,
                    c["protocol"], c["claim"], digest)


def _fmt_setting(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, tuple):
        return "[" + ",".join(_fmt_setting(v) for v in value) + "]"
    return str(value)


def labels(keys: Sequence[GroupKey], settings: Sequence[dict[str, Any]]) -> list[str]:
    """For each row, ``name=value`` of the settings in which it differs from rows with the same
    task, dataset, data source, engine and budget (what the index shows as columns)."""
    out = [""] * len(keys)
    peers: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        peers[tuple(k[:5])].append(i)
    for idx in peers.values():
        if len(idx) < 2:
            continue
        names = sorted({n for i in idx for n in settings[i]})
        # a setting only some rows have (compressed_width without a compressed arm) is not a difference
        differ = [n for n in names if len({_canon(settings[i][n]) for i in idx if n in settings[i]}) > 1]
        for i in idx:
            out[i] = ", ".join(f"{n}={_fmt_setting(settings[i].get(n))}" for n in differ if n in settings[i])
    return out


def _pick(candidates: list[dict[str, Any]], row_engine: dict[str, Any]) -> dict[str, Any]:
    """One record of several for one (row, arm, seed): the row's own engine setting first, then latest."""
    def rank(rec: dict[str, Any]) -> tuple[bool, tuple[str, str, str]]:
        return (engine_settings(rec) == row_engine, _recency(rec))

    return max(candidates, key=rank)


def _by_seed(records: list[dict[str, Any]], row_engine: dict[str, Any]
             ) -> tuple[dict[tuple[str, int], dict[str, Any]], dict[str, int]]:
    """One record per (arm, seed) (see :func:`_pick`), and how many were superseded per arm."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for rec in records:
        groups[(rec["arm"], int(rec["seed"]))].append(rec)
    superseded: dict[str, int] = defaultdict(int)
    chosen = {}
    for k, recs in groups.items():
        chosen[k] = recs[0] if len(recs) == 1 else _pick(recs, row_engine)
        superseded[k[0]] += len(recs) - 1
    return chosen, superseded
