"""The table printed at the end of a run: one row per arm, aggregated over seeds.

"±" is the standard deviation over seeds (ddof=1), everywhere dendrobench prints it; a 95 % interval
is always written ``[low, high]``. RER is computed per seed pair (same seed, same split, same data
order) and then averaged, as the leaderboard does; the leaderboard adds the paired test, intervals
and the verdict (docs/statistics.md). Params and FLOPs are the validation-selected model's (the one
whose test metric is shown), with the final model's in parentheses when they differ. A dendritic arm
without dendrites is named under the table, never left to look like a result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from dendrobench.evidence import stats
from dendrobench.evidence.estimands import rer_of_means
from dendrobench.evidence.fields import paired_errors
from dendrobench.evidence.stats import null_reason


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


def paired_rer(records: Sequence[dict[str, Any]], arm: str, reference: str) -> float | None:
    """The RER of the mean errors of ``arm`` against ``reference`` over the seeds where both
    finished: the leaderboard's estimand (issue 24), so the run table and the site agree in sign."""
    errors_arm, errors_ref = paired_errors(records, arm, reference)
    if not errors_arm:
        return None
    return rer_of_means(errors_ref, [e - a for e, a in zip(errors_ref, errors_arm)])


def _steps_per_s(recs: Sequence[dict[str, Any]]) -> str:
    """Optimizer steps per second of step time (validation excluded; issue 20), mean over runs."""
    v = _avg([(r.get("cost") or {}).get("steps_per_s") for r in recs])
    return "-" if v is None else (f"{v:.0f}" if v >= 100 else f"{v:.1f}")


def summary_rows(records: Sequence[dict[str, Any]]) -> list[list[str]]:
    if not records:
        return []
    metric = records[0]["metric"]["name"]
    rows = []
    arms = [a for a in ("baseline", "dendrites", "wide", "compressed", "base_more_training") if any(r["arm"] == a for r in records)]
    for arm in arms:
        recs = [r for r in records if r["arm"] == arm]
        ok = [r for r in recs if r["status"] == "ok"]
        bad = len(recs) - len(ok)

        def col(get, recs=ok):
            return [get(r) for r in recs]

        rer_b = paired_rer(records, arm, "baseline") if arm != "baseline" else None
        rer_w = paired_rer(records, arm, "wide") if arm in ("dendrites", "compressed") else None
        rows.append([
            arm,
            f"{len(ok)}" + (f" (+{bad} failed)" if bad else ""),
            _mean_std(col(lambda r: r["val"].get(metric))),
            _mean_std(col(lambda r: r["test"].get(metric))),
            _mean_std(col(lambda r: r["error"])),
            f"{rer_b:+.1%}" if rer_b is not None else "-",
            f"{rer_w:+.1%}" if rer_w is not None else "-",
            _selected_final(col(lambda r: r["params"].get("inference")), col(lambda r: r["params"].get("final_inference"))),
            _selected_final(col(lambda r: r["cost"].get("flops_per_sample")),
                            col(lambda r: r["cost"].get("flops_per_sample_final"))),
            f"{np.mean(col(lambda r: r['cost']['wall_s'])):.1f}s" if ok else "-",
            _steps_per_s(ok),
        ])
    return rows


def _avg(values: Sequence[Any]) -> float | None:
    vals = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def _selected_final(selected: Sequence[Any], final: Sequence[Any]) -> str:
    """The selected model's mean, and the final model's beside it when it differs."""
    sel, fin = _avg(selected), _avg(final)
    text = _human(sel)
    if fin is not None and sel is not None and _human(fin) != text:
        text += f" (final {_human(fin)})"
    return text


def null_arm_notes(records: Sequence[dict[str, Any]]) -> list[str]:
    """One line per dendritic arm whose runs have no dendrites where it matters (issue 9 item 5)."""
    notes = []
    for arm in ("dendrites", "compressed"):
        ok = [r for r in records if r["arm"] == arm and r["status"] == "ok"]
        null = [r for r in ok if null_reason(r)]
        if not null:
            continue
        if len(null) == len(ok) and arm == "dendrites":
            head = "selected model has 0 dendrites: this row compares the baseline with itself"
        else:
            head = f"{len(null)} of {len(ok)} runs have no dendrites in the selected model"
        reasons = sorted({str(null_reason(r)) for r in null})
        notes.append(f"warning: {arm}: {head} ({'; '.join(reasons)})")
    return notes


def energy_cells(records: Sequence[dict[str, Any]], arms: Sequence[str]) -> list[str] | None:
    """Energy per arm as a cost ratio to the baseline (mean kWh over ok runs; "est." when CodeCarbon
    estimated it from TDP x load rather than measured it); None when no record has energy."""
    def mean_kwh(arm: str) -> float | None:
        vals = [r["cost"].get("energy_kwh") for r in records if r["arm"] == arm and r["status"] == "ok"]
        vals = [v for v in vals if v is not None]
        return float(np.mean(vals)) if vals else None

    if not any(r["cost"].get("energy_kwh") is not None for r in records):
        return None
    estimated = any(str(((r.get("extra") or {}).get("energy") or {}).get("method") or "").startswith("estimated")
                    for r in records)
    base = mean_kwh("baseline")
    cells = []
    for arm in arms:
        kwh = mean_kwh(arm)
        if kwh is None:
            cells.append("-")
        elif base and arm != "baseline":
            cells.append(f"x{kwh / base:.2f}")
        else:
            cells.append(f"{kwh * 1000:.3f}Wh" + (" est." if estimated else ""))
    return cells


def format_table(records: Sequence[dict[str, Any]]) -> str:
    if not records:
        return "(no runs)"
    metric = records[0]["metric"]["name"]
    head = ["arm", "seeds", f"val {metric}", f"test {metric}", "error", "RER vs base", "RER vs wide",
            "params", "FLOPs/sample", "wall", "steps/s"]
    rows = [head, *summary_rows(records)]
    energy = energy_cells(records, [r[0] for r in rows[1:]])
    if energy is not None:  # the baseline's energy, the other arms' as a ratio to it
        head.append("energy")
        for row, cell in zip(rows[1:], energy):
            row.append(cell)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("± = standard deviation over seeds; RER = of the mean errors over seed pairs (significance: "
                 "`dendrobench leaderboard`); params, FLOPs: the selected model's; wall: training clock, warm-up "
                 "excluded; steps/s: optimizer steps per second of step time (validation excluded)")
    lines.extend(null_arm_notes(records))
    return "\n".join(lines)


def group_title(group: Any) -> str:
    """The row's task, data and budget, then what sets it apart from its neighbours (stats' label)."""
    key = group.key
    fields = key._asdict() if hasattr(key, "_asdict") else {"group": key}
    shown = {k: v for k, v in fields.items() if v is not None and k != "row_id"
             and not (k == "protocol" and v == "matched")}
    title = "  ".join(f"{k}={v}" for k, v in shown.items())
    label = getattr(group, "label", None)
    return f"{title}  ({label})" if label else title


def format_pooled(records: Sequence[dict[str, Any]]) -> str:
    """One table per comparison (the leaderboard's rows), over every job of the sweep."""
    if not records:
        return "(no runs)"
    parts = []
    for group in stats.summarize(records):
        parts.append(f"== {group_title(group)}\n{format_table(group.records)}")
    return "\n\n".join(parts)


def fork_summary(records: list[dict[str, Any]]) -> list[str]:
    """(a) dendrites and (c) plain units, each against (b) the base network trained on."""
    lines = []
    for g in stats.summarize(records):
        if g.protocol != "fork":
            continue
        by_seed, _ = stats._by_seed(list(g.records), {})
        for arm, name in (("dendrites", "(a) dendrites"), ("wide", "(c) plain units")):
            c = stats.compare(arm, "baseline", by_seed, g.arms, g.metric, g.higher_is_better, g.key.budget)
            if c.pairs:
                p = "n/a" if c.p_value is None else f"{c.p_value:.3f}"
                mean = "n/a" if c.rer.mean is None else f"{100 * c.rer.mean:+.1f} %"
                lines.append(f"  {name} vs (b) more base training: RER {mean} over {c.pairs} seed pair(s), "
                             f"error lower in {c.improved} of {c.pairs}, sign-flip p = {p}")
    return lines


# -- running ----------------------------------------------------------------------------------
