"""The words a comparison ends in: the verdict texts, the fewest pairs a verdict needs, and the
rule that picks one (``docs/statistics.md``, "The verdict").

Kept apart from ``stats`` (which computes the numbers) so that every reader that matches on a
verdict -- the leaderboard's classes, the claims page, the convergence rule -- finds the texts in
one place, and the rule can be read, and tested, without the row machinery.
"""

from __future__ import annotations

import math

from dendrobench.evidence.estimands import min_attainable_p

ALPHA = 0.05  # two-sided significance level of every verdict
N_RESAMPLES = 9_999  # sign flips: all 2**n when 2**n <= this (n <= 13), else this many random ones

# the verdicts a Comparison can give (TOO_FEW and CANNOT_DECIDE are prefixes: the full text names
# the pairs needed / the informative pairs there were; NULL_ARM starts the note a mostly null row adds)
BETTER, WORSE, NO_DIFFERENCE = "better", "worse", "no significant difference"
PIPELINE_CHECK, NO_PAIRS = "pipeline check", "no pairs"
TOO_FEW = "too few seeds for a verdict"
CANNOT_DECIDE = "cannot decide: only"
NULL_ARM = "null arm"


def min_pairs_for(alpha: float = ALPHA) -> int:
    """Fewest pairs whose exact two-sided sign-flip test can reach ``p < alpha`` (min p = 2 / 2**n)."""
    n = 1
    while 2.0 / 2**n >= alpha:
        n += 1
    return n


MIN_PAIRS = min_pairs_for()  # 6 at alpha = 0.05
MIN_SEEDS = MIN_PAIRS  # the name the leaderboard used before the sign-flip test


def too_few_verdict(needed: int = MIN_PAIRS) -> str:
    return f"{TOO_FEW}: need {needed}"


def cannot_decide_verdict(informative_pairs: int) -> str:
    """Enough pairs, too few of them informative (the rest tie): no p-value they allow is < 0.05."""
    return f"{CANNOT_DECIDE} {informative_pairs} informative pair{'' if informative_pairs == 1 else 's'}"


def with_dendrites_text(with_dendrites: int, total: int) -> str:
    """"k of n selected models had dendrites": shown on every row with a dendritic arm (issue 24)."""
    return f"{with_dendrites} of {total} selected model{'' if total == 1 else 's'} had dendrites"


def verdict(n_pairs: int, p_value: float | None, direction: float, grade: str | None = None,
            informative_pairs: int | None = None) -> str:
    """The verdict for ``n_pairs`` complete pairs with test p-value ``p_value``; ``direction`` is
    the mean (tie-zeroed) error difference (positive: the arm has the lower error);
    ``informative_pairs`` the pairs that are not ties (None: all of them). See the module docstring."""
    if n_pairs == 0:
        return NO_PAIRS
    if grade == "smoke":
        return PIPELINE_CHECK
    if n_pairs < MIN_PAIRS:
        return too_few_verdict()
    k = n_pairs if informative_pairs is None else informative_pairs
    if min_attainable_p(k, N_RESAMPLES) >= ALPHA:
        return cannot_decide_verdict(k)
    if p_value is not None and math.isfinite(p_value) and p_value < ALPHA and direction != 0:
        return BETTER if direction > 0 else WORSE
    return NO_DIFFERENCE
