"""The board's model: records and published claims in, index rows out, computed once.

Every view (HTML pages, Markdown, CSV, the README headline) formats these rows and never
recomputes a statistic; the statistics themselves come from ``dendrobench.evidence``.
"""

from __future__ import annotations

import hashlib
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from dendrobench.errors import UserError
from dendrobench.evidence import stats
from dendrobench.evidence.convergence import NO_VERDICT, Convergence, shown_verdict
from dendrobench.running import results

from .formatting import (
    BRACKETS,
    PLUS_MINUS,
    RER_CI_MEANING,
    fmt_interval,
    fmt_p,
    fmt_pct,
    fmt_ratio,
    fmt_rer,
    fmt_signed,
    fmt_value,
    null_warning,
    slug,
    verdict_class,
    verdict_text,
)


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
    ("rer", "RER vs baseline", "relative error reduction of the mean errors, (mean error_baseline - mean "
                               f"error_dendrites) / mean error_baseline over the seed pairs; [low, high] is "
                               f"{RER_CI_MEANING}"),
    ("p", "p", "two-sided p-value of the paired test on the seed pairs (dendrites vs baseline)"),
    ("verdict", "verdict", "better / worse only at p < 0.05; smoke runs are pipeline checks, never verdicts"),
    ("rer_wide", "RER vs wide", "dendrites against the base model widened to the same parameters, RER of the "
                                f"mean errors; [low, high] is {RER_CI_MEANING}"),
    ("seeds", "pairs", "complete seed pairs behind the RER vs baseline"),
)
DETAILS: tuple[tuple[str, str, str], ...] = (
    ("convergence", "converged?", "was the baseline trained long enough? 2x-budget runs or, failing them, where "
                                  "each seed's best validation fell; an under-trained row gets no verdict"),
    ("source", "data", "offline: the stand-in shipped with the task; online: the real full dataset"),
    ("modality", "modality", ""),
    ("engine", "engine", "dendrite engine"),
    ("budget", "budget", "training budget (identical optimizer steps for every arm under the matched protocol)"),
    ("grade", "grade", "the budget; smoke: pipeline check; publishable: >= 10 seed pairs at standard, converged or full, verdict not withheld"),
    ("protocol", "protocol", "matched: equal budgets; published: a claim's own procedure"),
    ("settings", "settings", "what differs from the other rows of this task"),
    ("metric", "metric", "test metric, or validation where marked (val); ↑ higher is better, ↓ lower is better"),
    ("wide", "wide", f"capacity control's test metric (validation where marked (val)); {PLUS_MINUS}"),
    ("diff", "effect", f"mean paired difference of the metric (test, or validation where marked (val)), "
                       f"dendrites against baseline in its units (positive = better); {BRACKETS}"),
    ("p_improve", "P(improve)", "fraction of seed pairs where dendrites had the lower error"),
    ("with_dendrites", "with dendrites", "how many of the selected (reported) dendritic models had any dendrites; "
                                         "a pair without is the base model against the baseline"),
    ("informative", "informative pairs", "seed pairs whose error difference exceeds the metric's tie tolerance: "
                                         "the only ones that carry a sign in the test"),
    ("rer_per_pair", "mean per-pair RER", f"RER computed per seed pair, then averaged (over-weights seeds with a "
                                          f"small baseline error); {BRACKETS}"),
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
    convergence: Convergence | None = None

    @property
    def key(self) -> stats.GroupKey:
        return self.group.key

    @property
    def smoke(self) -> bool:
        return self.grade == "smoke"

    @property
    def under_trained(self) -> bool:
        """The convergence rule found the baseline still learning: the row's verdicts are withheld."""
        return self.convergence is not None and self.convergence.under_trained

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
    title = (f"RER of the mean errors over {c.rer.n} pairs ({c.informative} informative); {c.unpaired} unpaired; "
             f"mean per-pair RER {fmt_rer(c.rer_per_pair)}")
    return Cell(fmt_rer(c.rer), c.rer.mean, title, verdict_class(c) if c.significant else "")


def _signed(v: float) -> str:
    return fmt_signed(v)


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


def make_row(g: stats.GroupSummary, claims: list[dict[str, Any]], conv: Convergence | None = None) -> IndexRow:
    """One index row. ``conv`` is the row's convergence status (evidence/convergence.py): an
    under-trained row shows "under-trained: no verdict" and is never publishable (issue 21.1)."""
    k = g.key
    row_id = g.row_id or hashlib.sha1(repr(tuple(k)).encode()).hexdigest()[:10]
    row = IndexRow(group=g, page=f"tasks/{slug(k.task)}.html", claims=claims_for(k.task, claims),
                   anchor=f"row-{row_id}", grade=grade_of(g), publishable=g.publishable, label=display_label(g),
                   convergence=conv)
    under = row.under_trained
    if under:
        row.publishable = False
    cb, cw, cc = g.comparison("dendrites", "baseline"), g.comparison("dendrites", "wide"), g.comparison(
        "compressed", "baseline")
    row.warning = null_warning(cb)
    fails = Counter({a: s.failed + s.diverged for a, s in g.arms.items()})
    claim_cell = "; ".join(claim_text(c, k.dataset) for c in row.claims if c.get("kind") == "claim") or "–"
    mixed = g.mixed_versions
    # the budget's name, always (two publishable rows of one task differ by it), and whether it is publishable
    grade_text = {"smoke": "pipeline check"}.get(row.grade, row.grade) + (" · publishable" if row.publishable else "")
    protocol, claim_id = g.protocol, g.claim
    verdict = verdict_text(cb) + (" · no dendrites" if row.warning and not cb.null_note else "")
    shown = shown_verdict(conv, cb.verdict)
    if shown == NO_VERDICT:
        verdict = NO_VERDICT + (f" (the test alone: {verdict})" if cb.p_value is not None else "")
    shown_wide = shown_verdict(conv, cw.verdict)
    row.cells = {
        "task": Cell(row.title, k.task.lower(), g.description),
        "baseline": _arm_cell(g, "baseline"),
        "dendrites": _arm_cell(g, "dendrites"),
        "rer": _rer_cell(cb),
        "p": Cell(fmt_p(cb.p_value), cb.p_value, f"{cb.pairs} complete pairs"),
        "verdict": Cell(verdict, shown, row.warning or (conv.detail if under else ""),
                        ("under-trained" if under else verdict_class(cb)) + (" warn" if row.warning else "")),
        "convergence": Cell(conv.short if conv else "not checked", conv.status if conv else "not checked",
                            conv.detail if conv else "", "warn" if under else ""),
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
        "with_dendrites": Cell(cb.with_dendrites or "–", cb.pairs - cb.null_pairs if cb.with_dendrites else None,
                               cb.null_message or "", "warn" if cb.null_pairs else ""),
        "informative": Cell(f"{cb.informative} of {cb.pairs}" if cb.pairs else "–", cb.informative,
                            f"ties: |error difference| <= {cb.tie_tolerance:g}"),
        "rer_per_pair": Cell(fmt_rer(cb.rer_per_pair), cb.rer_per_pair.mean,
                             f"{cb.rer_per_pair.n} pairs with a defined RER; {cb.undefined} with zero reference error"),
        "verdict_wide": Cell(NO_VERDICT if shown_wide == NO_VERDICT else verdict_text(cw), shown_wide, "",
                             "under-trained" if under else verdict_class(cw)),
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


def missing_tasks(rows: Sequence[IndexRow], not_run: dict[str, str] | None) -> dict[str, str]:
    """The not-run reasons of tasks that have no (non-smoke) row, and of ``TASK@BUDGET`` keys whose
    task has no row at that budget (say, ``cifar10@converged`` beside cifar10's quick row). Claim ids
    are for the claim table."""
    from dendrobench.evidence.claims import load_claims as registry

    have = {r.key.task for r in rows if not r.smoke}
    have_budget = {(r.key.task, r.key.budget) for r in rows if not r.smoke}
    claim_ids = set(registry())

    def missing(key: str) -> bool:
        task, _, budget = key.partition("@")
        return (task, budget) not in have_budget if budget else task not in have and key not in claim_ids

    return {k: why for k, why in (not_run or {}).items() if missing(k)}


def not_run_label(key: str) -> str:
    """``cifar10@converged`` -> ``cifar10 (converged budget)``; a bare task name stays as it is."""
    task, _, budget = key.partition("@")
    return f"{task} ({budget} budget)" if budget else task

