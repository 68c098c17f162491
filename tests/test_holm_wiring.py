"""Holm's adjustment on the leaderboard (issue 22.4): one family per comparison kind over the rows
that can decide; the per-row verdict stays, and its wording says whether it survives the family."""

from __future__ import annotations

import numpy as np
from recordfactory import paired

from dendrobench.evidence import stats
from dendrobench.evidence.multiplicity import adjust_families
from leaderboard.formatting import verdict_text


def _groups(effects: dict[str, float], smoke: str | None = None) -> list[stats.GroupSummary]:
    recs = []
    for i, (task, shift) in enumerate(effects.items()):
        rng = np.random.default_rng(i)
        base = 0.3 + 0.03 * rng.standard_normal(10)
        arm = base * (1 - shift) + 0.002 * rng.standard_normal(10)
        recs += paired(task, {"baseline": list(base), "dendrites": list(arm)},
                       budget="smoke" if task == smoke else "quick")
    return stats.summarize([r.to_dict() for r in recs])


def test_family_is_every_decidable_row_and_adjusted_p_is_never_smaller() -> None:
    groups = _groups({"a": 0.2, "b": 0.0, "c": 0.0, "d": 0.2}, smoke="d")
    adjust_families(groups)
    key = ("dendrites", "baseline")
    by_task = {g.key.task: g.comparisons[key] for g in groups}
    assert by_task["d"].p_holm is None and by_task["d"].family_size == 0  # smoke: a pipeline check
    for t in "abc":
        c = by_task[t]
        assert c.family_size == 3 and c.p_holm is not None and c.p_holm >= c.p_value
    # the smallest p is multiplied by the family size (Holm's first step)
    assert by_task["a"].p_holm == min(1.0, 3 * by_task["a"].p_value)


def test_verdict_wording_says_whether_a_row_survives_holm() -> None:
    groups = _groups({"a": 0.2, "b": 0.0, "c": 0.0})
    adjust_families(groups)
    a = next(g for g in groups if g.key.task == "a").comparisons[("dendrites", "baseline")]
    assert a.significant
    text = verdict_text(a)
    assert text.startswith("better (p = ") and ", holds after Holm over 3 rows (p = " in text
    a.p_holm = 0.2  # as if a large family had diluted it
    assert ", not significant after Holm over 3 rows (p = 0.200)" in verdict_text(a)
    b = next(g for g in groups if g.key.task == "b").comparisons[("dendrites", "baseline")]
    if not b.significant:
        assert "Holm" not in verdict_text(b)  # only a significant verdict is qualified
