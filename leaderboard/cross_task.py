"""The leaderboard's one answer across tasks (issue 22.3): which rows enter the aggregate, and the
aggregate of each comparison (computed by :mod:`dendrobench.evidence.aggregate`).

Part of the model layer: computed once from the index rows, then formatted by the views (the
index's opening section, the README headline). The rule for which rows enter:

* task rows only: no smoke rows, no claim protocols, only ``protocol=matched`` (equal steps; a tuned
  or forked row answers another question);
* rows the convergence rule found under-trained do not enter: their verdicts are withheld, and so is
  their part in the answer; the scope names the tasks left out for it;
* one engine at a time: the engine's rows, one per task, so that no baseline seed enters twice: the
  larger budget (``full`` > ``converged`` > ``standard`` > ``quick``);
* at least 2 tasks, each with complete seed pairs.

Each task is one stratum of the bootstrap; its tie tolerance is its metric's
(:func:`dendrobench.contract.metrics.tie_tolerance`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from dendrobench.contract import metrics
from dendrobench.evidence.aggregate import Aggregate, aggregate
from dendrobench.evidence.fields import paired_errors

from .model import IndexRow

GRADE_ORDER = ("quick", "standard", "converged", "full")
CROSS_COMPARISONS = (("dendrites", "baseline", "an equal-step baseline"),
                     ("dendrites", "wide", "the baseline widened to the same parameters"))
MIN_TASKS = 2


@dataclass
class CrossTask:
    """One aggregate with what it was computed from, for the views."""

    engine: str
    reference_words: str
    result: Aggregate
    rows: list[IndexRow]
    left_out: list[IndexRow] = field(default_factory=list)  # tasks whose only rows are under-trained

    @property
    def sentence(self) -> str:
        return self.result.sentence(self.reference_words)

    @property
    def scope(self) -> str:
        names = ", ".join(f"{r.key.task} ({r.key.budget})" for r in self.rows)
        left = ", ".join(f"{r.key.task} ({r.key.budget})" for r in self.left_out)
        caveat = f"; left out as under-trained: {left}" if left else ""
        return f"engine {self.engine}, matched budgets, one row per task: {names}{caveat}"


def _rank(row: IndexRow) -> int:
    return GRADE_ORDER.index(row.grade) if row.grade in GRADE_ORDER else -1


def cross_task(rows: Sequence[IndexRow]) -> list[CrossTask]:
    """Every comparison and engine with at least :data:`MIN_TASKS` task rows (rule in the module doc)."""
    out = []
    engines = sorted({r.key.engine for r in rows if r.key.engine not in ("none", "")})
    for arm, reference, words in CROSS_COMPARISONS:
        for engine in engines:
            best: dict[str, tuple[IndexRow, tuple[list[float], list[float]]]] = {}  # task -> row, its pairs
            under: dict[str, IndexRow] = {}  # task -> its largest under-trained row
            for r in rows:
                if (r.smoke or r.key.claim or r.key.protocol != "matched" or r.key.engine != engine
                        or _rank(r) < 0):
                    continue
                pairs = paired_errors(r.group.records, arm, reference)
                if not pairs[0]:
                    continue
                if r.under_trained:
                    if r.key.task not in under or _rank(r) > _rank(under[r.key.task]):
                        under[r.key.task] = r
                elif r.key.task not in best or _rank(r) > _rank(best[r.key.task][0]):
                    best[r.key.task] = (r, pairs)
            if len(best) < MIN_TASKS:
                continue
            chosen = [best[t][0] for t in sorted(best)]
            scores = {t: best[t][1] for t in sorted(best)}
            tolerance = {r.key.task: metrics.tie_tolerance(r.group.metric) for r in chosen}
            left_out = [under[t] for t in sorted(under) if t not in best]
            out.append(CrossTask(engine, words, aggregate(arm, reference, scores, tolerance), chosen, left_out))
    return out


def headline_first(answers: Sequence[CrossTask]) -> list[CrossTask]:
    """The aggregates in reading order: dendrites against the equal-step baseline first, the engine
    with the most tasks first (gd, the default engine, on a tie), then against the wide control."""
    return sorted(answers, key=lambda a: (a.result.reference != "baseline", -len(a.result.tasks),
                                          a.engine != "gd", a.engine))


def profile_series(answer: CrossTask) -> list[tuple[float, float, float, float]]:
    """(tau in %, fraction above, low, high) for the profile figure."""
    r = answer.result
    return [(100 * t, v, lo, hi) for t, v, lo, hi in zip(r.taus, r.profile, r.profile_low, r.profile_high)]
