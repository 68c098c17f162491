"""What a run record says, read defensively: the accessors the statistics, the leaderboard and the
claims share (an ok run's error, its modality, protocol and claim, whether a dendritic run is a null
arm, its metric on a split), and the exact-duplicate filter. Records come from many versions of the
runner, so every accessor tolerates a missing or older field instead of trusting the newest schema.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np

DENDRITIC_ARMS = ("dendrites", "compressed")


def _canon(value: Any) -> str:
    """Canonical JSON of a value: equal settings give equal strings (row keys, digests)."""
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _mean(values: Iterable[Any]) -> float | None:
    vals = [v for v in (_num(x) for x in values) if v is not None]
    return float(np.mean(vals)) if vals else None


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den == 0:
        return None
    return num / den


def usable(record: dict[str, Any]) -> bool:
    """An ok run with a finite error: the only kind that enters a pair."""
    return record.get("status") == "ok" and _num(record.get("error")) is not None


def paired_errors(records: Iterable[dict[str, Any]], arm: str, reference: str) -> tuple[list[float], list[float]]:
    """The usable errors of ``arm`` and ``reference``, paired by seed (seeds where both finished),
    in seed order: what the run table's RER and the cross-task aggregate are computed from."""
    by = {(r["arm"], int(r["seed"])): float(r["error"]) for r in records if usable(r)}
    seeds = sorted(s for (a, s) in by if a == arm and (reference, s) in by)
    return [by[(arm, s)] for s in seeds], [by[(reference, s)] for s in seeds]


def modality_of(record: dict[str, Any]) -> str:
    """The task's modality as the runner put it into ``config.task_info``; "unknown" otherwise."""
    info = (record.get("config") or {}).get("task_info") or {}
    value = info.get("modality") if isinstance(info, dict) else None
    return str(value) if value else "unknown"


def description_of(record: dict[str, Any]) -> str:
    info = (record.get("config") or {}).get("task_info") or {}
    value = info.get("description") if isinstance(info, dict) else None
    return str(value) if value else ""


def protocol_of(record: dict[str, Any]) -> str:
    """``record["protocol"]``; version-1 records without it were all run under matched budgets."""
    return str(record.get("protocol") or "matched")


def claim_of(record: dict[str, Any]) -> str | None:
    value = record.get("claim")
    return None if value is None else str(value)


def null_reason(record: dict[str, Any]) -> str | None:
    """Why an ok dendritic run is a null arm (no dendrites where it matters), or None.

    Judged by what was *selected*, whatever the stored flag says (issue 24): a record whose
    ``dendrites.at_selected`` is 0 is null, including the "added, then all dropped" runs that older
    runners stored as ``null_arm: false`` (the validation-selected model is then the base model and
    its test metric the base model's). The runner's ``dendrites.null_arm`` / ``null_reason`` are
    used for the wording and for runs without a count; without either, ``added == 0`` means null.
    ``at_selected`` of None is an engine that cannot count its dendrites: unknown, not 0.
    """
    if record.get("arm") not in DENDRITIC_ARMS or not usable(record):
        return None
    d = record.get("dendrites") or {}
    flag, stored = d.get("null_arm"), d.get("null_reason")
    selected, added, final = _num(d.get("at_selected")), _num(d.get("added")), _num(d.get("final"))
    if selected == 0:
        if flag and stored:
            return str(stored)
        if added == 0:
            return "added no dendrites"
        if added is not None and final == 0:
            return f"added {added:.0f} dendrites, then dropped all of them: the selected model is the base model"
        return "the selected model has 0 dendrites"
    if selected is not None:
        return None
    if flag is not None:
        return str(stored or "no dendrites") if flag else None
    if added == 0:
        return "added no dendrites"
    return None


def metric_value(record: dict[str, Any], metric: str, split: str = "test") -> float | None:
    return _num((record.get(split) or {}).get(metric))


def report_split(record: dict[str, Any]) -> str:
    """The split a record's ``error`` was scored on: ``test``, or ``val`` where a claim's published
    protocol reported validation scores (as the hackathon entries did)."""
    return "val" if (record.get("config") or {}).get("report_split") == "val" else "test"


def _recency(record: dict[str, Any]) -> tuple[str, str, str]:
    return (str(record.get("finished") or ""), str(record.get("started") or ""), str(record.get("config_hash")))


def record_digest(record: dict[str, Any]) -> str:
    """Hash of the whole record: equal for byte-identical copies (the same folder given twice)."""
    return hashlib.sha256(_canon(record).encode()).hexdigest()


def dedupe(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records with exact duplicates dropped (they are one run read twice, not two runs).

    Only records that agree on hash, arm, seed and timestamps are compared in full (serialising
    every record of a 10,000-record site to hash it took seconds)."""
    seen: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    out = []
    for rec in records:
        key = (rec.get("config_hash"), rec.get("arm"), rec.get("seed"), rec.get("started"), rec.get("finished"))
        same = seen[key]
        if any(other == rec for other in same):
            continue
        same.append(rec)
        out.append(rec)
    return out


def versions_of(records: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
    """package -> distinct versions (dendrobench, python, torch and the packages the runner lists)."""
    found: dict[str, set[str]] = defaultdict(set)
    for rec in records:
        env = rec.get("env") or {}
        for name in ("dendrobench", "python", "torch"):
            if env.get(name):
                found[name].add(str(env[name]))
        for name, v in (env.get("packages") or {}).items():
            if str(name) not in ("dendrobench", "python", "torch"):  # env["torch"] has the build tag too
                found[str(name)].add(str(v))
    return {k: sorted(v) for k, v in sorted(found.items())}


