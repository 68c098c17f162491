"""The building blocks of the next verdict rules (issues 21, 22, 24), tested before they are wired
into ``stats`` and the leaderboard: Holm's adjustment and its family-wise rate, tie handling, the
RER of mean errors, and the convergence rule on synthetic learning curves."""

from __future__ import annotations

import numpy as np
import pytest

from dendrobench.evidence import convergence, estimands
from dendrobench.evidence.multiplicity import holm
from dendrobench.evidence.stats import ALPHA, sign_flip_pvalue


def test_holm_matches_the_step_down_definition():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 -> max with 0.06 = 0.06
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([]) == []
    assert holm([0.9, 0.8]) == [1.0, 1.0]


def test_holm_keeps_the_family_wise_rate_on_12_null_rows():
    """Families of 12 null rows, 10 symmetric pairs each, sign-flip p-values: P(any adjusted p <
    alpha) stays at or below alpha (unadjusted, it is about 1 - 0.95**12 = 46 %)."""
    rng = np.random.default_rng(7)
    families, any_adjusted, any_raw = 300, 0, 0
    for _ in range(families):
        ps = [float(sign_flip_pvalue(rng.normal(size=10))) for _ in range(12)]
        any_raw += min(ps) < ALPHA
        any_adjusted += min(holm(ps)) < ALPHA
    assert any_adjusted / families <= ALPHA + 0.02  # binomial sd at 300 families ~ 0.013
    assert any_raw / families > 0.25  # the simulation has power to show why the adjustment exists


def test_ties_carry_no_sign_and_bound_the_attainable_p():
    d = [0.0, 1e-6, -1e-6, 0.02, -0.01, 0.03]
    assert estimands.informative(d, 1e-5) == 3
    assert list(estimands.untied(d, 1e-5)[:3]) == [0.0, 0.0, 0.0]
    assert estimands.min_attainable_p(5, 9_999) == 2 / 32  # 0.0625: 5 informative pairs can never reject
    assert estimands.min_attainable_p(6, 9_999) == 2 / 64
    assert estimands.min_attainable_p(0, 9_999) == 1.0


def test_a_single_near_tie_does_not_change_the_test_once_ties_are_removed():
    rng = np.random.default_rng(3)
    base = np.concatenate([np.zeros(4), rng.normal(0.01, 0.02, size=6)])
    nudged = base.copy()
    nudged[0] = -1e-6
    p0 = sign_flip_pvalue(estimands.untied(base, 1e-5))
    p1 = sign_flip_pvalue(estimands.untied(nudged, 1e-5))
    assert p0 == p1


def test_rer_of_means_shares_the_sign_of_the_mean_difference():
    rng = np.random.default_rng(11)
    for _ in range(200):
        e = rng.uniform(0.05, 0.5, size=10)
        d = rng.normal(0, 0.05, size=10)
        r = estimands.rer_of_means(e, d)
        assert np.sign(r) == np.sign(d.mean())
    point, low, high = estimands.rer_of_means_interval(rng.uniform(0.2, 0.3, 10), rng.normal(0.02, 0.01, 10),
                                                       n_resamples=999)
    assert low <= point <= high


def _record(seed: int, curve: list[float], arm: str = "baseline") -> dict:
    history = [{"epoch": i + 1, "step": 10 * (i + 1), "val": {"roc_auc": v}} for i, v in enumerate(curve)]
    return {"arm": arm, "seed": seed, "status": "ok", "error": 1 - curve[-1], "history": history,
            "test": {"roc_auc": curve[-1]}, "val": {"roc_auc": max(curve)}}


def test_a_still_rising_curve_is_under_trained_and_a_plateau_is_not():
    rng = np.random.default_rng(5)
    epochs = 20
    rising = [_record(s, list(0.6 + 0.3 * (1 - np.exp(-np.arange(epochs) / 30)) + rng.normal(0, 1e-4, epochs)))
              for s in range(10)]
    flat = [_record(s, list(0.8 + rng.normal(0, 0.01, epochs)))
            for s in range(10)]
    up = convergence.assess(rising, "roc_auc", True)
    assert up.status == convergence.UNDER_TRAINED and up.basis == "history"
    assert convergence.shown_verdict(up, "better (p = 0.002)") == convergence.NO_VERDICT
    plateau = convergence.assess(flat, "roc_auc", True)
    assert plateau.status == convergence.NOT_CHECKED
    assert convergence.shown_verdict(plateau, "no significant difference") == "no significant difference"


def test_the_history_test_holds_its_rate_on_plateaus():
    rng = np.random.default_rng(9)
    trials, flagged = 400, 0
    for _ in range(trials):
        rows = [_record(s, list(0.8 + rng.normal(0, 0.01, 15))) for s in range(10)]
        flagged += convergence.assess(rows, "roc_auc", True).under_trained
    assert flagged / trials <= ALPHA + 0.02


def test_poisson_binomial_tail_is_exact():
    assert convergence.poisson_binomial_sf(0, [0.3, 0.5]) == pytest.approx(1.0)
    assert convergence.poisson_binomial_sf(2, [0.3, 0.5]) == pytest.approx(0.15)
    assert convergence.poisson_binomial_sf(3, [0.3, 0.5]) == 0.0
