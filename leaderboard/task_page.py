"""A task's page: its rows' learning curves, cost scatter plots, per-seed records, arm and
comparison tables and provenance, as the context ``templates/task.html.j2`` renders. A view: it
formats the model's rows (:mod:`leaderboard.model`) and computes nothing the index does not share.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from dendrobench.evidence import stats

from . import svg
from .forest import forest_rows
from .formatting import (
    fmt_count,
    fmt_interval,
    fmt_p,
    fmt_pct,
    fmt_ratio,
    fmt_rer,
    fmt_value,
    null_warning,
    verdict_class,
    verdict_text,
)
from .model import (
    IndexRow,
    _diff_cell,
)

MAX_CURVE_SEEDS = 20  # thin per-seed lines per arm; the mean line always uses every seed


def _curves(g: stats.GroupSummary) -> svg.Markup | None:
    """Validation metric per step: each arm's mean over seeds with a band of ± one SD over seeds;
    single seeds are drawn thin only when an arm has one seed (there is no band to draw then)."""
    metric = g.metric
    series: list[svg.Series] = []
    for arm in stats.ARMS:
        recs = [r for r in g.records if r["arm"] == arm and r.get("history")]
        if not recs:
            continue
        by_step: dict[float, list[float]] = {}
        cycle_steps: set[float] = set()
        for r in recs:
            for h in r["history"]:
                v = stats._num((h.get("val") or {}).get(metric))
                s = stats._num(h.get("step"))
                if v is None or s is None:
                    continue
                by_step.setdefault(s, []).append(v)
                if h.get("event") == "dendrites_added":
                    cycle_steps.add(s)
        steps = sorted(by_step)
        mean = [(s, float(np.mean(by_step[s]))) for s in steps]
        band = [(s, m - sd, m + sd) for (s, m) in mean
                if len(by_step[s]) >= 2 and (sd := float(np.std(by_step[s], ddof=1))) >= 0]
        cycles = [(s, m) for s, m in mean if s in cycle_steps]  # once per step, on the mean line
        n = len(recs)
        series.append(svg.Series(arm, f"{arm}, mean of {n} seed{'s' if n != 1 else ''}", mean, cycles,
                                 mean=True, band=band))
    return svg.line_chart(f"validation {metric} during training", "optimizer step", f"validation {metric}", series)


def _scatter(g: stats.GroupSummary, what: str) -> svg.Markup | None:
    pts = []
    by_arm: dict[str, list[float]] = {}
    for r in g.records:
        if not stats.usable(r):
            continue
        x = stats._num((r.get("params") or {}).get("inference")) if what == "params" else stats._num(
            (r.get("cost") or {}).get("flops_per_sample"))
        if x is None:
            continue
        err = float(r["error"])
        by_arm.setdefault(r["arm"], []).append(x)
        pts.append((r["arm"], x, err, f"{r['arm']}, seed {r['seed']}: error {err:.4g}, {fmt_count(x)} {what}"))
    means = []
    for arm, xs in by_arm.items():
        e = g.arms[arm].error
        if e.mean is None:
            continue
        ci = (f" [{fmt_value(e.low)}, {fmt_value(e.high)}]" if e.low is not None and e.high is not None else "")
        means.append(svg.ArmMean(arm, float(np.mean(xs)), e.mean, e.low, e.high, min(xs), max(xs),
                                 f"{arm}: mean test error {fmt_value(e.mean)}{ci} over {e.n} seeds "
                                 f"(bars: 95 % interval of the mean), {fmt_count(float(np.mean(xs)))} {what}"))
    label = "inference parameters" if what == "params" else "forward FLOPs per sample"
    return svg.scatter(f"test error vs {label}", label, "test error", pts, means)


def _seed_rows(g: stats.GroupSummary) -> list[dict[str, Any]]:
    by = {(r["arm"], int(r["seed"])): r for r in g.records}
    arms = [a for a in stats.ARMS if a in g.arms]
    rows = []
    for seed in g.seeds:
        cells = {}
        for arm in arms:
            r = by.get((arm, seed))
            if r is None:
                cells[arm] = {"text": "–", "cls": "", "title": "no run"}
            elif not stats.usable(r):
                cells[arm] = {"text": str(r.get("status")), "cls": "warn", "title": str(r.get("message") or "")}
            else:
                cyc = (r.get("dendrites") or {}).get("cycles")
                title = f"{g.metric} {fmt_value(stats._num((r.get('test') or {}).get(g.metric)))}"
                if cyc:
                    title += f"; {cyc} dendrite cycle(s)"
                cells[arm] = {"text": f"{float(r['error']):.4f}", "cls": "", "title": title}
        rers = {}
        for arm, ref in stats.COMPARISONS:
            a, b = by.get((arm, seed)), by.get((ref, seed))
            value = None
            if a and b and stats.usable(a) and stats.usable(b):
                value = stats.rer(float(b["error"]), float(a["error"]))
            rers[f"{arm}/{ref}"] = fmt_pct(value)
        rows.append({"seed": seed, "cells": cells, "rers": rers})
    return rows


def _provenance(g: stats.GroupSummary) -> dict[str, Any]:
    env_keys: dict[str, Counter[str]] = {}
    for r in g.records:
        for k, v in (r.get("env") or {}).items():
            if isinstance(v, (dict, list)):
                v = json.dumps(v, sort_keys=True)
            env_keys.setdefault(str(k), Counter())[str(v)] += 1
    started = sorted(str(r.get("started")) for r in g.records if r.get("started"))
    finished = sorted(str(r.get("finished")) for r in g.records if r.get("finished"))
    first = g.records[0]
    return {
        "env": [(k, sorted(c.items())) for k, c in sorted(env_keys.items())],
        "runs": [{"arm": r["arm"], "seed": r["seed"], "status": r.get("status"), "hash": r.get("config_hash"),
                  "started": r.get("started"), "finished": r.get("finished")} for r in g.records],
        "first": started[0] if started else "–", "last": finished[-1] if finished else "–",
        "config": json.dumps(first.get("config"), indent=1, sort_keys=True, default=str),
    }


def _arm_rows(g: stats.GroupSummary) -> list[dict[str, str]]:
    out = []
    for arm, a in g.arms.items():
        out.append({"arm": arm, "runs": str(a.runs), "ok": str(a.ok), "failed": str(a.failed),
                    "diverged": str(a.diverged), "superseded": str(a.superseded),
                    "test": fmt_interval(a.test_metric), "val": fmt_interval(a.val_metric),
                    "error": fmt_interval(a.error), "params": fmt_count(a.params),
                    "flops": fmt_count(a.flops_per_sample),
                    "wall": "–" if a.wall_s is None else f"{a.wall_s:.1f} s", "steps": fmt_count(a.steps),
                    "messages": a.messages})
    return out


def _comparison_rows(g: stats.GroupSummary) -> list[dict[str, Any]]:
    out = []
    for (arm, ref), c in g.comparisons.items():
        out.append({"name": f"{arm} vs {ref}", "rer": fmt_rer(c.rer), "p_value": fmt_p(c.p_value),
                    "diff": _diff_cell(c).text, "p": fmt_pct(c.p_improvement, signed=False),
                    "pairs": c.pairs, "unpaired": c.unpaired, "undefined": c.undefined,
                    "verdict": verdict_text(c), "cls": verdict_class(c), "warning": null_warning(c),
                    "params": fmt_ratio(c.cost_ratios.get("params")),
                    "flops": fmt_ratio(c.cost_ratios.get("flops_per_sample")),
                    "time": fmt_ratio(c.cost_ratios.get("wall_s")), "steps": fmt_ratio(c.cost_ratios.get("steps"))})
    return out


def task_context(task: str, rows: Sequence[IndexRow]) -> dict[str, Any]:
    from dendrobench.running.tuning import describe_row

    groups = []
    for row in rows:
        g = row.group
        cb = g.comparison("dendrites", "baseline")
        groups.append({
            "key": g.key, "row": row, "arms": _arm_rows(g), "comparisons": _comparison_rows(g),
            "verdict": row.cells["verdict"], "headline": {c: row.cells[c] for c in ("rer", "p", "rer_wide", "seeds")},
            "diff": _diff_cell(cb).text, "metric": g.metric,
            "seed_rows": _seed_rows(g), "seed_arms": [a for a in stats.ARMS if a in g.arms],
            "comparison_names": [f"{a}/{r}" for a, r in stats.COMPARISONS],
            "curves": _curves(g), "scatter_params": _scatter(g, "params"), "scatter_flops": _scatter(g, "flops"),
            "provenance": _provenance(g), "anchor": row.anchor,
            "versions": sorted(g.mixed_versions.items()),
            "tuning": describe_row(g.records) if g.protocol == "tuned" else None,
        })
    first = rows[0].group
    forest = svg.forest(f"{task}: dendrites, RER per row", forest_rows(rows, lambda r: f"#{r.anchor}"))
    return {"task": task, "description": first.description, "modality": first.modality, "metric": first.metric,
            "higher_is_better": first.higher_is_better, "groups": groups, "claims": rows[0].claims,
            "forest": forest}
