"""Was the baseline trained long enough? A budget-sufficiency rule, enforced by the leaderboard.

Why: a dendrites-vs-baseline verdict under a budget that ends before the base network stops
improving says little about dendrites (Perforated AI adds dendrites once the base network has
plateaued; a short budget cannot test that). So every row carries a convergence status, and an
under-trained row gets no verdict. The rule (``docs/statistics.md``, "Convergence"), in order:

1. **Double-budget check (decisive).** Baseline runs of the row's task, data, options and budget
   name whose budget differs from the row's only in its length (``budget_overrides.epochs`` or
   ``budget_overrides.steps_per_epoch``) and whose planned steps are 2x the row's (within
   :data:`DOUBLE_TOLERANCE`), on at least :data:`MIN_DOUBLE_SEEDS` of the row's baseline seeds.
   They are ordinary records (``dendrobench task=T arms=[baseline] budget_overrides.epochs=2E
   seeds=3``). Paired seed by seed with the row's baseline: if the mean error drop
   ``err(budget) - err(2x budget)`` exceeds the standard deviation of the row's baseline errors over
   seeds, the row is **under-trained**; otherwise **converged**.
2. **History check (cheaper evidence, from the row's own baseline records).** For each baseline
   seed with at least :data:`MIN_EVALS` validation evaluations, is its best validation score (the
   one the runner selects: the first best) in the last :data:`LATE_FRACTION` of the run's steps?
   On a plateau with evaluation noise the best evaluation falls anywhere, so a seed lands there with
   probability ``q`` = the share of its evaluations in that stretch. Under that null the count of
   late seeds is Poisson-binomial; if ``P(count >= observed) < ALPHA`` (one-sided) the learning
   curve is still rising at the end: **under-trained**.
3. Otherwise **not checked**: no double-budget evidence and no evidence that the curve is still
   rising. Such rows keep their verdict, marked "convergence: not checked": absence of a rising
   curve is weaker than the double-budget check, and removing every unchecked verdict would also
   remove those of rows that did plateau.

Double-budget records form a baseline-only row of their own in :func:`dendrobench.evidence.stats.summarize`;
:func:`link_double_budget` attaches them to the row they check, and the leaderboard shows them on
that row's task page instead of as a row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import stats

ALPHA = 0.05  # one-sided level of the history test
LATE_FRACTION = 0.2  # "the last 20 % of training"
MIN_EVALS = 3  # a seed with fewer validation evaluations says nothing about where its best falls
MIN_HISTORY_SEEDS = 3  # fewer seeds with a usable history: no history verdict
MIN_DOUBLE_SEEDS = 3  # the double-budget check needs this many paired seeds
DOUBLE_TOLERANCE = 0.05  # planned steps of a 2x run: 2 +- this, times the row's
LENGTH_KEYS = ("budget.epochs", "budget.steps_per_epoch")  # what a 2x budget may change

CONVERGED, UNDER_TRAINED, NOT_CHECKED = "converged", "under-trained", "not checked"
NO_VERDICT = "under-trained: no verdict"


@dataclass
class HistoryEvidence:
    """Where each baseline seed's best validation evaluation falls (see the module docstring)."""

    seeds: int  # baseline seeds with >= MIN_EVALS evaluations
    late: int  # of those, seeds whose best evaluation is in the last LATE_FRACTION of steps
    expected: float  # late seeds expected on a plateau (sum of the per-seed chances)
    p_value: float | None  # P(late >= observed) on a plateau; None below MIN_HISTORY_SEEDS

    @property
    def rising(self) -> bool:
        return self.p_value is not None and self.p_value < ALPHA

    def text(self) -> str:
        tail = f"best validation in the last {LATE_FRACTION:.0%} of training in {self.late} of {self.seeds} seeds"
        if self.p_value is None:
            return tail + f" (needs {MIN_HISTORY_SEEDS} seeds for a test)"
        return tail + f" (plateau: {self.expected:.1f} expected, p {_fmt_p(self.p_value)})"


@dataclass
class DoubleEvidence:
    """The row's baseline against the same baseline at twice the steps, seed by seed."""

    seeds: list[int]
    drop: float  # mean over paired seeds of err(budget) - err(2x budget): > 0 means 2x helped
    sd: float  # SD over seeds of the row's baseline errors (the seed-to-seed noise)
    steps: float  # planned steps of the 2x runs
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def under_trained(self) -> bool:
        return self.drop > self.sd

    def text(self) -> str:
        rel = "more than" if self.under_trained else "not more than"
        return (f"2x budget ({self.steps:.0f} steps) lowers baseline error by {self.drop:+.4f}, {rel} the "
                f"seed-to-seed SD {self.sd:.4f} ({len(self.seeds)} paired seeds)")


@dataclass
class Convergence:
    """A row's convergence status, with the evidence behind it."""

    status: str  # CONVERGED | UNDER_TRAINED | NOT_CHECKED
    basis: str | None  # "2x budget" | "history" | None
    history: HistoryEvidence | None = None
    double: DoubleEvidence | None = None

    @property
    def under_trained(self) -> bool:
        return self.status == UNDER_TRAINED

    @property
    def short(self) -> str:
        """The table cell: "converged (2x budget)", "under-trained (history)", "not checked"."""
        return self.status if self.basis is None else f"{self.status} ({self.basis})"

    @property
    def detail(self) -> str:
        """The evidence in one sentence, for the tooltip and the task page."""
        parts = [e.text() for e in (self.double, self.history) if e is not None]
        lead = "convergence: not checked" if self.status == NOT_CHECKED else self.status
        return lead + (": " + "; ".join(parts) if parts else ": no double-budget runs and no validation history")


def shown_verdict(conv: Convergence | None, verdict: str) -> str:
    """The verdict a reader sees: replaced by "under-trained: no verdict" on an under-trained row.
    Rows without pairs, smoke pipeline checks, too-few-seeds and cannot-decide rows keep their own
    wording (they give no verdict anyway)."""
    if conv is None or not conv.under_trained:
        return verdict
    if verdict == stats.NO_PAIRS or verdict == stats.PIPELINE_CHECK or verdict.startswith(
            (stats.TOO_FEW, stats.CANNOT_DECIDE)):
        return verdict
    return NO_VERDICT


# -- the history check ----------------------------------------------------------------------------
def best_position(history: Sequence[dict[str, Any]], metric: str, higher_is_better: bool,
                  end_step: float | None = None) -> tuple[bool, float] | None:
    """(is the first best validation evaluation in the last LATE_FRACTION of steps, share of the
    evaluations in that stretch), or None below MIN_EVALS evaluations with a step and a value.
    ``end_step`` is the end of training (default: the last evaluation's step)."""
    points = [(s, v) for h in history
              if (s := stats._num(h.get("step"))) is not None
              and (v := stats._num((h.get("val") or {}).get(metric))) is not None]
    if len(points) < MIN_EVALS:
        return None
    end = end_step if end_step is not None else max(s for s, _ in points)
    start = (1 - LATE_FRACTION) * end
    values = np.array([v for _, v in points])
    best = int(np.argmax(values) if higher_is_better else np.argmin(values))  # first best, as the runner selects
    chance = sum(s > start for s, _ in points) / len(points)
    return points[best][0] > start, chance


def poisson_binomial_sf(k: int, probs: Sequence[float]) -> float:
    """P(sum of independent Bernoulli(p_i) >= k), exactly (by convolution)."""
    dist = np.array([1.0])
    for p in probs:
        dist = np.convolve(dist, [1 - p, p])
    return float(min(1.0, dist[k:].sum())) if k < len(dist) else 0.0


def history_evidence(records: Sequence[dict[str, Any]], metric: str, higher_is_better: bool) -> HistoryEvidence | None:
    """The history check over the ok baseline records given (None when none has a usable history)."""
    found = [p for r in records if r.get("arm") == "baseline" and stats.usable(r)
             and (p := best_position(r.get("history") or [], metric, higher_is_better)) is not None]
    if not found:
        return None
    late = sum(is_late for is_late, _ in found)
    chances = [c for _, c in found]
    p = poisson_binomial_sf(late, chances) if len(found) >= MIN_HISTORY_SEEDS else None
    return HistoryEvidence(len(found), late, float(sum(chances)), p)


# -- the double-budget check ------------------------------------------------------------------
def planned_steps(record: dict[str, Any]) -> float | None:
    """The steps a run's budget planned (``cost.max_steps``, else epochs x steps per epoch)."""
    cost = record.get("cost") or {}
    v = stats._num(cost.get("max_steps"))
    if v is None and stats._num(cost.get("max_epochs")) and stats._num(cost.get("steps_per_epoch")):
        v = float(cost["max_epochs"]) * float(cost["steps_per_epoch"])
    return v


def _shape(record: dict[str, Any]) -> str:
    """The record's common settings less the budget's length: equal for a run and its 2x run. A
    ``protocol=fork`` row's baseline is the matched baseline itself (it trains on, unchanged, past
    the fork: dendrobench/running/fork.py), so the matched 2x runs are its evidence too."""
    c = {k: v for k, v in stats.common_settings(record).items() if k not in LENGTH_KEYS}
    if c.get("protocol") == "fork":
        c["protocol"] = "matched"
    return stats._canon(c)


def is_double_of(candidate: dict[str, Any], reference: dict[str, Any]) -> bool:
    """Whether ``candidate`` is a baseline run of ``reference``'s setting at twice its planned steps."""
    if candidate.get("arm") != "baseline" or stats.protocol_of(candidate) != "matched":
        return False
    a, b = planned_steps(candidate), planned_steps(reference)
    if a is None or not b or abs(a / b - 2.0) > DOUBLE_TOLERANCE:
        return False
    return _shape(candidate) == _shape(reference)


def double_evidence(row_records: Sequence[dict[str, Any]], doubles: Sequence[dict[str, Any]]) -> DoubleEvidence | None:
    """The double-budget check (None below MIN_DOUBLE_SEEDS paired seeds)."""
    base = {int(r["seed"]): float(r["error"]) for r in row_records if r.get("arm") == "baseline" and stats.usable(r)}
    twice: dict[int, dict[str, Any]] = {}
    for r in sorted(doubles, key=stats._recency):  # the newest run of a seed counts
        if stats.usable(r):
            twice[int(r["seed"])] = r
    seeds = sorted(set(base) & set(twice))
    if len(seeds) < MIN_DOUBLE_SEEDS or len(base) < 2:
        return None
    drop = float(np.mean([base[s] - float(twice[s]["error"]) for s in seeds]))
    sd = float(np.std(list(base.values()), ddof=1))
    steps = float(np.mean([planned_steps(twice[s]) or math.nan for s in seeds]))
    return DoubleEvidence(seeds, drop, sd, steps, [twice[s] for s in seeds])


def assess(row_records: Sequence[dict[str, Any]], metric: str, higher_is_better: bool,
           doubles: Sequence[dict[str, Any]] = ()) -> Convergence:
    """The rule of the module docstring for one row."""
    hist = history_evidence(row_records, metric, higher_is_better)
    dbl = double_evidence(row_records, doubles)
    if dbl is not None:
        return Convergence(UNDER_TRAINED if dbl.under_trained else CONVERGED, "2x budget", hist, dbl)
    if hist is not None and hist.rising:
        return Convergence(UNDER_TRAINED, "history", hist)
    return Convergence(NOT_CHECKED, None, hist)


@dataclass
class Linked:
    """Every row's convergence, and the rows that are only double-budget evidence for another."""

    by_row: dict[str, Convergence]  # row_id -> status
    evidence_rows: set[str]  # row_ids of baseline-only rows made entirely of 2x runs of a shown row


def link_double_budget(groups: Sequence[stats.GroupSummary]) -> Linked:
    """Assess every row, attaching the 2x baseline runs of other (baseline-only) rows to the row
    they double. A baseline-only row all of whose runs double some other row is evidence, not a row."""
    candidates = [(g, r) for g in groups if set(g.arms) == {"baseline"} for r in g.records]
    by_row: dict[str, Convergence] = {}
    used: dict[str, set[int]] = {}
    for g in groups:
        ref = next((r for r in g.records if r.get("arm") == "baseline"), None)
        doubles = [] if ref is None else [r for h, r in candidates if h is not g and is_double_of(r, ref)]
        for h, r in candidates:
            if h is not g and ref is not None and is_double_of(r, ref):
                used.setdefault(h.row_id, set()).add(id(r))
        by_row[g.row_id] = assess(g.records, g.metric, g.higher_is_better, doubles)
    evidence = {g.row_id for g in groups if set(g.arms) == {"baseline"}
                and used.get(g.row_id) == {id(r) for r in g.records}}
    return Linked(by_row, evidence)


def _fmt_p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"
