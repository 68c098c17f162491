"""Verdicts that mean what they say (issue 24): ties carry no sign, a row that cannot reject says
"cannot decide", null arms are judged by the selected model, and the headline RER is the RER of
the mean errors, which shares its sign with the verdict and whose interval never contradicts it."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
import recordfactory as rf

from dendrobench.contract import metrics
from dendrobench.evidence import stats

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "leaderboard" / "published" / "records"


def _row(baseline, dendrites, budget: str = "standard", tie_tolerance: float | None = None) -> stats.GroupSummary:
    """One bbbp (ROC-AUC) row of paired records with these errors, dendrites in every selected model."""
    recs = [r.to_dict() for r in rf.paired("bbbp", {"baseline": baseline, "dendrites": dendrites}, budget=budget)]
    for r in recs:
        if r["arm"] == "dendrites":
            r["dendrites"].update({"at_selected": 6, "final": 6, "null_arm": False, "null_reason": None})
        if tie_tolerance is not None:
            r["metric"]["tie_tolerance"] = tie_tolerance
    [g] = stats.summarize(recs)
    return g


def test_a_single_near_tie_does_not_change_a_verdict() -> None:
    """The credit cc case: 5 real differences, all one way, and 5 exact ties. One tie nudged by
    +-1e-6 (the same network selected a little later) must not turn the row into a verdict."""
    base = [0.2, 0.21, 0.22, 0.23, 0.24, 0.25, 0.26, 0.27, 0.28, 0.29]
    worse = [b + 0.01 for b in base[:5]] + base[5:]
    g = _row(base, worse)
    c = g.comparison("dendrites", "baseline")
    assert c.verdict == "cannot decide: only 5 informative pairs" and c.too_few and not c.significant
    for nudge in (1e-6, -1e-6):
        nudged = worse[:5] + [worse[5] + nudge] + worse[6:]
        n = _row(base, nudged).comparison("dendrites", "baseline")
        assert n.verdict == c.verdict and n.p_value == c.p_value and n.informative == 5
        # without the tie rule the same nudge is a full sign: the rule is what keeps the verdict
        raw = _row(base, nudged, tie_tolerance=0.0).comparison("dendrites", "baseline")
        assert raw.informative == 6
        assert raw.verdict == ("worse" if nudge > 0 else "no significant difference")
    # six real differences and four ties: a verdict, and a nudged tie leaves it and its p alone
    better = [b - 0.01 for b in base[:6]] + base[6:]
    v = _row(base, better).comparison("dendrites", "baseline")
    assert v.verdict == "better" and v.p_value == pytest.approx(2 / 64)
    for nudge in (1e-6, -1e-6):
        n = _row(base, better[:6] + [better[6] + nudge] + better[7:]).comparison("dendrites", "baseline")
        assert (n.verdict, n.p_value) == (v.verdict, v.p_value)


def test_tie_aware_verdicts_hold_their_rate_with_0_to_5_tied_pairs_of_10() -> None:
    """Nulls of 10 pairs, 0-5 of them ties (|d| below the ROC-AUC tolerance, either sign), the rest
    symmetric normal or heavy-tailed: the share of "better" / "worse" stays at or below 5 %."""
    tol = metrics.tie_tolerance("roc_auc")
    rng = np.random.default_rng(20261203)
    sims = 2000  # Monte-Carlo SE of a 5 % rate: 0.49 points
    rates = {}
    for dist in ("normal", "student_t3"):
        for tied in range(6):
            real = (rng.normal(size=(sims, 10 - tied)) if dist == "normal" else rng.standard_t(3, size=(sims, 10 - tied)))
            d = np.concatenate([rng.uniform(-tol, tol, size=(sims, tied)), 0.01 * real], axis=1)
            d = rng.permuted(d, axis=1)
            tested = stats.untied(d, tol)
            p = stats.sign_flip_pvalue(tested)
            k = (np.abs(d) > tol).sum(axis=1)
            called = [stats.verdict(10, pi, float(m), "standard", int(ki)) in (stats.BETTER, stats.WORSE)
                      for pi, m, ki in zip(p, tested.mean(axis=1), k)]
            rates[(dist, tied)] = float(np.mean(called))
    assert all(rate <= 0.05 + 2.5 * np.sqrt(0.05 * 0.95 / sims) for rate in rates.values()), rates
    assert rates[("normal", 5)] == rates[("student_t3", 5)] == 0.0  # 5 informative pairs can never reject
    assert rates[("normal", 0)] > 0.02  # the test is not simply silent: it rejects near its level


def test_headline_rer_agrees_in_sign_with_the_verdict_on_random_data() -> None:
    """Random rows (effect, spread, reference errors vary): the RER of the mean errors has the sign
    of the tested mean difference, so of every "better" / "worse" verdict, and its interval excludes
    0 exactly when the verdict is one of them. The mean per-pair RER does not always agree."""
    rng = np.random.default_rng(24)
    verdicts, disagree_per_pair = set(), 0
    for _ in range(150):
        n = int(rng.integers(6, 13))
        base = rng.uniform(0.02, 0.4, size=n)
        effect = rng.normal(0, 0.02)
        dend = np.clip(base - effect * base / base.mean() + rng.normal(0, 0.02, size=n) * rng.uniform(0.2, 2), 1e-4, 1)
        c = _row(list(base), list(dend)).comparison("dendrites", "baseline")
        verdicts.add(c.verdict)
        m = float(c.test_diffs.mean())
        assert np.sign(c.rer.mean) == np.sign(m)
        if c.verdict in (stats.BETTER, stats.WORSE):
            assert (c.rer.mean > 0) == (c.verdict == stats.BETTER)
        assert c.rer.low is not None and c.rer.low <= c.rer.mean <= c.rer.high
        assert (c.rer.low > 0 or c.rer.high < 0) == c.significant
        disagree_per_pair += np.sign(c.rer_per_pair.mean) != np.sign(m)
    assert {stats.BETTER, stats.WORSE, stats.NO_DIFFERENCE} <= verdicts
    assert disagree_per_pair > 0  # the old headline (a mean of ratios) can disagree; the new one cannot


def test_added_then_dropped_is_null_whatever_the_stored_flag_says() -> None:
    rec = rf.make_record("credit-default", "dendrites", 0, 0.2, cycles=1).to_dict()
    rec["dendrites"].update({"added": 3, "at_selected": 0, "final": 0, "null_arm": False, "null_reason": None})
    assert stats.null_reason(rec) == ("added 3 dendrites, then dropped all of them: "
                                      "the selected model is the base model")
    rec["dendrites"].update({"at_selected": 3, "final": 3})
    assert stats.null_reason(rec) is None
    rec["dendrites"].update({"at_selected": None, "final": None})  # an engine that cannot count: trust the flag
    assert stats.null_reason(rec) is None


def test_mostly_null_rows_say_so_and_are_not_publishable() -> None:
    recs = [r.to_dict() for r in rf.paired("bbbp", {"baseline": [0.2 + 0.01 * s for s in range(10)],
                                                   "dendrites": [0.15 + 0.01 * s for s in range(10)]},
                                           budget="standard")]
    dend = [r for r in recs if r["arm"] == "dendrites"]
    for r in dend:
        r["dendrites"].update({"added": 3, "at_selected": 3, "final": 3})
    [g] = stats.summarize(recs)
    c = g.comparison("dendrites", "baseline")
    assert g.publishable and c.with_dendrites == "10 of 10 selected models had dendrites" and c.verdict == "better"
    for r in dend[:6]:
        r["dendrites"].update({"at_selected": 0, "final": 0})
    [g] = stats.summarize(recs)
    c = g.comparison("dendrites", "baseline")
    assert c.null_pairs == 6 and c.mostly_null and not c.null_arm and not g.publishable
    assert c.verdict == "better; null arm: 4 of 10 selected models had dendrites" and c.test_verdict == "better"


@pytest.fixture(scope="module")
def published_rows():
    from dendrobench.running import results

    records = [r for folder in ("tasks", "claims") for r in results.iter_records(PUBLISHED / folder)]
    return stats.summarize(records)


def test_published_credit_claim_equal_steps_row_is_null(published_rows, tmp_path: Path) -> None:
    """All 10 of its dendritic runs added 3 dendrites and dropped them (stored ``null_arm: false``)."""
    credit = [g for g in published_rows if g.claim == "pai-hackathon-credit" and g.protocol == "matched"]
    assert len(credit) == 1
    g = credit[0]
    c = g.comparison("dendrites", "baseline")
    assert c.null_arm and g.null_arm and not g.publishable and c.null_pairs == 10
    assert c.verdict == "cannot decide: only 0 informative pairs; null arm: 0 of 10 selected models had dendrites"
    from dendrobench.leaderboard.build import build_site

    site = build_site([PUBLISHED], tmp_path / "site", warn=lambda m: None)
    rows = {r["row_id"]: r for r in csv.DictReader(io.StringIO((tmp_path / "site" / "leaderboard.csv").read_text()))}
    row = rows[g.row_id]
    assert row["null_arm"] == "True" and row["publishable"] == "False"
    assert row["with_dendrites"] == "0 of 10 selected models had dendrites"
    index = site.index.read_text()
    assert "0 of 10 selected models had dendrites" in index and "symmetric" in index
    # every row with a dendritic arm says how many selected models had dendrites
    assert all(r["with_dendrites"].endswith("selected models had dendrites") for r in rows.values())


def test_published_untestable_rows_read_cannot_decide(published_rows) -> None:
    """The audit's six: credit gd and cc vs baseline, both credit-claim equal-steps comparisons, both
    bbbp-claim rows vs baseline; their smallest attainable p is above 0.05."""
    found = []
    for g in published_rows:
        for (_arm, ref), c in g.comparisons.items():
            if c.test_verdict.startswith(stats.CANNOT_DECIDE):
                found.append((g.key.task, g.key.engine, g.claim, ref, c.informative))
                assert c.test_verdict == stats.cannot_decide_verdict(c.informative) and c.informative < stats.MIN_PAIRS
                assert not g.publishable
            else:
                assert c.informative >= stats.MIN_PAIRS or c.pairs < stats.MIN_PAIRS or c.pairs == 0
    assert sorted(found) == sorted([
        ("bbbp", "perforatedai", "pai-hackathon-bbbp", "baseline", 4),
        ("bbbp", "perforatedai", "pai-hackathon-bbbp", "baseline", 4),
        ("credit-default", "cc", None, "baseline", 5),
        ("credit-default", "gd", None, "baseline", 5),
        ("credit-default", "perforatedai", "pai-hackathon-credit", "baseline", 0),
        ("credit-default", "perforatedai", "pai-hackathon-credit", "wide", 0),
    ])
