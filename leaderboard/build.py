"""``dendrobench leaderboard RESULTS_DIR... --out SITE_DIR``: records in, a static site out.

Writes ``index.html`` (a row per task / dataset / data source / engine / budget), ``tasks/*.html``
(a page per task), ``leaderboard.md`` and ``leaderboard.csv``. Every number on every output comes
from one :class:`IndexRow` so the four outputs cannot disagree. The site is self-contained (inline
CSS, JS and SVG; no fonts, scripts or images fetched) so it opens from ``file://`` and can be
published as it is. Templates are Jinja2 with autoescaping on for every template: strings from
records and plugins are text, never markup, including inside the page's JSON data block.

Public entry points for the CLI: :func:`main`, :func:`format_task_row`, :func:`site_command`;
:func:`build_site` for programs and tests.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import shlex
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import yaml

from dendrobench.errors import UserError
from dendrobench.evidence import stats
from dendrobench.evidence.not_run import NOT_RUN_FILE, load_not_run  # noqa: F401 - part of this module's API
from dendrobench.running import results

from . import claims_page, svg
from .formatting import (  # noqa: F401 - part of this module's API
    NULL_ARM_WARNING,
    fmt_count,
    fmt_effect,
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

PROG = "dendrobench leaderboard"
DEFAULT_OUT = "dendrobench-site"
HERE = Path(__file__).parent
MAX_CURVE_SEEDS = 20  # thin per-seed lines per arm; the mean line always uses every seed


# -- input ------------------------------------------------------------------------------------
def load_records(results_dirs: Sequence[Path | str],
                 warn: Callable[[str], None] | None = None) -> tuple[list[dict[str, Any]], list[tuple[Path, str]]]:
    """Every valid record under the given folders, and (file, reason) for every file skipped.

    A missing folder, or folders with no usable record at all, is a :class:`UserError` (the CLI
    prints it in one line, exit code 2); bad files among good ones are only warned about.
    """
    if not results_dirs:
        raise UserError("no results directory given")
    missing = [str(d) for d in results_dirs if not Path(d).is_dir()]
    if missing:
        raise UserError(f"results directory not found: {', '.join(missing)}")
    records: list[dict[str, Any]] = []
    problems: list[tuple[Path, str]] = []
    for d in results_dirs:
        records.extend(results.iter_records(Path(d), problems))
    for path, why in problems:
        (warn or _stderr)(f"warning: skipping {path}: {why}")
    if not records:
        where = ", ".join(str(d) for d in results_dirs)
        detail = f" ({len(problems)} file(s) skipped as unusable, see the warnings above)" if problems else ""
        raise UserError(f"no usable run records in {where}{detail}; run `dendrobench task=NAME` first")
    return records, problems


def newest_finish(records: Sequence[dict[str, Any]]) -> str:
    """When the newest run finished, from the records themselves: the date a site shows, so that
    the same records always build the same site (the published one is checked byte for byte)."""
    stamps = sorted(str(r.get("finished") or r.get("started") or "") for r in records)
    stamp = stamps[-1] if stamps and stamps[-1] else ""
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return "at an unrecorded time"
    return when.strftime("%Y-%m-%d %H:%M UTC")


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


def load_claims(path: Path | None = None) -> list[dict[str, Any]]:
    """Published claims and reference numbers (``baselines/reference.yaml``, package data)."""
    if path is None:
        text = resources.files("dendrobench.baselines").joinpath("reference.yaml").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    return [c for c in data.get("claims", []) if isinstance(c, dict)]


def claims_for(task: str, claims: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in claims if c.get("task") == task]


def different_dataset(claim: dict[str, Any], dataset: str | None = None) -> bool:
    """Whether a claim was made on other data than the row it is shown beside. ``datasets`` lists
    the dendrobench dataset names (a record's ``dataset``) that are the claim's own data; ``[]``
    means none of them is. A row on any other dataset -- an offline stand-in, another copy -- is
    flagged, so a claim made on BraTS never reads as if it were tested on the MNI152 stand-in. An
    entry without ``datasets`` falls back to the older ``same_dataset`` flag."""
    names = claim.get("datasets")
    if names is None:
        return claim.get("same_dataset", True) is False
    return not names or (dataset is not None and dataset not in names)


def claim_text(claim: dict[str, Any], dataset: str | None = None) -> str:
    """The short form shown in a table cell beside a row on ``dataset``; conditions go in the
    tooltip and on the task page."""
    who = str(claim.get("who") or "").split("(")[0].strip()
    flag = " [different dataset]" if different_dataset(claim, dataset) else ""
    return f"{claim.get('claim', '')}{flag} ({who})" if who else f"{claim.get('claim', '')}{flag}"


# -- formatting -------------------------------------------------------------------------------
def slug(task: str) -> str:
    """A file name for a task page: readable, safe on every filesystem, unique per task name."""
    safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "_" for ch in task)[:40].strip("_")
    return f"{safe or 'task'}-{hashlib.sha1(task.encode()).hexdigest()[:8]}"


MAX_TEXT = 10_000  # characters of one piece of free text shown on a page; the record keeps it whole


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """Long free text (a 50 MB failure message) shortened for pages, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters in the record]"


def _finalize(value: Any) -> Any:
    """Every ``{{ value }}`` a template prints: plain strings are clipped; our own Markup is not."""
    if isinstance(value, str) and not isinstance(value, jinja2.utils.markupsafe.Markup):
        return clip(value)
    return value


# What "±" and "[low, high]" mean, said once and shown wherever they appear (HTML and Markdown).
# (the run table's convention too: "±" is always a standard deviation, an interval is always brackets)
PM_MEANING = "the standard deviation over seeds (not an interval)"
CI_MEANING = "the 95 % Student-t confidence interval of the mean over seed pairs"
PLUS_MINUS = f"± is {PM_MEANING}"
BRACKETS = f"[low, high] is {CI_MEANING}"


# -- one row, four outputs --------------------------------------------------------------------
@dataclass
class Cell:
    """What a table cell shows (``text``), what it sorts by (``sort``) and a tooltip."""

    text: str
    sort: float | str | None = None
    title: str = ""
    cls: str = ""


# (id, header, tooltip): the index table's columns; they fit 1280 px. Everything else about a row
# is in DETAILS (a fold-out row on the index; full columns in Markdown and CSV).
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("task", "task", "one row per comparison: task, dataset, data source, engine, budget and every setting "
                     "that changes a result; what differs between rows of one task is shown under the name"),
    ("baseline", "baseline", f"test metric of the base model (validation, marked (val), where a claim "
                             f"reported validation scores); {PLUS_MINUS}"),
    ("dendrites", "dendrites", f"test metric with dendrites (validation where marked (val)); {PLUS_MINUS}"),
    ("rer", "RER vs baseline", f"relative error reduction, mean over seed pairs; {BRACKETS}"),
    ("p", "p", "two-sided p-value of the paired test on the seed pairs (dendrites vs baseline)"),
    ("verdict", "verdict", "better / worse only at p < 0.05; smoke runs are pipeline checks, never verdicts"),
    ("rer_wide", "RER vs wide", f"dendrites against the base model widened to the same parameters; {BRACKETS}"),
    ("seeds", "pairs", "complete seed pairs behind the RER vs baseline"),
)
DETAILS: tuple[tuple[str, str, str], ...] = (
    ("source", "data", "offline: the stand-in shipped with the task; online: the real full dataset"),
    ("modality", "modality", ""),
    ("engine", "engine", "dendrite engine"),
    ("budget", "budget", "training budget (identical optimizer steps for every arm under the matched protocol)"),
    ("grade", "grade", "smoke: pipeline check; quick: indicative; publishable: >= 10 seed pairs at standard/full"),
    ("protocol", "protocol", "matched: equal budgets; published: a claim's own procedure"),
    ("settings", "settings", "what differs from the other rows of this task"),
    ("metric", "metric", "test metric, or validation where marked (val); ↑ higher is better, ↓ lower is better"),
    ("wide", "wide", f"capacity control's test metric (validation where marked (val)); {PLUS_MINUS}"),
    ("diff", "effect", f"mean paired difference of the metric (test, or validation where marked (val)), "
                       f"dendrites against baseline in its units (positive = better); {BRACKETS}"),
    ("p_improve", "P(improve)", "fraction of seed pairs where dendrites had the lower error"),
    ("verdict_wide", "verdict vs wide", "the paired test against the capacity control"),
    ("rer_compressed", "compressed vs baseline", "RER of the narrower dendritic model against the full base"),
    ("failures", "failed", "failed or diverged runs, all arms (counted, never dropped)"),
    ("params", "params ×", "inference parameters of the selected model, dendrites / baseline"),
    ("flops", "FLOPs ×", "forward FLOPs per sample, dendrites / baseline"),
    ("time", "time ×", "training wall-clock, dendrites / baseline"),
    ("steps", "steps ×", "optimizer steps, dendrites / baseline (1.00 under a matched budget)"),
    ("versions", "versions", "package versions that differ between the runs of this row"),
    ("claim", "published claim", "what others published for this task; conditions on the task page"),
)
ALL_COLUMNS = COLUMNS + DETAILS


@dataclass
class IndexRow:
    """One leaderboard row, formatted once for HTML, Markdown and CSV."""

    group: stats.GroupSummary
    page: str
    claims: list[dict[str, Any]]
    cells: dict[str, Cell] = field(default_factory=dict)
    anchor: str = ""
    grade: str = ""  # "smoke" | "quick" | "standard" | "full" | another budget name
    publishable: bool = False
    label: str = ""
    warning: str = ""

    @property
    def key(self) -> stats.GroupKey:
        return self.group.key

    @property
    def smoke(self) -> bool:
        return self.grade == "smoke"

    @property
    def href(self) -> str:
        return f"{self.page}#{self.anchor}"

    @property
    def protocol_note(self) -> str:
        """A claim's published protocol runs its arms on unequal budgets: say so, with the steps ratio."""
        g = self.group
        if g.protocol in ("tuned", "fork"):
            from dendrobench.running import fork, tuning

            return (tuning if g.protocol == "tuned" else fork).row_note(list(g.records))
        if g.protocol != "published":
            return f"claim {g.claim}" if g.claim else ""
        steps = g.comparison("dendrites", "baseline").cost_ratios.get("steps")
        return f"published protocol of {g.claim or 'a claim'}, steps {fmt_ratio(steps)}"

    @property
    def title(self) -> str:
        k = self.key
        return k.task + (f" ({k.dataset})" if k.dataset and k.dataset != k.task else "")


def _arm_cell(g: stats.GroupSummary, arm: str) -> Cell:
    a = g.arms.get(arm)
    if a is None:
        return Cell("–", None, f"no {arm} runs")
    iv = a.metric
    title = f"{a.ok} ok of {a.runs} runs" + ("; validation metric: the claim reported validation scores"
                                             if a.split == "val" else "")
    if iv.low is not None and iv.high is not None and iv.n >= 2:
        title += f"; 95 % interval of the mean [{fmt_value(iv.low)}, {fmt_value(iv.high)}]"
    return Cell(fmt_interval(iv) + (" (val)" if a.split == "val" else ""), iv.mean, title)


def _rer_cell(c: stats.Comparison) -> Cell:
    title = f"{c.rer.n} pairs with a defined RER; {c.unpaired} unpaired; {c.undefined} with zero reference error"
    return Cell(fmt_rer(c.rer), c.rer.mean, title, verdict_class(c) if c.verdict in ("better", "worse") else "")


def _signed(v: float) -> str:
    return ("+" if v > 0 else "") + fmt_value(v)


def _diff_cell(c: stats.Comparison) -> Cell:
    """The effect in the metric's own units: mean paired difference [95 % interval]."""
    d = c.diff
    if d.mean is None:
        return Cell("–", None)
    text = _signed(d.mean)
    if d.low is not None and d.high is not None and d.n >= 2:
        text += f" [{_signed(d.low)}, {_signed(d.high)}]"
    return Cell(text, d.mean, f"{d.n} pairs")


def display_label(g: stats.GroupSummary) -> str:
    """What differs between this row and its neighbours, less the protocol and claim (the row says
    those in words, with the steps ratio: :attr:`IndexRow.protocol_note`)."""
    parts = [p for p in (g.label or "").split(", ") if p and not p.startswith(("protocol=", "claim="))]
    return ", ".join(parts)


def grade_of(g: stats.GroupSummary) -> str:
    return str(g.grade or g.key.budget)


def _claim_rer(claim: dict[str, Any]) -> float | None:
    """The claim's figure on the RER axis, when it is one (an RER, or an RER the registry derived)."""
    for key in ("rer", "claimed_rer"):
        v = stats._num(claim.get(key))
        if v is not None:
            return v
    if claim.get("quantity") == "rer":
        return stats._num(claim.get("value"))
    return None


def make_row(g: stats.GroupSummary, claims: list[dict[str, Any]]) -> IndexRow:
    k = g.key
    row_id = g.row_id or hashlib.sha1(repr(tuple(k)).encode()).hexdigest()[:10]
    row = IndexRow(group=g, page=f"tasks/{slug(k.task)}.html", claims=claims_for(k.task, claims),
                   anchor=f"row-{row_id}", grade=grade_of(g), publishable=g.publishable, label=display_label(g))
    cb, cw, cc = g.comparison("dendrites", "baseline"), g.comparison("dendrites", "wide"), g.comparison(
        "compressed", "baseline")
    row.warning = null_warning(cb)
    fails = Counter({a: s.failed + s.diverged for a, s in g.arms.items()})
    claim_cell = "; ".join(claim_text(c, k.dataset) for c in row.claims if c.get("kind") == "claim") or "–"
    mixed = g.mixed_versions
    grade_text = "publishable" if row.publishable else {"smoke": "pipeline check", "quick": "quick"}.get(
        row.grade, row.grade)
    protocol, claim_id = g.protocol, g.claim
    verdict = verdict_text(cb) + (" · no dendrites" if row.warning else "")
    row.cells = {
        "task": Cell(row.title, k.task.lower(), g.description),
        "baseline": _arm_cell(g, "baseline"),
        "dendrites": _arm_cell(g, "dendrites"),
        "rer": _rer_cell(cb),
        "p": Cell(fmt_p(cb.p_value), cb.p_value, f"{cb.pairs} complete pairs"),
        "verdict": Cell(verdict, cb.verdict, row.warning, verdict_class(cb) + (" warn" if row.warning else "")),
        "rer_wide": _rer_cell(cw),
        "seeds": Cell(str(cb.pairs), cb.pairs, f"{len(g.seeds)} distinct seeds in this row"),
        "source": Cell(k.data_source, k.data_source),
        "modality": Cell(g.modality, g.modality),
        "engine": Cell(k.engine, k.engine),
        "budget": Cell(k.budget, k.budget),
        "grade": Cell(grade_text, grade_text),
        "protocol": Cell(protocol + (f" ({claim_id})" if claim_id else ""), protocol),
        "settings": Cell(row.label or "–", row.label),
        "metric": Cell(f"{g.metric} {'↑' if g.higher_is_better else '↓'}" + (" (val)" if g.split == "val" else ""),
                       g.metric),
        "wide": _arm_cell(g, "wide"),
        "diff": _diff_cell(cb),
        "p_improve": Cell(fmt_pct(cb.p_improvement, signed=False), cb.p_improvement,
                          f"{cb.improved} of {cb.pairs} pairs improved"),
        "verdict_wide": Cell(verdict_text(cw), cw.verdict, "", verdict_class(cw)),
        "rer_compressed": _rer_cell(cc),
        "failures": Cell(str(sum(fails.values())), sum(fails.values()),
                         ", ".join(f"{a}: {n}" for a, n in fails.items() if n) or "none",
                         "warn" if sum(fails.values()) else ""),
        "params": Cell(fmt_ratio(cb.cost_ratios.get("params")), cb.cost_ratios.get("params")),
        "flops": Cell(fmt_ratio(cb.cost_ratios.get("flops_per_sample")), cb.cost_ratios.get("flops_per_sample")),
        "time": Cell(fmt_ratio(cb.cost_ratios.get("wall_s")), cb.cost_ratios.get("wall_s")),
        "steps": Cell(fmt_ratio(cb.cost_ratios.get("steps")), cb.cost_ratios.get("steps")),
        "versions": Cell("; ".join(f"{p} {', '.join(v)}" for p, v in sorted(mixed.items())) or "one set",
                         "", "the same comparison run with different package versions" if mixed else ""),
        "claim": Cell(claim_cell, claim_cell.lower(),
                      " | ".join(str(c.get("conditions", "")) for c in row.claims if c.get("kind") == "claim")),
    }
    return row


def _estimate(kind: str, c: stats.Comparison) -> svg.Estimate:
    r = c.rer
    tip = (f"dendrites vs {kind}: RER {fmt_rer(r)}, p {fmt_p(c.p_value)}, {c.pairs} pairs -> "
           f"{verdict_text(c)}")
    return svg.Estimate(kind, r.mean, r.low, r.high, tip, c.verdict in ("better", "worse"))


def forest_rows(rows: Sequence[IndexRow], link: Callable[[IndexRow], str | None]) -> list[svg.ForestRow]:
    out = []
    for row in rows:
        g, k = row.group, row.key
        cb, cw = g.comparison("dendrites", "baseline"), g.comparison("dendrites", "wide")
        # the claims registry's figures (converted to RER where they were not one); else reference.yaml's RERs
        marks = claims_page.forest_marks(k.task) or [
            (v, f"published: {claim_text(c, k.dataset)} (RER {v * 100:+.1f} %)") for c in row.claims
            if c.get("kind") == "claim" and (v := _claim_rer(c)) is not None]
        proto = "" if g.protocol != "published" else row.protocol_note.replace(f" of {g.claim}", "")
        sub = " · ".join(x for x in (k.engine, row.cells["grade"].text, k.data_source, f"{cb.pairs} pair" + ("" if cb.pairs == 1 else "s"),
                                     proto or ("claim" if g.claim else ""), row.label) if x)
        label = row.title + (" ⚠" if row.warning else "")
        out.append(svg.ForestRow(label, sub, link(row), [_estimate("baseline", cb), _estimate("wide", cw)],
                                 marks, muted=row.smoke))
    return out


def _n(v: float | None) -> float | str:
    return "" if v is None or not math.isfinite(v) else round(v, 6)


CSV_FIELDS = (
    "task", "dataset", "data_source", "modality", "engine", "budget", "metric", "higher_is_better", "split",
    "row_id", "label", "grade", "publishable", "protocol", "claim",
    "baseline_mean", "baseline_low", "baseline_high", "baseline_ok", "baseline_failed",
    "dendrites_mean", "dendrites_low", "dendrites_high", "dendrites_ok", "dendrites_failed",
    "wide_mean", "wide_low", "wide_high", "wide_ok", "wide_failed",
    "compressed_mean", "compressed_low", "compressed_high", "compressed_ok", "compressed_failed",
    "rer_mean", "rer_low", "rer_high", "rer_pairs", "p_value", "diff_mean", "diff_low", "diff_high",
    "p_improvement", "significant", "anecdotal", "verdict", "null_arm",
    "rer_wide_mean", "rer_wide_low", "rer_wide_high", "rer_wide_pairs", "p_value_wide", "p_improvement_wide",
    "verdict_wide",
    "rer_compressed_mean", "rer_compressed_low", "rer_compressed_high", "rer_compressed_pairs", "verdict_compressed",
    "params_ratio", "flops_ratio", "time_ratio", "steps_ratio", "failures", "mixed_versions", "published_claim",
)


def csv_record(row: IndexRow) -> dict[str, Any]:
    """The row's numbers unrounded (6 decimals) for spreadsheets and scripts."""
    g, k = row.group, row.key
    out: dict[str, Any] = {
        "task": k.task, "dataset": k.dataset or "", "data_source": k.data_source, "modality": g.modality,
        "engine": k.engine, "budget": k.budget, "metric": g.metric, "higher_is_better": g.higher_is_better,
        "split": g.split, "row_id": row.anchor.removeprefix("row-"), "label": row.label, "grade": row.grade,
        "publishable": row.publishable, "protocol": g.protocol, "claim": g.claim or "",
    }
    for arm in stats.ARMS:
        a = g.arms.get(arm)
        iv = a.metric if a else stats.Interval(None, None, None, 0)
        out.update({f"{arm}_mean": _n(iv.mean), f"{arm}_low": _n(iv.low), f"{arm}_high": _n(iv.high),
                    f"{arm}_ok": a.ok if a else 0, f"{arm}_failed": (a.failed + a.diverged) if a else 0})
    for prefix, (arm, ref) in (("rer", ("dendrites", "baseline")), ("rer_wide", ("dendrites", "wide")),
                               ("rer_compressed", ("compressed", "baseline"))):
        c = g.comparison(arm, ref)
        out.update({f"{prefix}_mean": _n(c.rer.mean), f"{prefix}_low": _n(c.rer.low),
                    f"{prefix}_high": _n(c.rer.high), f"{prefix}_pairs": c.rer.n})
    cb, cw, cc = g.comparison("dendrites", "baseline"), g.comparison("dendrites", "wide"), g.comparison(
        "compressed", "baseline")
    d = cb.diff
    mixed = g.mixed_versions
    out.update({
        "p_value": _n(cb.p_value), "diff_mean": _n(d.mean), "diff_low": _n(d.low), "diff_high": _n(d.high),
        "p_improvement": _n(cb.p_improvement), "significant": cb.significant, "anecdotal": cb.anecdotal,
        "verdict": cb.verdict, "null_arm": cb.null_arm,
        "p_value_wide": _n(cw.p_value), "p_improvement_wide": _n(cw.p_improvement),
        "verdict_wide": cw.verdict, "verdict_compressed": cc.verdict,
        "params_ratio": _n(cb.cost_ratios.get("params")), "flops_ratio": _n(cb.cost_ratios.get("flops_per_sample")),
        "time_ratio": _n(cb.cost_ratios.get("wall_s")), "steps_ratio": _n(cb.cost_ratios.get("steps")),
        "failures": g.failures, "mixed_versions": "; ".join(f"{p} {'/'.join(v)}" for p, v in sorted(mixed.items())),
        "published_claim": row.cells["claim"].text if row.cells["claim"].text != "–" else "",
    })
    return {k: clip(v) if isinstance(v, str) else v for k, v in out.items()}


def _csv_safe(v: Any) -> Any:
    """Spreadsheets run cells starting with = + - @ as formulas: quote text that does (not numbers)."""
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v
    return v


def render_csv(rows: Sequence[IndexRow]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: _csv_safe(v) for k, v in csv_record(row).items()})
    return buf.getvalue()


_MD_ESCAPE = str.maketrans({c: "\\" + c for c in "\\[]"})


def _md(text: str) -> str:
    """A table cell's text as inert Markdown.

    Markdown renders inline HTML and link / image syntax: HTML is escaped as entities, and the
    brackets that every link and image form needs (inline, reference, ``![img]``) are backslash-escaped,
    so ``[x](javascript:alert(1))`` from a record is shown as those characters, never as a link.
    """
    text = clip(text).translate(_MD_ESCAPE)
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
            .replace("\r", " ").replace("\n", " "))


def render_markdown(rows: Sequence[IndexRow], skipped: int, generated: str,
                    not_run: dict[str, str] | None = None) -> str:
    head = [h for _, h, _ in ALL_COLUMNS]
    smoke = sum(r.smoke for r in rows)
    lines = ["# dendrobench leaderboard", "",
             f"From {sum(len(r.group.records) for r in rows)} runs, the newest finished {generated}"
             + (f" ({skipped} unusable record file(s) skipped)" if skipped else "") + ".", "",
             "- RER = (error_baseline − error_dendrites) / error_baseline per seed pair, averaged; "
             f"{BRACKETS}.",
             f"- Arm columns: test metric (validation where marked (val)), mean ± SD; {PLUS_MINUS}. Effect: mean "
             "paired difference of that metric in its own units [95 % interval].",
             f"- Verdict: better / worse only at p < {stats.ALPHA} in a two-sided exact sign-flip test of the "
             f"paired error differences, which needs at least {stats.MIN_PAIRS} seed pairs; smoke rows are "
             "pipeline checks without a verdict; publishable = at least "
             f"{stats.PUBLISH_MIN_PAIRS} seed pairs at a standard or full budget.",
             ]
    if smoke:
        lines.append(f"- {smoke} smoke row(s) (pipeline checks) are listed last, grade \"pipeline check\".")
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in sorted(rows, key=lambda r: r.smoke):
        lines.append("| " + " | ".join(_md(row.cells[c].text) for c, _, _ in ALL_COLUMNS) + " |")
    warned = [r for r in rows if r.warning]
    if warned:
        lines += [""] + [f"- ⚠ {_md(r.title)} ({_md(r.key.engine)}, {_md(r.key.budget)}): {r.warning}" for r in warned]
    missing = missing_tasks(rows, not_run)
    if missing:
        lines += ["", "Not run:", ""] + [f"- {_md(t)}: {_md(why)}" for t, why in missing.items()]
    return "\n".join(lines) + "\n"


HEADLINE_COLUMNS = ("task", "source", "engine", "budget", "seeds", "rer", "verdict", "rer_wide", "params", "flops",
                    "time", "claim")


def render_headline(rows: Sequence[IndexRow], records: Sequence[dict[str, Any]],
                    not_run: dict[str, str] | None = None, claims: Sequence[dict[str, Any]] = ()) -> str:
    """The README's headline, generated so that it cannot drift from the site: the task rows (no
    smoke rows, no claim protocols), a row for each task that was not run with the reason, then the
    claim table. tests/test_published_site.py checks that the README carries this text verbatim."""
    from dendrobench.evidence.claims import claim_table
    from dendrobench.evidence.claims import load_claims as claim_registry

    names = {c: h for c, h, _ in ALL_COLUMNS}
    task_rows = sorted((r for r in rows if not r.smoke and not r.key.claim),
                       key=lambda r: (r.key.task, r.key.engine != "gd", r.key.engine))
    lines = ["| " + " | ".join(names[c] for c in HEADLINE_COLUMNS) + " |", "|" + "---|" * len(HEADLINE_COLUMNS)]
    lines += ["| " + " | ".join(_md(r.cells[c].text) for c in HEADLINE_COLUMNS) + " |" for r in task_rows]
    for task, why in missing_tasks(rows, not_run).items():
        cells = dict.fromkeys(HEADLINE_COLUMNS, "–")
        published = "; ".join(claim_text(c) for c in claims_for(task, claims) if c.get("kind") == "claim")
        cells.update(task=task, seeds="0", rer="not run", verdict=why, claim=published or "–")
        lines.append("| " + " | ".join(_md(cells[c]) for c in HEADLINE_COLUMNS) + " |")
    claim_records = [r for r in records if r.get("claim")]
    if claim_records or set(not_run or {}) & set(claim_registry()):
        lines += ["", claim_table(claim_records, not_run).rstrip("\n")]
    lines += ["", provenance(records)]
    return "\n".join(lines) + "\n"


def missing_tasks(rows: Sequence[IndexRow], not_run: dict[str, str] | None) -> dict[str, str]:
    """The not-run reasons of tasks that have no (non-smoke) row (claim ids are for the claim table)."""
    from dendrobench.evidence.claims import load_claims as registry

    have, claim_ids = {r.key.task for r in rows if not r.smoke}, set(registry())
    return {t: why for t, why in (not_run or {}).items() if t not in have and t not in claim_ids}


def provenance(records: Sequence[dict[str, Any]]) -> str:
    """When and on what the records were made, from the records themselves (so the line is as
    reproducible as the table): how many, the newest finish, each software/machine combination
    with its share, and the budgets used."""
    combos = Counter()
    for r in records:
        env = r.get("env") or {}
        torch_v = str((env.get("packages") or {}).get("torch") or env.get("torch") or "?")
        threads = env.get("threads")
        combos[(f"{env.get('device_name') or '?'} {str(env.get('platform') or '?').split('-')[0]}",
                str(env.get("device") or "?"), str(env.get("python") or "?"), torch_v,
                "?" if threads is None else str(threads))] += 1
    machines = "; ".join(
        f"{machine}, {device} only, Python {py}, torch {tv}, {th} thread{'s' if th != '1' else ''} per run"
        + (f" ({n} run{'s' if n != 1 else ''})" if len(combos) > 1 else "")
        for (machine, device, py, tv, th), n in sorted(combos.items(), key=lambda kv: (-kv[1], kv[0])))
    budgets = ", ".join(sorted({str(r.get("budget")) for r in records if r.get("budget")}))
    return (f"From {len(records)} run records, the newest finished {newest_finish(records)}; "
            f"budgets {budgets}; {machines}.")


# -- task pages -------------------------------------------------------------------------------
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


# -- the site ---------------------------------------------------------------------------------
def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             finalize=_finalize)
    env.globals["different_dataset"] = different_dataset
    env.globals["css"] = jinja2.utils.markupsafe.Markup((HERE / "static" / "style.css").read_text(encoding="utf-8"))
    # JS is trusted package data; it is inlined verbatim, data goes through |tojson in a JSON block
    env.globals["sort_js"] = jinja2.utils.markupsafe.Markup((HERE / "static" / "table.js").read_text(encoding="utf-8"))
    return env


@dataclass
class BuildResult:
    """What a build wrote and what it skipped (for the CLI's summary and for tests)."""

    out: Path
    index: Path
    pages: dict[str, Path]
    markdown: Path
    csv: Path
    rows: list[IndexRow]
    problems: list[tuple[Path, str]]
    claims: Path | None = None
    headline: Path | None = None


MANIFEST = ".dendrobench-site.json"
_LEGACY_SITE = {"index.html", "leaderboard.md", "leaderboard.csv", "tasks"}


def previous_build(out: Path, force: bool = False) -> list[str]:
    """The files a previous build wrote into ``out`` (from its manifest), checked before writing.

    A build replaces only what a build wrote: ``out`` must be new, empty, a previous site (its
    manifest lists what may be replaced), or a site from before manifests existed (nothing in it is
    deleted). Any other non-empty folder is refused unless ``force`` (then files are written beside
    what is there, and nothing is deleted). ``out`` naming a file is a :class:`UserError`.
    """
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder: give a new or empty folder for the site")
    if not out.is_dir():
        return []
    manifest = out / MANIFEST
    if manifest.is_file():
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
            files = [str(f) for f in data["files"]]
        except (OSError, ValueError, KeyError, TypeError):
            files = None
        if files is not None:
            return files
    entries = {p.name for p in out.iterdir()}
    legacy = entries and entries <= _LEGACY_SITE and "index.html" in entries and (
        "dendrobench leaderboard" in (out / "index.html").read_text(encoding="utf-8", errors="replace")[:4000])
    if entries and not legacy and not force:
        raise UserError(f"--out {out} is a non-empty folder that is not a dendrobench site (no {MANIFEST}); "
                        "give a new or empty folder, or add --force to write into it (nothing in it is deleted)")
    return []


def _write_manifest(out: Path, written: Sequence[Path], previous: Sequence[str]) -> None:
    """Record what this build wrote, and delete what the previous build wrote and this one did not."""
    names = sorted(p.relative_to(out).as_posix() for p in written)
    root = out.resolve()
    for name in sorted(set(previous) - set(names)):
        old = (out / name)
        try:  # only plain files inside the site that a build wrote: a manifest edited by hand cannot reach out
            if old.resolve().parent.is_relative_to(root) and old.is_file() and not old.is_symlink():
                old.unlink()
        except OSError:
            pass
    (out / MANIFEST).write_text(json.dumps({"generator": PROG, "files": names}, indent=1) + "\n", encoding="utf-8")


def build_site(results_dirs: Sequence[Path | str], out: Path | str, *,
               warn: Callable[[str], None] | None = None, claims_path: Path | None = None,
               generated: str | None = None, force: bool = False) -> BuildResult:
    """Read records, compute the statistics and write the whole site into ``out``.

    ``out`` may be new, empty or a previous site; see :func:`previous_build` for the rest.
    """
    out = Path(out)
    previous = previous_build(out, force)
    not_run = load_not_run(results_dirs)  # a malformed file is refused before anything is written
    records, problems = load_records(results_dirs, warn)
    claims = load_claims(claims_path)
    rows = [make_row(g, claims) for g in stats.summarize(records)]
    (out / "tasks").mkdir(parents=True, exist_ok=True)
    generated = generated or newest_finish(records)
    env = _env()
    common = {"generated": generated, "min_seeds": stats.MIN_PAIRS, "alpha": stats.ALPHA,
              "plus_minus": PLUS_MINUS, "brackets": BRACKETS,
              "pm_meaning": PM_MEANING, "ci_meaning": CI_MEANING}

    pages: dict[str, Path] = {}
    by_task: dict[str, list[IndexRow]] = {}
    for row in rows:
        by_task.setdefault(row.key.task, []).append(row)
    page_t = env.get_template("task.html.j2")
    for task, trows in by_task.items():
        path = out / trows[0].page
        path.write_text(page_t.render(**common, **task_context(task, trows)), encoding="utf-8")
        pages[task] = path

    data = [csv_record(r) for r in rows]
    index_link = lambda r: r.href  # noqa: E731
    forest_main = svg.forest("dendrites, RER per row", forest_rows([r for r in rows if not r.smoke], index_link))
    forest_all = svg.forest("dendrites, RER per row (smoke rows included)", forest_rows(rows, index_link))
    modalities = sorted({r.group.modality for r in rows})
    engines = sorted({r.key.engine for r in rows})
    index = out / "index.html"
    index.write_text(env.get_template("index.html.j2").render(
        **common, rows=rows, columns=COLUMNS, details=DETAILS, data=data, modalities=modalities, engines=engines,
        forest_main=forest_main, forest_all=forest_all, n_smoke=sum(r.smoke for r in rows),
        sources=sorted({r.key.data_source for r in rows}),
        problems=[(str(p), why) for p, why in problems], claims=claims, n_records=len(records),
        not_run=missing_tasks(rows, not_run),
        results_dirs=[str(d) for d in results_dirs]), encoding="utf-8")
    forest_file = out / "forest.svg"  # the index's forest plot on its own, for the README
    forest_file.write_text(svg.standalone(forest_main, env.globals["css"]), encoding="utf-8")
    headline = out / "headline.md"
    headline.write_text(render_headline(rows, records, not_run, claims), encoding="utf-8")
    md = out / "leaderboard.md"
    md.write_text(render_markdown(rows, len(problems), generated, not_run), encoding="utf-8")
    csv_path = out / "leaderboard.csv"
    csv_path.write_text(render_csv(rows), encoding="utf-8")
    claims_path_out = out / "claims.html"
    claims_path_out.write_text(env.get_template("claims.html.j2").render(
        **common, claims=claims_page.claim_context(rows, not_run=not_run)), encoding="utf-8")
    _write_manifest(out, [index, md, csv_path, claims_path_out, forest_file, headline, *pages.values()], previous)
    return BuildResult(out, index, pages, md, csv_path, rows, problems, claims_path_out, headline)


# -- for the CLI ------------------------------------------------------------------------------
def site_command(results_dirs: Sequence[Path | str], out: Path | str = DEFAULT_OUT) -> str:
    """The shell command that builds the site from these results (printed at the end of a run)."""
    return " ".join(["dendrobench", "leaderboard", *(shlex.quote(str(d)) for d in results_dirs),
                     "--out", shlex.quote(str(out))])


def format_task_row(records: Sequence[dict[str, Any]], task: str) -> str:
    """The task's leaderboard row(s) as plain text for the terminal, one block per group."""
    recs = [r for r in records if r.get("task") == task]
    if not recs:
        return f"{task}: no runs recorded"
    claims = claims_for(task, load_claims())
    lines = []
    groups = stats.summarize(recs)
    datasets = {g.key.dataset for g in groups}
    for g in groups:
        k = g.key
        lines.append(f"leaderboard row: {k.task} ({k.dataset or '?'}, {k.data_source}, engine {k.engine}, "
                     f"budget {k.budget}, metric {g.metric})" + (f" [{k.protocol}]" if k.protocol != "matched" else ""))
        for arm, ref in stats.COMPARISONS:
            c = g.comparisons.get((arm, ref))
            if c is None:
                continue
            lines.append(f"  {arm} vs {ref}: RER {fmt_rer(c.rer)}, {fmt_effect(c, g.metric)}, "
                         f"P(improve) {fmt_pct(c.p_improvement, False)}, {c.pairs} pair(s), "
                         f"p = {fmt_p(c.p_value)} -> {verdict_text(c)}"
                         + (f"; {c.null_message}" if c.null_message else "")
                         + (f"; {c.unpaired} unpaired" if c.unpaired else "")
                         + (f"; {c.undefined} with zero reference error" if c.undefined else ""))
        cb = g.comparison("dendrites", "baseline")
        if cb.cost_ratios:
            lines.append("  cost dendrites/baseline: " + ", ".join(
                f"{name} {fmt_ratio(cb.cost_ratios.get(key))}" for name, key in
                (("params", "params"), ("FLOPs", "flops_per_sample"), ("time", "wall_s"), ("steps", "steps"))))
        if g.failures:
            lines.append("  failed/diverged: " + ", ".join(
                f"{a} {s.failed + s.diverged}" for a, s in g.arms.items() if s.failed + s.diverged))
    for c in claims:
        if c.get("kind") == "claim":
            lines.append(f"  published: {claim_text(c, next(iter(datasets)) if len(datasets) == 1 else None)}")
    return "\n".join(lines)


HEADLINE_START, HEADLINE_END = "<!-- dendrobench:headline -->", "<!-- /dendrobench:headline -->"


def _headline_slot(readme: Path) -> tuple[str, str]:
    """The text before and after the README's headline markers; a UserError if they are missing."""
    try:
        text = readme.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read --readme {readme}: {getattr(exc, 'strerror', None) or exc}") from None
    start, end = text.find(HEADLINE_START), text.find(HEADLINE_END)
    if start < 0 or end < start:
        raise UserError(f"--readme {readme} has no {HEADLINE_START} ... {HEADLINE_END} pair; "
                        "put the two markers where the headline table goes")
    return text[:start + len(HEADLINE_START)], text[end:]


def put_headline(readme: Path, headline: str) -> None:
    """Replace the README's headline block by the site's headline.md (written atomically, mode kept)."""
    from dendrobench.running.results import atomic_write

    before, after = _headline_slot(readme)
    atomic_write(readme, lambda fh: fh.write(before + "\n" + headline + after), mode=readme.stat().st_mode & 0o777)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, description="Build the static leaderboard site (HTML, Markdown, CSV) from run records.")
    p.add_argument("results_dirs", nargs="+", metavar="RESULTS_DIR", help="folders of run records (searched recursively)")
    p.add_argument("--out", default=DEFAULT_OUT, metavar="SITE_DIR", help=f"output folder (default: ./{DEFAULT_OUT})")
    p.add_argument("--claims", type=Path, default=None, help="another reference.yaml of published claims")
    p.add_argument("--readme", type=Path, default=None, metavar="FILE",
                   help=f"also put the headline table into FILE, between {HEADLINE_START} and {HEADLINE_END}")
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty folder that is not a previous site (nothing in it is deleted)")
    return p


def main(argv: list[str] | None = None) -> int:
    """``dendrobench leaderboard RESULTS_DIR... --out SITE_DIR``; 0 on success, 2 on a user error."""
    args = _parser().parse_args(argv)
    try:
        if args.readme is not None:
            _headline_slot(args.readme)  # bad input is refused before any work
        res = build_site(args.results_dirs, args.out, claims_path=args.claims, force=args.force)
        if args.readme is not None:
            put_headline(args.readme, res.headline.read_text(encoding="utf-8"))
    except UserError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"{PROG}: error: cannot write the site: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except yaml.YAMLError as exc:
        print(f"{PROG}: error: claims file is not valid YAML: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    n = sum(len(r.group.records) for r in res.rows)
    print(f"leaderboard: {len(res.rows)} row(s) from {n} run(s), {len(res.pages)} task page(s)"
          + (f", {len(res.problems)} file(s) skipped" if res.problems else ""))
    print(f"  {res.index.resolve().as_uri()}")
    print(f"  {res.markdown}\n  {res.csv}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
