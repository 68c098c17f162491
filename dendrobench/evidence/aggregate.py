"""One answer across tasks (issue 22.3): the aggregates of rliable (Agarwal et al., 2021, "Deep
reinforcement learning at the edge of the statistical precipice") over every task row of one
comparison, with stratified-bootstrap intervals.

rliable itself is not a dependency: 1.2.0 fails on import here (its ``arch`` 7.2 against pandas 3),
so its published formulas are reproduced and tested against hand-computed values:

* **IQM** of per-seed RER: the mean of the middle 50 % of all (task, seed) values pooled,
  ``scipy.stats.trim_mean(x, 0.25)`` (rliable's ``aggregate_iqm``). Robust to the one seed whose
  reference error is tiny, where a plain mean of ratios is dominated by it.
* **Probability of improvement** ``P(arm < reference)`` in error: per task the Mann-Whitney
  statistic over all ``n x m`` run pairs, a tie (within the metric's tie tolerance) counting 1/2,
  then the mean over tasks (rliable's ``probability_of_improvement``; unpaired, as there). 0.5 is
  "no better, no worse".
* **Performance profile** of per-seed RER: for each threshold ``tau`` the fraction of (task, seed)
  values above it, tasks weighted equally (rliable's run-score distribution).
* **Intervals**: percentile intervals of a stratified bootstrap: runs are resampled with replacement
  within each task, never across (rliable's ``StratifiedBootstrap``; for P(improvement) each arm is
  resampled independently, ``StratifiedIndependentBootstrap``). A fixed generator seed makes a site
  rebuilt from the same records identical.

The leaderboard picks which rows enter (real data, one row per task and comparison); this module
only computes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as sps

BOOT_RESAMPLES = 4_000
BOOT_SEED = 20_261_203
CONFIDENCE = 0.95

# task -> (errors of the arm, errors of the reference), one value per seed, paired by position
Scores = Mapping[str, tuple[Sequence[float], Sequence[float]]]


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its stratified-bootstrap percentile interval."""

    value: float
    low: float
    high: float

    def format(self, digits: int = 2) -> str:
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


@dataclass
class Aggregate:
    """The cross-task answer for one comparison (``arm`` against ``reference``)."""

    arm: str
    reference: str
    tasks: list[str]
    runs: int  # (task, seed) pairs pooled
    seeds_per_task: dict[str, int]
    iqm_rer: Estimate
    p_improvement: Estimate
    taus: list[float] = field(default_factory=list)
    profile: list[float] = field(default_factory=list)  # fraction of runs with RER > tau
    profile_low: list[float] = field(default_factory=list)
    profile_high: list[float] = field(default_factory=list)

    def sentence(self, reference_words: str = "an equal-step baseline") -> str:
        counts = sorted(set(self.seeds_per_task.values()))
        per = f" × {counts[0]} seeds" if len(counts) == 1 else f" ({self.runs} seed pairs)"
        return (f"Across {len(self.tasks)} tasks{per}, P({self.arm} beat {reference_words}) = "
                f"{self.p_improvement.format()}; IQM of the per-seed RER = {_pct(self.iqm_rer.value)} "
                f"[{_pct(self.iqm_rer.low)}, {_pct(self.iqm_rer.high)}].")


def _pct(v: float) -> str:
    """A signed percentage; below 0.1 % with two decimals, so that -0.04 % does not read "-0.0 %"."""
    return f"{v:+.1%}" if abs(v) >= 0.001 or v == 0 else f"{v:+.2%}"


def per_seed_rer(errors_arm: Sequence[float], errors_ref: Sequence[float]) -> np.ndarray:
    """``(e_ref - e_arm) / e_ref`` per seed pair; pairs with a zero reference error are left out
    (their RER is undefined, as in :func:`dendrobench.evidence.stats.rer`)."""
    a, r = np.asarray(errors_arm, dtype=float), np.asarray(errors_ref, dtype=float)
    keep = r != 0
    return (r[keep] - a[keep]) / r[keep]


def iqm(values: np.ndarray) -> float:
    """Interquartile mean: ``scipy.stats.trim_mean`` cutting 25 % at each end."""
    return float(sps.trim_mean(np.asarray(values, dtype=float).ravel(), 0.25))


def prob_less(x: Sequence[float], y: Sequence[float], tolerance: float = 0.0) -> float:
    """P(X < Y) over all pairs of one task's runs, ties (|x - y| <= tolerance) counting 1/2."""
    return float(_prob_less_rows(np.asarray(x, dtype=float)[None], np.asarray(y, dtype=float)[None], tolerance)[0])


Tolerance = float | Mapping[str, float]  # one for all tasks, or per task (each metric has its own)


def _tol(tolerance: Tolerance, task: str) -> float:
    return float(tolerance.get(task, 0.0)) if isinstance(tolerance, Mapping) else float(tolerance)


def probability_of_improvement(scores: Scores, tolerance: Tolerance = 0.0) -> float:
    """The mean over tasks of P(arm error < reference error)."""
    return float(np.mean([prob_less(a, r, _tol(tolerance, t)) for t, (a, r) in scores.items()]))


def profile(rers: Mapping[str, np.ndarray], taus: Sequence[float]) -> np.ndarray:
    """Fraction of runs with RER above each tau, each task weighted equally."""
    t = np.asarray(taus, dtype=float)
    return np.mean([np.mean(np.asarray(v)[:, None] > t[None, :], axis=0) for v in rers.values()], axis=0)


def _interval(samples: np.ndarray, point: float) -> Estimate:
    alpha = (1 - CONFIDENCE) / 2
    lo, hi = np.quantile(samples, [alpha, 1 - alpha])
    return Estimate(float(point), float(lo), float(hi))


def stratified_indices(sizes: Mapping[str, int], resamples: int, seed: int) -> dict[str, np.ndarray]:
    """For each task a ``(resamples, n)`` matrix of indices drawn with replacement from its own
    ``n`` runs: the stratified bootstrap never moves a run from one task to another."""
    rng = np.random.default_rng(seed)
    return {t: rng.integers(0, n, size=(resamples, n)) for t, n in sizes.items()}


def _prob_less_rows(x: np.ndarray, y: np.ndarray, tolerance: float) -> np.ndarray:
    """:func:`prob_less` for each row of ``x`` (B, n) against the same row of ``y`` (B, m)."""
    d = y[:, None, :] - x[:, :, None]
    return np.mean(np.where(np.abs(d) <= tolerance, 0.5, (d > 0).astype(float)), axis=(1, 2))


def aggregate(arm: str, reference: str, scores: Scores, tolerance: Tolerance = 0.0,
              taus: Sequence[float] | None = None, resamples: int = BOOT_RESAMPLES) -> Aggregate:
    """IQM of per-seed RER, P(improvement) and the RER profile over ``scores`` (task -> paired errors).

    The bootstrap is vectorised (one index matrix per task): a site of a dozen rows rebuilds in well
    under a second. IQM and profile resample a task's seed *pairs* (its defined RERs); P(improvement)
    resamples each arm's runs on its own, as rliable does."""
    if not scores:
        raise ValueError("aggregate needs at least one task")
    for t, (a, r) in scores.items():
        if len(a) != len(r) or not len(a):
            raise ValueError(f"task {t!r}: the arm and reference errors must be paired by seed and non-empty, "
                             f"got {len(a)} and {len(r)}")
    tasks = sorted(scores)
    arm_err = {t: np.asarray(scores[t][0], dtype=float) for t in tasks}
    ref_err = {t: np.asarray(scores[t][1], dtype=float) for t in tasks}
    rers = {t: per_seed_rer(arm_err[t], ref_err[t]) for t in tasks}
    defined = {t: v for t, v in rers.items() if len(v)}
    if not defined:
        raise ValueError("aggregate needs at least one seed pair with a non-zero reference error")
    taus = list(taus) if taus is not None else [float(x) for x in np.round(np.linspace(-0.2, 0.2, 41), 3)]
    tau = np.asarray(taus, dtype=float)

    idx = stratified_indices({t: len(v) for t, v in defined.items()}, resamples, BOOT_SEED)
    boot_rers = {t: defined[t][idx[t]] for t in defined}  # (B, n_t) each
    boot_iqm = sps.trim_mean(np.concatenate(list(boot_rers.values()), axis=1), 0.25, axis=1)
    boot_prof = np.mean([np.mean(v[:, :, None] > tau[None, None, :], axis=1) for v in boot_rers.values()], axis=0)

    ia = stratified_indices({t: len(arm_err[t]) for t in tasks}, resamples, BOOT_SEED + 1)
    ir = stratified_indices({t: len(ref_err[t]) for t in tasks}, resamples, BOOT_SEED + 2)
    boot_poi = np.mean([_prob_less_rows(arm_err[t][ia[t]], ref_err[t][ir[t]], _tol(tolerance, t)) for t in tasks],
                       axis=0)

    alpha = (1 - CONFIDENCE) / 2
    return Aggregate(
        arm=arm, reference=reference, tasks=tasks, runs=sum(len(arm_err[t]) for t in tasks),
        seeds_per_task={t: len(arm_err[t]) for t in tasks},
        iqm_rer=_interval(boot_iqm, iqm(np.concatenate(list(defined.values())))),
        p_improvement=_interval(boot_poi, probability_of_improvement(scores, tolerance)),
        taus=taus, profile=[float(v) for v in profile(defined, taus)],
        profile_low=[float(v) for v in np.quantile(boot_prof, alpha, axis=0)],
        profile_high=[float(v) for v in np.quantile(boot_prof, 1 - alpha, axis=0)],
    )
