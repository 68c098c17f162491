"""Statistics against hand-computed cases: RER, t intervals, the sign-flip test, verdicts, rows, failure accounting."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import recordfactory as rf
from scipy import stats as scipy_stats

from dendrobench.evidence import stats


def _group(records) -> stats.GroupSummary:
    groups = stats.summarize(r.to_dict() for r in records)
    assert len(groups) == 1
    return groups[0]


def test_rer_by_hand() -> None:
    assert stats.rer(0.2, 0.1) == pytest.approx(0.5)
    assert stats.rer(0.2, 0.3) == pytest.approx(-0.5)
    assert stats.rer(10.0, 9.0) == pytest.approx(0.1)  # perplexity: the value itself is the error
    assert stats.rer(0.0, 0.0) is None and stats.rer(0.0, 0.1) is None


def test_t_interval_matches_scipy_by_hand() -> None:
    vals = [0.1, -0.1, 0.05, -0.05, 0.02]
    iv = stats.t_interval(vals)
    ci = scipy_stats.ttest_1samp(vals, 0.0).confidence_interval(0.95)
    assert iv.mean == pytest.approx(0.004) and iv.n == 5
    assert (iv.low, iv.high) == pytest.approx((ci.low, ci.high))
    assert iv.sd == pytest.approx(np.std(vals, ddof=1))
    assert iv.half_width == pytest.approx((ci.high - ci.low) / 2)


def test_t_interval_degenerate_cases() -> None:
    assert stats.t_interval([]).mean is None
    one = stats.t_interval([0.3])
    assert (one.mean, one.low, one.high, one.n) == (0.3, None, None, 1)  # one seed: no spread
    same = stats.t_interval([0.2, 0.2, 0.2])
    assert same.low == same.high == pytest.approx(0.2)
    assert stats.t_interval([float("nan"), 0.1]).n == 1


def test_sign_flip_pvalue_by_enumeration() -> None:
    d = [0.03, -0.01, 0.02, 0.04, 0.015, -0.005, 0.01]
    obs = abs(np.mean(d))
    flips = [abs(np.mean(np.multiply(s, d))) for s in itertools.product((1, -1), repeat=len(d))]
    by_hand = np.mean([f >= obs - 1e-12 for f in flips])
    assert stats.sign_flip_pvalue(d) == pytest.approx(by_hand)
    # batched rows give the same p-values as one at a time
    rows = np.array([d, [-x for x in d], [0.0] * 7])
    assert stats.sign_flip_pvalue(rows) == pytest.approx([by_hand, by_hand, 1.0])


def test_sign_flip_agrees_with_scipy_on_continuous_data() -> None:
    rng = np.random.default_rng(11)
    for n in (3, 7, 12):
        d = rng.normal(0.5, 1, size=n)
        ref = scipy_stats.permutation_test((d,), lambda x, axis: x.mean(axis=axis), permutation_type="samples",
                                           vectorized=True, n_resamples=np.inf).pvalue
        assert stats.sign_flip_pvalue(d) == pytest.approx(ref)


def test_ties_split_by_rounding_still_count_as_ties() -> None:
    """AUC differences are exact ties in real arithmetic that floating point splits by ~1e-16."""
    a = [0.2363, 0.2349, 0.2412, 0.2290]
    b = [0.2349, 0.2363, 0.2398, 0.2304]
    d = np.subtract(a, b)  # +0.0014, -0.0014, +0.0014, -0.0014 up to rounding
    assert stats.sign_flip_pvalue(d) == pytest.approx(1.0)
    d6 = np.subtract([0.2363, 0.2349, 0.2412, 0.2290, 0.31, 0.27], [0.2349, 0.2335, 0.2398, 0.2276, 0.3086, 0.2686])
    assert stats.sign_flip_pvalue(d6) == pytest.approx(2 / 64)  # all six +0.0014: the two extreme patterns only


def test_minimum_p_value_sets_the_pairs_needed() -> None:
    assert stats.MIN_PAIRS == 6  # 2 / 2**5 = 0.0625 >= 0.05 > 2 / 2**6
    for n in range(1, 9):
        assert stats.sign_flip_pvalue([0.1] * n) == pytest.approx(min(1.0, 2 / 2**n))


def test_monte_carlo_above_enumeration_is_reproducible() -> None:
    rng = np.random.default_rng(1)
    d = rng.normal(0.3, 1, size=20)  # 2**20 flips > N_RESAMPLES: random flips from the fixed seed
    p1, p2 = stats.sign_flip_pvalue(d), stats.sign_flip_pvalue(d)
    assert p1 == p2 and 1 / (stats.N_RESAMPLES + 1) <= p1 <= 1


def test_clear_positive_at_six_pairs_is_better() -> None:
    g = _group(rf.paired("bbbp", {"baseline": [0.2] * 6, "dendrites": [0.1, 0.1, 0.1, 0.1, 0.12, 0.1]}))
    c = g.comparison("dendrites", "baseline")
    assert c.rers == pytest.approx([0.5, 0.5, 0.5, 0.5, 0.4, 0.5])
    assert c.rer.mean == pytest.approx(2.9 / 6)
    # at 6 pairs the test rejects only when every pair has the same sign, so the inverted test's
    # interval is the range of the per-pair RERs (equal reference errors here)
    assert (c.rer.low, c.rer.high) == pytest.approx((0.4, 0.5), abs=1e-8)
    assert 0.4 < c.rer_per_pair.low < c.rer_per_pair.mean < c.rer_per_pair.high < 0.55
    assert c.p_value == pytest.approx(2 / 64)
    assert c.significant and c.verdict == "better" and not c.too_few
    assert c.p_improvement == 1.0 and c.pairs == 6
    # the effect in roc_auc's own units: positive = dendrites better
    assert c.diff.mean == pytest.approx(np.mean([0.1, 0.1, 0.1, 0.1, 0.08, 0.1]))
    assert c.cost_ratios["params"] == pytest.approx(1.8)
    assert c.cost_ratios["wall_s"] == pytest.approx(2.0)
    assert c.cost_ratios["steps"] == pytest.approx(1.0)


def test_three_pairs_of_the_same_sign_are_not_significant() -> None:
    """Issue 9: the percentile bootstrap called 3 same-sign pairs "better (significant)"."""
    g = _group(rf.paired("bbbp", {"baseline": [0.2] * 3, "dendrites": [0.1, 0.11, 0.12]}))
    c = g.comparison("dendrites", "baseline")
    assert c.p_value == pytest.approx(0.25)
    assert not c.significant and c.verdict == "too few seeds for a verdict: need 6"
    for n in (1, 2, 4, 5):
        c = _group(rf.paired("bbbp", {"baseline": [0.2] * n, "dendrites": [0.1] * n})).comparison("dendrites", "baseline")
        assert c.verdict == "too few seeds for a verdict: need 6" and not c.significant and c.too_few


def test_smoke_run_is_a_pipeline_check() -> None:
    """Issue 9: a 10-step smoke run printed "RER +0.7 % [+0.4, +1.1] -> better (significant)"."""
    errs = [0.300, 0.310, 0.305, 0.295, 0.300, 0.302, 0.298, 0.301, 0.299, 0.303]
    g = _group(rf.paired("bbbp", {"baseline": errs, "dendrites": [e * 0.993 for e in errs]}, budget="smoke"))
    c = g.comparison("dendrites", "baseline")
    assert c.rer.mean == pytest.approx(0.007)
    assert c.p_value < 0.01  # the test alone would say "better"...
    assert c.verdict == "pipeline check" and not c.significant  # ...but smoke never gets a verdict
    assert g.grade == "smoke" and not g.publishable


def test_null_case_is_no_significant_difference() -> None:
    g = _group(rf.paired("bbbp", {"baseline": [0.2] * 8,
                                  "dendrites": [0.18, 0.22, 0.19, 0.21, 0.2, 0.205, 0.195, 0.2]}))
    c = g.comparison("dendrites", "baseline")
    assert c.rers == pytest.approx([0.1, -0.1, 0.05, -0.05, 0, -0.025, 0.025, 0])
    assert c.rer.mean == pytest.approx(0.0, abs=1e-12)
    assert c.rer.low < 0 < c.rer.high and c.p_value > 0.5
    assert not c.significant and c.verdict == "no significant difference"
    assert c.p_improvement == 3 / 8


def test_clear_negative_is_worse_and_diff_sign_follows_the_metric() -> None:
    g = _group(rf.paired("bbbp", {"baseline": [0.1] * 6, "dendrites": [0.2, 0.21, 0.19, 0.2, 0.2, 0.2]}))
    c = g.comparison("dendrites", "baseline")
    assert c.rer.mean == pytest.approx(-1.0)
    assert c.verdict == "worse" and c.significant and c.p_improvement == 0.0
    assert c.diff.mean == pytest.approx(-0.1)  # roc_auc 0.1 lower: negative = dendrites worse
    # lower-is-better metric: perplexity 10 -> 9 is an improvement of +1 in its own units
    g = _group(rf.paired("wikitext2", {"baseline": [10.0] * 6, "dendrites": [9.0] * 6}))
    c = g.comparison("dendrites", "baseline")
    assert c.diff.mean == pytest.approx(1.0) and c.rer.mean == pytest.approx(0.1) and c.verdict == "better"


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
    # the per-pair RER leaves the 0/0 pair out; the RER of the mean errors (0.3 / 0.6) keeps it
    assert c.undefined == 1 and c.pairs == 4 and c.rer_per_pair.n == 3 and c.rer.n == 4
    assert c.rer_per_pair.mean == pytest.approx(0.5) and c.rer.mean == pytest.approx(0.5)
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


# -- one row per comparison (issue 9 item 2) ----------------------------------------------------
def _cfg(**dendrites) -> dict:
    return {"dendrites": {"engine": "gd", **dendrites}, "budget_spec": {"epochs": 5, "lr": 0.01},
            "compressed_width": 0.67, "wide_tolerance": 0.05, "task_version": 1}


def test_engine_parameter_sweep_is_one_row_per_value_against_one_baseline() -> None:
    recs = rf.paired("bbbp", {"baseline": [0.2] * 3}, extra_config=_cfg(max_dendrites=1))
    for m, err in ((1, 0.15), (3, 0.1)):
        recs += rf.paired("bbbp", {"dendrites": [err] * 3}, extra_config=_cfg(max_dendrites=m),
                          finished=f"2026-01-0{m}T00:00:00Z")
    groups = stats.summarize(r.to_dict() for r in recs)
    assert len(groups) == 2
    by_label = {g.label: g for g in groups}
    assert set(by_label) == {"dendrites.max_dendrites=1", "dendrites.max_dendrites=3"}
    assert by_label["dendrites.max_dendrites=3"].comparison("dendrites", "baseline").rer.mean == pytest.approx(0.5)
    assert by_label["dendrites.max_dendrites=1"].comparison("dendrites", "baseline").rer.mean == pytest.approx(0.25)
    assert all(g.arms["baseline"].ok == 3 and g.arms["baseline"].superseded == 0 for g in groups)
    assert len({g.row_id for g in groups}) == 2


def test_budget_overrides_never_pair_with_another_budget_spec() -> None:
    """Issue 9: a compressed run (36 steps) was paired with a baseline from an ``epochs=4`` run."""
    cfg4 = {**_cfg(), "budget_spec": {"epochs": 4, "lr": 0.01}}
    recs = rf.paired("bbbp", {"baseline": [0.2] * 3}, extra_config=cfg4, steps=48)
    recs += rf.paired("bbbp", {"baseline": [0.25] * 3, "compressed": [0.2] * 3}, extra_config=_cfg(), steps=36)
    groups = stats.summarize(r.to_dict() for r in recs)
    assert len(groups) == 2
    g3 = next(g for g in groups if "compressed" in g.arms)
    c = g3.comparison("compressed", "baseline")
    assert c.cost_ratios["steps"] == pytest.approx(1.0) and c.rer.mean == pytest.approx(0.2)
    assert g3.label == "budget.epochs=5" and {g.label for g in groups} == {"budget.epochs=4", "budget.epochs=5"}


def test_compressed_width_splits_rows_but_shares_the_other_arms() -> None:
    recs = rf.paired("bbbp", {"baseline": [0.2] * 3, "dendrites": [0.1] * 3}, extra_config=_cfg())
    recs += rf.paired("bbbp", {"compressed": [0.25] * 3}, extra_config={**_cfg(), "compressed_width": 0.5})
    recs += rf.paired("bbbp", {"compressed": [0.22] * 3}, extra_config={**_cfg(), "compressed_width": 0.67})
    groups = stats.summarize(r.to_dict() for r in recs)
    assert [g.label for g in groups] == ["compressed_width=0.5", "compressed_width=0.67"] or \
        sorted(g.label for g in groups) == ["compressed_width=0.5", "compressed_width=0.67"]
    for g in groups:
        assert g.arms["dendrites"].ok == 3 and g.arms["compressed"].ok == 3
    rers = sorted(g.comparison("compressed", "baseline").rer.mean for g in groups)
    assert rers == pytest.approx([-0.25, -0.1])


def test_versions_stay_in_one_row_and_are_listed() -> None:
    recs = rf.paired("bbbp", {"baseline": [0.2] * 3, "dendrites": [0.1] * 3})
    for r in recs[3:]:
        r.env = {**r.env, "dendrobench": "0.2.0"}
    g = _group(recs)
    assert g.versions["dendrobench"] == ["0.1.0", "0.2.0"] and g.mixed_versions == {"dendrobench": ["0.1.0", "0.2.0"]}
    assert g.comparison("dendrites", "baseline").pairs == 3


def test_byte_identical_duplicates_count_once() -> None:
    recs = [r.to_dict() for r in rf.paired("bbbp", {"baseline": [0.2] * 3, "dendrites": [0.1] * 3})]
    groups = stats.summarize(recs + [dict(r) for r in recs])  # the same folder given twice
    assert len(groups) == 1
    g = groups[0]
    assert g.arms["baseline"].runs == 3 and g.arms["baseline"].superseded == 0 and g.failures == 0


def test_version_1_records_without_protocol_or_claim_are_read_as_matched() -> None:
    recs = [r.to_dict() for r in rf.paired("bbbp", {"baseline": [0.2] * 3, "dendrites": [0.1] * 3})]
    for r in recs:
        r.pop("protocol", None)
        r.pop("claim", None)
    g = stats.summarize(recs)[0]
    assert (g.protocol, g.claim) == ("matched", None)
    published = [dict(r, protocol="published", claim="pai-hackathon-bbbp") for r in recs]
    groups = stats.summarize(recs + published)
    assert len(groups) == 2 and {(g.protocol, g.claim) for g in groups} == {("matched", None),
                                                                           ("published", "pai-hackathon-bbbp")}


# -- grade and null arms (items 3 and 5) --------------------------------------------------------
def test_publishable_needs_ten_pairs_at_standard_or_full() -> None:
    def g(budget: str, n: int) -> stats.GroupSummary:
        return _group(rf.paired("bbbp", {"baseline": [0.2] * n, "dendrites": [0.1] * n}, budget=budget))

    assert g("standard", 10).publishable and g("full", 12).publishable
    assert not g("standard", 9).publishable and not g("quick", 10).publishable and not g("smoke", 20).publishable
    assert g("quick", 10).grade == "quick"


def test_null_dendritic_arm_is_flagged() -> None:
    """Issue 9: ``switch_mode=plateau`` at smoke added 0 dendrites and the table showed "+0.0 %"."""
    recs = rf.paired("bbbp", {"baseline": [0.2] * 6})
    recs += [rf.make_record("bbbp", "dendrites", s, 0.2, cycles=0) for s in range(6)]  # added 0
    g = _group(recs)
    c = g.comparison("dendrites", "baseline")
    assert c.null_arm and c.null_runs == 6 and g.null_arm
    assert c.null_message == "selected model has 0 dendrites: this row compares the baseline with itself"
    # identical errors: every pair ties, and the verdict says the arm had no dendrites (issue 24)
    assert c.verdict == "cannot decide: only 0 informative pairs; null arm: 0 of 6 selected models had dendrites"
    assert c.test_verdict == "cannot decide: only 0 informative pairs" and c.with_dendrites.startswith("0 of 6")
    assert not _group(
        [*recs[:6], *(rf.make_record("bbbp", "dendrites", s, 0.1, cycles=0, budget="standard") for s in range(10)),
         *(rf.make_record("bbbp", "baseline", s, 0.2, budget="standard") for s in range(10))][6:]).publishable
    # a run that added dendrites but selected an earlier checkpoint without them (runner's flag)
    rec = rf.make_record("bbbp", "dendrites", 0, 0.2, cycles=2).to_dict()
    rec["dendrites"].update({"at_selected": 0, "final": 6})
    assert stats.null_reason(rec) == "the selected model has 0 dendrites"
    rec["dendrites"].update({"null_arm": True, "null_reason": "selected model (epoch 1) has 0 dendrites"})
    assert stats.null_reason(rec) == "selected model (epoch 1) has 0 dendrites"
    partial = _group(rf.paired("bbbp", {"baseline": [0.2] * 3, "dendrites": [0.1] * 2})
                     + [rf.make_record("bbbp", "dendrites", 2, 0.2, cycles=0)])
    pc = partial.comparison("dendrites", "baseline")
    assert not pc.null_arm and pc.null_runs == 1 and "1 of 3 dendrites runs" in pc.null_message
