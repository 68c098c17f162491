"""The table printed at the end of a run: one row per arm, aggregated over seeds.

RER is computed per seed pair (same seed, same split, same data order) and then averaged, as the
leaderboard does; the leaderboard adds confidence intervals and significance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from dendrobench.stats import rer


def _mean_std(values: Sequence[float]) -> str:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return "-"
    if len(vals) == 1:
        return f"{vals[0]:.4f}"
    return f"{np.mean(vals):.4f}±{np.std(vals, ddof=1):.4f}"


def _human(n: float | None) -> str:
    if n is None or not math.isfinite(n):
        return "-"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:.0f}"


def paired_rer(records: Sequence[dict[str, Any]], arm: str, reference: str) -> list[float]:
    """Per-seed RER of ``arm`` against ``reference`` over seeds where both finished."""
    by = {(r["arm"], r["seed"]): r for r in records if r["status"] == "ok" and r.get("error") is not None}
    out = []
    for (a, seed), rec in by.items():
        ref = by.get((reference, seed))
        value = rer(ref["error"], rec["error"]) if a == arm and ref is not None else None
        if value is not None:
            out.append(value)
    return out


def summary_rows(records: Sequence[dict[str, Any]]) -> list[list[str]]:
    if not records:
        return []
    metric = records[0]["metric"]["name"]
    rows = []
    arms = [a for a in ("baseline", "dendrites", "wide", "compressed") if any(r["arm"] == a for r in records)]
    for arm in arms:
        recs = [r for r in records if r["arm"] == arm]
        ok = [r for r in recs if r["status"] == "ok"]
        bad = len(recs) - len(ok)

        def col(get, recs=ok):
            return [get(r) for r in recs]

        rer_b = paired_rer(records, arm, "baseline") if arm != "baseline" else []
        rer_w = paired_rer(records, arm, "wide") if arm in ("dendrites", "compressed") else []
        rows.append([
            arm,
            f"{len(ok)}" + (f" (+{bad} failed)" if bad else ""),
            _mean_std(col(lambda r: r["val"].get(metric))),
            _mean_std(col(lambda r: r["test"].get(metric))),
            _mean_std(col(lambda r: r["error"])),
            f"{np.mean(rer_b):+.1%}" if rer_b else "-",
            f"{np.mean(rer_w):+.1%}" if rer_w else "-",
            _human(np.mean(col(lambda r: r["params"]["inference"]))) if ok else "-",
            _human(np.mean([v for v in col(lambda r: r["cost"]["flops_per_sample"]) if v is not None] or [float("nan")])),
            f"{np.mean(col(lambda r: r['cost']['wall_s'])):.1f}s" if ok else "-",
        ])
    return rows


def format_table(records: Sequence[dict[str, Any]]) -> str:
    if not records:
        return "(no runs)"
    metric = records[0]["metric"]["name"]
    head = ["arm", "seeds", f"val {metric}", f"test {metric}", "error", "RER vs base", "RER vs wide",
            "params", "FLOPs/sample", "wall"]
    rows = [head, *summary_rows(records)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
