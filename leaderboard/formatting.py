"""How the board writes numbers and verdicts: one formatter per kind of value, shared by every view."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import jinja2

from dendrobench.evidence import stats


def fmt_value(v: float | None) -> str:
    """A metric value: 3 decimals for [0, 1] metrics, fewer for perplexities."""
    if v is None or not math.isfinite(v):
        return "–"
    a = abs(v)
    return f"{v:.1f}" if a >= 100 else f"{v:.2f}" if a >= 10 else f"{v:.3f}"


def fmt_signed(v: float | None) -> str:
    """A signed difference in the metric's units: as :func:`fmt_value`, but a difference below 0.01
    keeps two significant digits, so a small effect reads ``+0.00031 [-0.00012, +0.00074]``, not
    ``+0.000 [-0.000, +0.000]``."""
    if v is None or not math.isfinite(v):
        return "–"
    if v == 0:
        return "0"
    if abs(v) < 0.01:
        return f"{v:+.2g}"
    return ("+" if v > 0 else "") + fmt_value(v)


def fmt_interval(iv: stats.Interval) -> str:
    """``mean ± SD`` over seeds: on every output of dendrobench "±" is the standard deviation over
    seeds (as in the end-of-run table); a 95 % interval is always written ``[low, high]``."""
    if iv.mean is None:
        return "–"
    if iv.n < 2 or iv.sd is None:
        return fmt_value(iv.mean)
    return f"{fmt_value(iv.mean)} ± {fmt_value(iv.sd)}"


def fmt_pct(v: float | None, signed: bool = True) -> str:
    if v is None or not math.isfinite(v):
        return "–"
    return f"{v * 100:+.1f} %" if signed else f"{v * 100:.0f} %"


def fmt_rer(iv: stats.Interval) -> str:
    if iv.mean is None:
        return "–"
    if iv.n < 2 or iv.low is None or iv.high is None:
        return fmt_pct(iv.mean)
    return f"{fmt_pct(iv.mean)} [{iv.low * 100:+.1f}, {iv.high * 100:+.1f}]"


def fmt_p(p: float | None) -> str:
    return "–" if p is None or not math.isfinite(p) else f"{p:.3f}" if p >= 0.001 else "< 0.001"


def fmt_effect(c: stats.Comparison, metric: str) -> str:
    """The mean paired difference in the metric's own units (positive: ``c.arm`` better) [95 %]."""
    iv = c.diff
    if iv.mean is None:
        return f"{metric} –"
    text = f"{metric} {iv.mean:+.4g}"
    if iv.low is not None and iv.high is not None:
        text += f" [{iv.low:+.4g}, {iv.high:+.4g}]"
    return text


def fmt_ratio(v: float | None) -> str:
    return "–" if v is None or not math.isfinite(v) else f"×{v:.2f}"


def fmt_count(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "–"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.2f}{unit}"
    return f"{v:.0f}"


def verdict_text(c: stats.Comparison, always_p: bool = False) -> str:
    """The verdict as shown: "better (p = 0.031)" when significant (``always_p``: whenever there is a
    p-value), else the test's verdict; then the null-arm note of a mostly null row."""
    text = c.test_verdict
    if (c.significant or always_p) and c.p_value is not None:
        text += f" (p = {fmt_p(c.p_value)})"
    if c.significant and c.p_holm is not None and c.family_size > 1:
        # the per-row test stays the verdict; Holm says whether it survives the family (issue 22.4)
        holds = "holds" if c.p_holm < stats.ALPHA else "not significant"
        text += f", {holds} after Holm over {c.family_size} rows (p = {fmt_p(c.p_holm)})"
    return f"{text}; {c.null_note}" if c.null_note else text


def verdict_class(c: stats.Comparison) -> str:
    if c.test_verdict == stats.BETTER:
        return "sig-pos"
    if c.test_verdict == stats.WORSE:
        return "sig-neg"
    if c.test_verdict == stats.PIPELINE_CHECK:
        return "pipeline"
    return "anecdotal" if c.too_few else ""


NULL_ARM_WARNING = "selected model has 0 dendrites: this row compares the baseline with itself"


def null_warning(c: stats.Comparison) -> str:
    """Said wherever a dendritic arm without dendrites is compared (issue 9 item 5), or one whose
    selected models mostly have none (issue 24: most pairs then compare the base model)."""
    if c.null_arm:
        return NULL_ARM_WARNING
    if c.mostly_null:
        return f"only {c.with_dendrites}: most pairs compare the base model with {c.reference}"
    return ""


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
RER_CI_MEANING = ("the 95 % interval of the paired test inverted: the RERs it does not reject "
                  "(it excludes 0 exactly when the verdict is better or worse)")
PLUS_MINUS = f"± is {PM_MEANING}"
BRACKETS = f"[low, high] is {CI_MEANING}"


def no_row_text(task: str, records: list[dict[str, Any]]) -> str:
    """Why a task with records has no leaderboard row: every run failed or diverged (the first message)."""
    n = len(records)
    failed = sum(r.get("status") == "failed" for r in records)
    what = (("its only run failed" if n == 1 else f"all {n} runs failed") if failed == n
            else f"none of the {n} runs has a score ({failed} failed, {n - failed} diverged)")
    first = next((str(r["message"]) for r in records if r.get("message")), "")
    return f"{task}: {what}, so there is no leaderboard row" + (f"; first: {first}" if first else "")
