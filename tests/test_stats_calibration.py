"""The verdict holds its error rate (issue 9 item 1): the label "better" / "worse" is a claim that a
difference this large arises by chance in fewer than 5 % of experiments without a real effect.

Simulated paired error differences go through the same two functions the leaderboard uses
(:func:`stats.sign_flip_pvalue` and :func:`stats.verdict`), thousands of samples per call.
``python tests/test_stats_calibration.py 4000`` prints the figures quoted in docs/statistics.md.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from dendrobench.evidence import stats

SIMS = 300  # per (distribution, n): Monte-Carlo SE of a 5 % rate is 1.3 points per n, 0.29 pooled
NS = range(2, 21)
DISTS = ("normal", "student_t3")


def _called_significant(diffs: np.ndarray) -> np.ndarray:
    """Per row of paired differences, whether the verdict is "better" or "worse"."""
    p = stats.sign_flip_pvalue(diffs)
    means = diffs.mean(axis=1)
    return np.array([stats.verdict(diffs.shape[1], pi, m, "standard") in (stats.BETTER, stats.WORSE)
                     for pi, m in zip(p, means)])


def null_rates(dist: str, sims: int = SIMS, seed: int = 20261123) -> dict[int, float]:
    """Rate of "significant" per n under the null (no effect), one RNG per distribution."""
    rng = np.random.default_rng([seed, DISTS.index(dist)])
    rates = {}
    for n in NS:
        x = rng.normal(size=(sims, n)) if dist == "normal" else rng.standard_t(3, size=(sims, n))
        rates[n] = float(_called_significant(x * 0.01).mean())  # the scale of an error difference is irrelevant
    return rates


def power(sims: int = SIMS, n: int = 10, effect_sd: float = 1.0, seed: int = 7) -> float:
    rng = np.random.default_rng(seed)
    return float(_called_significant(rng.normal(loc=effect_sd, size=(sims, n))).mean())


def old_bootstrap_rate(n: int, sims: int = SIMS, seed: int = 3) -> float:
    """The rule the test replaced: a 95 % percentile-bootstrap interval that excludes 0 (>= 3 pairs)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(sims, n))
    idx = rng.integers(0, n, size=(2000, n))
    boot = x[:, idx].mean(axis=2)  # (sims, 2000) resampled means
    low, high = np.quantile(boot, [0.025, 0.975], axis=1)
    return float(((low > 0) | (high < 0)).mean())


@pytest.mark.parametrize("dist", DISTS)
def test_false_positive_rate_at_most_five_percent(dist: str) -> None:
    rates = null_rates(dist)
    se_one = np.sqrt(0.05 * 0.95 / SIMS)
    for n, rate in rates.items():
        assert rate <= 0.05 + 3 * se_one, f"n={n}: {rate:.3f} significant under the null ({dist})"
        if n < stats.MIN_PAIRS:
            assert rate == 0.0  # no verdict at all below the pairs the test needs
    pooled = np.mean(list(rates.values()))
    assert pooled <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / (SIMS * len(rates))), f"pooled {pooled:.4f} ({dist})"


def test_power_for_one_sd_effect_at_ten_pairs() -> None:
    got = power()
    assert got >= 0.70, f"a 1-SD effect at n=10 was called significant in only {got:.0%}"
    rng = np.random.default_rng(8)  # and in the right direction
    x = rng.normal(loc=1.0, size=(SIMS, 10))
    assert all(stats.verdict(10, pi, m) != stats.WORSE for pi, m in zip(stats.sign_flip_pvalue(x), x.mean(axis=1)))


def test_old_bootstrap_rule_would_fail_this_test() -> None:
    """The calibration test can fail: the rule it replaced is called significant far above 5 % at
    n = 3 under the null, where the sign-flip verdict never is."""
    assert old_bootstrap_rate(3) > 0.15
    x = np.random.default_rng(3).normal(size=(SIMS, 3))
    assert _called_significant(x).mean() == 0.0


if __name__ == "__main__":
    sims = int(sys.argv[1]) if len(sys.argv) > 1 else SIMS
    for dist in DISTS:
        r = null_rates(dist, sims)
        print(f"{dist}: null rate pooled over n=2..20 {np.mean(list(r.values())):.4f}, "
              f"max {max(r.values()):.4f} (n={max(r, key=r.get)}); "
              + ", ".join(f"n={n}: {r[n]:.3f}" for n in (5, 6, 8, 10, 15, 20)))
    print(f"power, 1-SD effect, n=10: {power(sims):.3f}")
    print("old percentile-bootstrap rule under the null: "
          + ", ".join(f"n={n}: {old_bootstrap_rate(n, sims):.3f}" for n in (3, 5, 10)))
