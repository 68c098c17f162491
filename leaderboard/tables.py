"""The text views of the board: CSV, Markdown and the README headline, formatted from index rows."""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dendrobench.errors import UserError
from dendrobench.evidence import stats

from .formatting import (
    BRACKETS,
    PLUS_MINUS,
    RER_CI_MEANING,
    clip,
)
from .model import ALL_COLUMNS, IndexRow, claim_text, claims_for, missing_tasks, newest_finish, not_run_label


def _n(v: float | None) -> float | str:
    return "" if v is None or not math.isfinite(v) else round(v, 6)


CSV_FIELDS = (
    "task", "dataset", "data_source", "modality", "engine", "budget", "metric", "higher_is_better", "split",
    "row_id", "label", "grade", "publishable", "protocol", "claim",
    "baseline_mean", "baseline_low", "baseline_high", "baseline_ok", "baseline_failed",
    "dendrites_mean", "dendrites_low", "dendrites_high", "dendrites_ok", "dendrites_failed",
    "wide_mean", "wide_low", "wide_high", "wide_ok", "wide_failed",
    "compressed_mean", "compressed_low", "compressed_high", "compressed_ok", "compressed_failed",
    "rer_mean", "rer_low", "rer_high", "rer_pairs", "p_value", "p_holm", "family_size", "diff_mean", "diff_low", "diff_high",
    "p_improvement", "significant", "anecdotal", "verdict", "test_verdict", "null_arm", "convergence",
    "convergence_basis",
    "null_pairs", "with_dendrites", "informative_pairs", "tie_tolerance",
    "rer_per_pair_mean", "rer_per_pair_low", "rer_per_pair_high", "rer_per_pair_n",
    "rer_wide_mean", "rer_wide_low", "rer_wide_high", "rer_wide_pairs", "p_value_wide", "p_holm_wide", "p_improvement_wide",
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
        "p_value": _n(cb.p_value), "p_holm": _n(cb.p_holm), "family_size": cb.family_size or "", "diff_mean": _n(d.mean), "diff_low": _n(d.low), "diff_high": _n(d.high),
        "p_improvement": _n(cb.p_improvement), "significant": cb.significant and not row.under_trained, "anecdotal": cb.anecdotal,
        "verdict": row.cells["verdict"].sort, "test_verdict": cb.verdict, "null_arm": cb.null_arm,
        "convergence": row.convergence.status if row.convergence else "not checked",
        "convergence_basis": (row.convergence.basis or "") if row.convergence else "",
        "null_pairs": cb.null_pairs, "with_dendrites": cb.with_dendrites or "",
        "informative_pairs": cb.informative, "tie_tolerance": cb.tie_tolerance,
        "rer_per_pair_mean": _n(cb.rer_per_pair.mean), "rer_per_pair_low": _n(cb.rer_per_pair.low),
        "rer_per_pair_high": _n(cb.rer_per_pair.high), "rer_per_pair_n": cb.rer_per_pair.n,
        "p_value_wide": _n(cw.p_value), "p_holm_wide": _n(cw.p_holm), "p_improvement_wide": _n(cw.p_improvement),
        "verdict_wide": row.cells["verdict_wide"].sort, "verdict_compressed": cc.verdict,
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
             "- RER = (mean error_baseline − mean error_dendrites) / mean error_baseline over the seed pairs "
             f"(the RER of the mean errors: the quantity the verdict tests); [low, high] is {RER_CI_MEANING}. "
             "The mean per-pair RER is a secondary column.",
             f"- Arm columns: test metric (validation where marked (val)), mean ± SD; {PLUS_MINUS}. Effect: mean "
             "paired difference of that metric in its own units; for it and the mean per-pair RER, "
             f"{BRACKETS}.",
             f"- Verdict: better / worse only at p < {stats.ALPHA} in a two-sided exact sign-flip test of the "
             f"paired error differences, which needs at least {stats.MIN_PAIRS} seed pairs that are not ties "
             "(\"cannot decide: only k informative pairs\" otherwise); the test assumes a symmetric "
             "distribution of differences under no effect; smoke rows are "
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
        lines += ["", "Not run:", ""] + [f"- {_md(not_run_label(t))}: {_md(why)}" for t, why in missing.items()]
    return "\n".join(lines) + "\n"


HEADLINE_COLUMNS = ("task", "source", "engine", "budget", "seeds", "rer", "verdict", "convergence", "rer_wide", "params", "flops",
                    "time", "claim")


def render_headline(rows: Sequence[IndexRow], records: Sequence[dict[str, Any]],
                    not_run: dict[str, str] | None = None, claims: Sequence[dict[str, Any]] = (),
                    answers: Sequence[Any] = ()) -> str:
    """The README's headline, generated so that it cannot drift from the site: the task rows (no
    smoke rows, no claim protocols), a row for each task that was not run with the reason, then the
    claim table. tests/test_published_site.py checks that the README carries this text verbatim."""
    from dendrobench.evidence.claims import claim_table
    from dendrobench.evidence.claims import load_claims as claim_registry

    names = {c: h for c, h, _ in ALL_COLUMNS}
    task_rows = sorted((r for r in rows if not r.smoke and not r.key.claim),
                       key=lambda r: (r.key.task, r.key.engine != "gd", r.key.engine))
    # the one answer across tasks first (leaderboard/cross_task.py), then the rows it comes from
    lines = [f"- {a.sentence} ({a.scope}; 95 % stratified-bootstrap intervals)" for a in answers]
    lines += [""] if answers else []
    lines += ["| " + " | ".join(names[c] for c in HEADLINE_COLUMNS) + " |", "|" + "---|" * len(HEADLINE_COLUMNS)]
    def cell(r: IndexRow, c: str) -> str:  # a tuned or forked row says so beside its budget
        text = r.cells[c].text
        return f"{text} ({r.key.protocol})" if c == "budget" and r.key.protocol != "matched" else text

    lines += ["| " + " | ".join(_md(cell(r, c)) for c in HEADLINE_COLUMNS) + " |" for r in task_rows]
    for key, why in missing_tasks(rows, not_run).items():
        task, _, budget = key.partition("@")
        cells = dict.fromkeys(HEADLINE_COLUMNS, "–")
        published = "; ".join(claim_text(c) for c in claims_for(task, claims) if c.get("kind") == "claim")
        cells.update(task=task, seeds="0", rer="not run", verdict=why, claim=published or "–")
        if budget:
            cells["budget"] = budget
        lines.append("| " + " | ".join(_md(cells[c]) for c in HEADLINE_COLUMNS) + " |")
    claim_records = [r for r in records if r.get("claim")]
    if claim_records or set(not_run or {}) & set(claim_registry()):
        lines += ["", claim_table(claim_records, not_run).rstrip("\n")]
    lines += ["", provenance(records)]
    return "\n".join(lines) + "\n"


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
