"""Many rows, one error rate: Holm's step-down adjustment of the leaderboard's p-values (issue 22.4).

Each verdict stays a per-row test at alpha = 0.05. With a dozen rows and no effect anywhere, about
one false "better" / "worse" is expected by chance; the Holm-adjusted p-value says whether a row
survives a family-wise error rate of 5 % over its family (every row of the same comparison,
e.g. dendrites vs baseline, that the test can decide). Holm (1979) rather than Bonferroni: it
controls the same family-wise rate under any dependence between rows (rows of one task share
their baseline seeds) and is uniformly more powerful. Benjamini-Hochberg would control the false
discovery rate instead, a weaker promise for a table read row by row.

Why the family may leave out rows that cannot decide (fewer informative pairs than a verdict
needs): under the sign-flip null the signs of the differences are independent of their
magnitudes, and which pairs are ties depends on the magnitudes only, so choosing the family by
them leaves every chosen row's p-value valid, and Holm over the chosen rows keeps its rate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order: with ``p_(1) <= ... <= p_(m)``,
    ``adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))``. A row is significant at family-wise level
    alpha exactly when its adjusted p-value is below alpha (the step-down procedure)."""
    p = np.asarray(pvalues, dtype=float)
    m = len(p)
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.maximum.accumulate(scaled)
    out = np.empty(m)
    out[order] = adjusted
    return [float(v) for v in out]


def in_family(comparison: Any) -> bool:
    """A comparison the test can decide: a p-value, not a pipeline check, enough informative pairs."""
    from dendrobench.evidence.stats import NO_PAIRS, PIPELINE_CHECK

    return (comparison.p_value is not None and not comparison.too_few
            and comparison.test_verdict not in (NO_PAIRS, PIPELINE_CHECK))


def adjust_families(groups: Iterable[Any], comparisons: Sequence[tuple[str, str]] | None = None) -> None:
    """Set ``p_holm`` and ``family_size`` on every decidable comparison of ``groups``
    (:class:`dendrobench.evidence.stats.GroupSummary`): one family per comparison kind (dendrites vs
    baseline, dendrites vs wide, compressed vs baseline), over every row that shows it."""
    from dendrobench.evidence.stats import COMPARISONS

    groups = list(groups)
    for key in comparisons or COMPARISONS:
        family = [g.comparisons[key] for g in groups if key in g.comparisons and in_family(g.comparisons[key])]
        for c, adjusted in zip(family, holm([c.p_value for c in family])):
            c.p_holm, c.family_size = adjusted, len(family)
