"""The paired evidence of one comparison: the per-pair RER, the Student-t interval of a mean over
seeds, and the exact two-sided sign-flip test of the mean paired error difference (the rules and
their reasons are in :mod:`dendrobench.evidence.stats` and docs/statistics.md). Pure functions of
numbers, so the calibration tests can run them thousands of times without a record in sight.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from dendrobench.evidence.verdicts import N_RESAMPLES

CONFIDENCE = 0.95  # level of every interval
PERM_SEED = 20_260_123  # fixed so that a page rebuilt from the same records is identical
TIE_TOLERANCE = 1e-9  # relative: sign patterns this close to the observed |mean| count as ties


@dataclass
class Interval:
    """A mean over ``n`` seeds (or seed pairs) with its two-sided 95 % Student-t interval
    ``[low, high]`` (mean ± t(0.975, n-1) · sd / √n) and the standard deviation ``sd`` (ddof=1).

    ``low`` / ``high`` / ``sd`` are None below 2 values: one seed says nothing about spread.
    ``half_width`` is the interval's half-width (what a "mean ± x" of the interval shows).
    """

    mean: float | None
    low: float | None
    high: float | None
    n: int
    sd: float | None = None

    @property
    def half_width(self) -> float | None:
        if self.low is None or self.high is None:
            return None
        return (self.high - self.low) / 2


EMPTY = Interval(None, None, None, 0)


def rer(err_reference: float, err_arm: float) -> float | None:
    """(err_reference - err_arm) / err_reference; None when the reference error is 0 (undefined)."""
    if err_reference == 0:
        return None
    return (err_reference - err_arm) / err_reference


def t_interval(values: Iterable[float | None], confidence: float = CONFIDENCE) -> Interval:
    """Mean, Student-t interval of the mean and SD of the finite ``values``."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = len(x)
    if n == 0:
        return Interval(None, None, None, 0)
    mean = float(x.mean())
    if n == 1:
        return Interval(mean, None, None, 1)
    sd = 0.0 if np.all(x == x[0]) else float(x.std(ddof=1))
    half = float(sps.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, sd)


def sign_flip_pvalue(diffs: Any, n_resamples: int = N_RESAMPLES, seed: int = PERM_SEED) -> Any:
    """Two-sided sign-flip permutation p-value of the mean of paired differences along the last axis.

    ``diffs`` is one sequence (returns a float) or a 2-D array, one sample per row (returns an
    array: the calibration test runs thousands at once). Exact when ``2**n <= n_resamples``: all
    ``2**n`` sign patterns, p = k / 2**n. Otherwise ``n_resamples`` random patterns from ``seed``,
    p = (1 + k) / (1 + B). ``k`` counts patterns whose |mean| is at least the observed |mean|, where
    values within a relative 1e-9 count as ties.

    Why not ``scipy.stats.permutation_test`` (which gives the same p-values on continuous data, see
    the tests): metric differences are often exact ties in real arithmetic (an AUC on a finite test
    set is a ratio of integers) that floating-point rounding splits by ~1e-16; scipy's tolerance
    (100 ulp) then counts some ties and not others, and its p-value comes out smaller than the exact
    one (0.375 instead of 98/256 = 0.383 on the credit-default example in docs/statistics.md).
    It also draws random flips one value at a time (1.3 s for 500 pairs; here one matrix product).
    No values: nan.
    """
    x = np.asarray(diffs, dtype=float)
    n = x.shape[-1]
    if n == 0:
        return float("nan") if x.ndim == 1 else np.full(x.shape[:-1], np.nan)
    rows = x.reshape(-1, n)
    if 2**n <= n_resamples:
        codes = np.arange(2**n)[:, None] >> np.arange(n)[None, :]
        signs = 1.0 - 2.0 * (codes & 1)  # every sign pattern, the identity first
        adjust = 0
    else:
        signs = np.random.default_rng(seed).choice(np.array([-1.0, 1.0]), size=(n_resamples, n))
        adjust = 1  # the observed pattern counts once more: a valid p-value from random flips
    observed = np.abs(rows.mean(axis=1))
    out = np.empty(rows.shape[0])
    chunk = max(1, 4_000_000 // len(signs))
    for i in range(0, rows.shape[0], chunk):
        flipped = np.abs(rows[i:i + chunk] @ signs.T) / n
        obs = observed[i:i + chunk, None]
        k = (flipped >= obs * (1 - TIE_TOLERANCE)).sum(axis=1)
        out[i:i + chunk] = (k + adjust) / (len(signs) + adjust)
    p = np.minimum(out, 1.0)
    return float(p[0]) if x.ndim == 1 else p.reshape(x.shape[:-1])
