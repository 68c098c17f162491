"""The verdict holds its error rate (issue 9 item 1): the label "better" / "worse" is a claim that a
difference this large arises by chance in fewer than 5 % of experiments without a real effect.

Simulated paired error differences go through the same two functions the leaderboard uses
(:func:`stats.sign_flip_pvalue` and :func:`stats.verdict`), thousands of samples per call.
"""

from __future__ import annotations

import numpy as np
import pytest

from dendrobench import stats

SIMS = 300  # per (distribution, n): Monte-Carlo SE of a 5 % rate is 1.3 points per n, 0.29 pooled
NS = range(2, 21)


def _called_significant(diffs: np.ndarray) -> np.ndarray:
    """Per row of paired differences, whether the verdict is "better" or "worse"."""
    p = stats.sign_flip_pvalue(diffs)
    means = diffs.mean(axis=1)
    return np.array([stats.verdict(diffs.shape[1], pi, m, "standard") in (stats.BETTER, stats.WORSE)
                     for pi, m in zip(p, means)])


@pytest.mark.parametrize("dist", ["normal", "student_t3"])
def test_false_positive_rate_at_most_five_percent(dist: str) -> None:
    rng = np.random.default_rng(20261123)
    rates = {}
    for n in NS:
        x = rng.normal(size=(SIMS, n)) if dist == "normal" else rng.standard_t(3, size=(SIMS, n))
        rates[n] = _called_significant(x * 0.01).mean()  # the scale of an error difference is irrelevant
    se_one = np.sqrt(0.05 * 0.95 / SIMS)
    for n, rate in rates.items():
        assert rate <= 0.05 + 3 * se_one, f"n={n}: {rate:.3f} significant under the null ({dist})"
        if n < stats.MIN_PAIRS:
            assert rate == 0.0  # no verdict at all below the pairs the test needs
    pooled = np.mean(list(rates.values()))
    assert pooled <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / (SIMS * len(rates))), f"pooled {pooled:.4f} ({dist})"


def test_power_for_one_sd_effect_at_ten_pairs() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(loc=1.0, size=(SIMS, 10))
    power = _called_significant(x).mean()
    assert power >= 0.70, f"a 1-SD effect at n=10 was called significant in only {power:.0%}"
    # and in the right direction
    p = stats.sign_flip_pvalue(x)
    assert all(stats.verdict(10, pi, m) != stats.WORSE for pi, m in zip(p, x.mean(axis=1)))


def test_old_bootstrap_rule_would_fail_this_test() -> None:
    """The calibration test can fail: the percentile-bootstrap rule it replaced ("95 % interval
    excludes 0 with >= 3 pairs") is called significant far above 5 % at n = 3 under the null."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(SIMS, 3))
    idx = rng.integers(0, 3, size=(2000, 3))
    boot = x[:, idx].mean(axis=2)  # (SIMS, 2000) resampled means
    low, high = np.quantile(boot, [0.025, 0.975], axis=1)
    assert ((low > 0) | (high < 0)).mean() > 0.15
    assert _called_significant(x).mean() == 0.0
