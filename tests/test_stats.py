"""Statistics against hand-computed cases: RER, bootstrap intervals, significance, failure accounting."""

from __future__ import annotations

import numpy as np
import pytest
import recordfactory as rf

from dendrobench import stats


def _group(records) -> stats.GroupSummary:
    groups = stats.summarize(r.to_dict() for r in records)
    assert len(groups) == 1
    return groups[0]


def test_rer_by_hand() -> None:
    assert stats.rer(0.2, 0.1) == pytest.approx(0.5)
    assert stats.rer(0.2, 0.3) == pytest.approx(-0.5)
    assert stats.rer(10.0, 9.0) == pytest.approx(0.1)  # perplexity: the value itself is the error
    assert stats.rer(0.0, 0.0) is None and stats.rer(0.0, 0.1) is None


def test_bootstrap_is_reproducible_and_brackets_the_mean() -> None:
    vals = [0.1, -0.1, 0.05, -0.05, 0.02]
    a, b = stats.bootstrap_ci(vals), stats.bootstrap_ci(vals)
    assert (a.mean, a.low, a.high) == (b.mean, b.low, b.high)
    assert a.mean == pytest.approx(0.004)
    assert min(vals) <= a.low <= a.mean <= a.high <= max(vals)
    # the same percentile bootstrap written out by hand
    rng = np.random.default_rng(stats.BOOT_SEED)
    means = np.asarray(vals)[rng.integers(0, 5, size=(stats.N_BOOT, 5))].mean(axis=1)
    assert (a.low, a.high) == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])))


def test_bootstrap_degenerate_cases() -> None:
    assert stats.bootstrap_ci([]).mean is None
    one = stats.bootstrap_ci([0.3])
    assert (one.mean, one.low, one.high, one.n) == (0.3, 0.3, 0.3, 1)
    same = stats.bootstrap_ci([0.2, 0.2, 0.2])
    assert same.low == same.high == pytest.approx(0.2)
    assert stats.bootstrap_ci([float("nan"), 0.1]).n == 1


def test_clear_positive_is_significant() -> None:
    g = _group(rf.paired("bbbp", {"baseline": [0.2] * 5, "dendrites": [0.1, 0.1, 0.1, 0.1, 0.12]}))
    c = g.comparison("dendrites", "baseline")
    assert c.rers == pytest.approx([0.5, 0.5, 0.5, 0.5, 0.4])
    assert c.rer.mean == pytest.approx(0.48)
    assert 0.4 <= c.rer.low < c.rer.high <= 0.5
    assert c.significant and c.verdict == "better" and not c.anecdotal
    assert c.p_improvement == 1.0 and c.pairs == 5
    assert c.cost_ratios["params"] == pytest.approx(1.8)
    assert c.cost_ratios["wall_s"] == pytest.approx(2.0)
    assert c.cost_ratios["steps"] == pytest.approx(1.0)


def test_null_case_interval_contains_zero() -> None:
    g = _group(rf.paired("bbbp", {"baseline": [0.2] * 4, "dendrites": [0.18, 0.22, 0.19, 0.21]}))
    c = g.comparison("dendrites", "baseline")
    assert c.rers == pytest.approx([0.1, -0.1, 0.05, -0.05])
    assert c.rer.mean == pytest.approx(0.0, abs=1e-12)
    assert c.rer.low < 0 < c.rer.high
    assert not c.significant and c.verdict == "no significant difference"
    assert c.p_improvement == 0.5


def test_clear_negative_is_worse() -> None:
    g = _group(rf.paired("bbbp", {"baseline": [0.1, 0.1, 0.1], "dendrites": [0.2, 0.21, 0.19]}))
    c = g.comparison("dendrites", "baseline")
    assert c.rer.mean == pytest.approx(-1.0)
    assert c.verdict == "worse" and c.significant and c.p_improvement == 0.0


def test_fewer_than_three_seeds_is_anecdotal_even_if_large() -> None:
    g = _group(rf.paired("bbbp", {"baseline": [0.2, 0.2], "dendrites": [0.1, 0.1]}))
    c = g.comparison("dendrites", "baseline")
    assert c.rer.mean == pytest.approx(0.5)
    assert c.anecdotal and not c.significant and c.verdict == "anecdotal"


def test_wide_and_compressed_comparisons() -> None:
    g = _group(rf.paired("bbbp", {"baseline": [0.2] * 3, "dendrites": [0.1] * 3, "wide": [0.125] * 3,
                                  "compressed": [0.25] * 3}))
    assert g.comparison("dendrites", "wide").rer.mean == pytest.approx(0.2)
    cc = g.comparison("compressed", "baseline")
    assert cc.rer.mean == pytest.approx(-0.25)
    assert cc.cost_ratios["params"] == pytest.approx(0.6)
    assert set(g.comparisons) == set(stats.COMPARISONS)


def test_failed_and_diverged_are_counted_not_dropped() -> None:
    recs = rf.paired("bbbp", {"baseline": [0.2] * 4, "dendrites": [0.1] * 3})
    recs.append(rf.make_record("bbbp", "dendrites", 3, None, status="diverged", message="NaN loss"))
    recs.append(rf.make_record("bbbp", "wide", 0, None, status="failed", message="width search failed"))
    g = _group(recs)
    d = g.arms["dendrites"]
    assert (d.runs, d.ok, d.diverged, d.failed) == (4, 3, 1, 0)
    assert d.messages == ["NaN loss"]
    assert g.arms["wide"].failed == 1 and g.failures == 2
    c = g.comparison("dendrites", "baseline")
    assert c.pairs == 3 and c.unpaired == 1 and c.rer.n == 3
    w = g.comparison("dendrites", "wide")
    assert w.pairs == 0 and w.verdict == "no pairs"


def test_zero_baseline_error_is_undefined_but_counted() -> None:
    g = _group(rf.paired("bbbp", {"baseline": [0.0, 0.2, 0.2, 0.2], "dendrites": [0.0, 0.1, 0.1, 0.1]}))
    c = g.comparison("dendrites", "baseline")
    assert c.undefined == 1 and c.pairs == 4 and c.rer.n == 3
    assert c.rer.mean == pytest.approx(0.5)
    assert c.p_improvement == 0.75  # the 0-vs-0 pair is not an improvement


def test_missing_arm_gives_no_comparison() -> None:
    g = _group(rf.paired("bbbp", {"baseline": [0.2] * 3}))
    assert g.comparisons == {}
    c = g.comparison("dendrites", "baseline")
    assert c.rer.mean is None and c.p_improvement is None


def test_grouping_never_mixes_sources_engines_or_budgets() -> None:
    recs = rf.paired("bbbp", {"baseline": [0.2] * 3, "dendrites": [0.1] * 3})
    recs += rf.paired("bbbp", {"baseline": [0.2] * 3, "dendrites": [0.3] * 3}, data_source="online")
    recs += rf.paired("bbbp", {"baseline": [0.2] * 3, "dendrites": [0.3] * 3}, engine="cc")
    recs += rf.paired("bbbp", {"baseline": [0.2] * 3, "dendrites": [0.3] * 3}, budget="smoke")
    groups = stats.summarize(r.to_dict() for r in recs)
    assert len(groups) == 4
    assert sorted(g.comparison("dendrites", "baseline").rer.mean for g in groups) == pytest.approx([-.5, -.5, -.5, .5])


def test_dataset_less_failure_joins_its_group() -> None:
    recs = rf.paired("bbbp", {"baseline": [0.2] * 3, "dendrites": [0.1] * 3})
    recs.append(rf.make_record("bbbp", "wide", 0, None, status="failed", message="data", dataset=None))
    groups = stats.summarize(r.to_dict() for r in recs)
    assert len(groups) == 1 and groups[0].arms["wide"].failed == 1


def test_latest_record_wins_and_duplicates_are_counted() -> None:
    recs = rf.paired("bbbp", {"baseline": [0.2] * 3, "dendrites": [0.1] * 3})
    recs.append(rf.make_record("bbbp", "dendrites", 0, 0.3, finished="2026-02-01T00:00:00Z"))
    g = _group(recs)
    assert g.arms["dendrites"].superseded == 1
    assert g.comparison("dendrites", "baseline").rers[0] == pytest.approx(-0.5)


def test_modality_from_task_info_or_unknown() -> None:
    assert _group(rf.paired("x", {"baseline": [0.1]}, modality="tabular")).modality == "tabular"
    assert _group(rf.paired("x", {"baseline": [0.1]}, modality=None)).modality == "unknown"


def test_ok_run_without_error_counts_as_unscorable() -> None:
    rec = rf.make_record("bbbp", "dendrites", 0, None)  # status ok, but no error recorded
    g = _group([*rf.paired("bbbp", {"baseline": [0.2]}), rec])
    assert g.arms["dendrites"].ok == 0 and g.arms["dendrites"].diverged == 1
