"""Statistics for the leaderboard: paired relative error reduction (RER) with bootstrap intervals.

Why paired: seed ``s`` gives every arm the same split, data order and initial base weights
(DESIGN.md "Arms and budgets"), so the honest unit of evidence is one seed *pair*, not two
independent samples. Why a bootstrap over seeds: the number of seeds is small (3-10) and RER is a
ratio, so a normal approximation would be a guess; the percentile bootstrap makes no shape
assumption and, with a fixed RNG seed, gives the same page every time it is built.

Rules, decided here once (MLPerf's lesson: failure accounting belongs to the rules):

* Runs are grouped by :data:`GroupKey` ``(task, dataset, data_source, engine, budget)`` and paired
  by ``seed`` inside a group. A record whose ``dataset`` is null (the run failed before its data
  loaded) joins the group of the same task / source / engine / budget when exactly one such group
  names a dataset, so its failure is counted where it belongs instead of in a phantom row.
* Several records for one (group, arm, seed) - e.g. reruns with changed engine parameters - are
  not averaged: the most recently finished is used and the others are counted as ``superseded``.
* Only ``status == "ok"`` runs with a finite ``error`` enter a pair. ``failed`` / ``diverged`` runs
  are counted per arm and shown; a seed whose partner is missing or not ok is counted as
  ``unpaired`` for that comparison. Nothing is dropped silently.
* Zero reference error: RER is undefined (0/0 or x/0). Such a pair is left out of the RER mean and
  interval and counted as ``undefined``; it still counts in P(improvement), where it can never be an
  improvement (an error cannot go below 0).
* "significant" needs at least :data:`MIN_SEEDS` pairs *and* a 95 % interval that excludes 0; with
  fewer pairs the comparison is "anecdotal" whatever its interval (one pair gives a zero-width one).
* Cost ratios are ratios of the arm means over ok runs (params at inference, forward FLOPs per
  sample, wall-clock seconds, optimizer steps); a ratio with a missing or zero denominator is None.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

ARMS = ("baseline", "dendrites", "wide", "compressed")
# (arm, reference): dendrites against the base model and against the capacity control, and the
# narrower dendritic model against the full base model (the "smaller and as good" claim).
COMPARISONS: tuple[tuple[str, str], ...] = (("dendrites", "baseline"), ("dendrites", "wide"),
                                            ("compressed", "baseline"))
MIN_SEEDS = 3
CONFIDENCE = 0.95
N_BOOT = 10_000
BOOT_SEED = 20_260_123  # fixed so that a page rebuilt from the same records is identical
COST_KEYS = ("params", "flops_per_sample", "wall_s", "steps")


class GroupKey(NamedTuple):
    """What must be equal for two runs to be compared: one leaderboard row."""

    task: str
    dataset: str | None
    data_source: str
    engine: str
    budget: str


@dataclass
class Interval:
    """A mean with its 95 % percentile-bootstrap interval over seeds (``n`` values)."""

    mean: float | None
    low: float | None
    high: float | None
    n: int

    @property
    def half_width(self) -> float | None:
        if self.low is None or self.high is None:
            return None
        return (self.high - self.low) / 2


@dataclass
class ArmSummary:
    """One arm of one group: how many runs, how they ended, and the means of what they measured."""

    arm: str
    runs: int = 0
    ok: int = 0
    failed: int = 0
    diverged: int = 0
    superseded: int = 0
    error: Interval = field(default_factory=lambda: Interval(None, None, None, 0))
    test_metric: Interval = field(default_factory=lambda: Interval(None, None, None, 0))
    val_metric: Interval = field(default_factory=lambda: Interval(None, None, None, 0))
    params: float | None = None
    flops_per_sample: float | None = None
    wall_s: float | None = None
    steps: float | None = None
    messages: list[str] = field(default_factory=list)  # distinct failure messages, for the task page


@dataclass
class Comparison:
    """``arm`` against ``reference`` over seed pairs: RER, its interval, P(improvement), verdict."""

    arm: str
    reference: str
    seeds: list[int] = field(default_factory=list)  # seeds with a defined RER, in order
    rers: list[float] = field(default_factory=list)
    rer: Interval = field(default_factory=lambda: Interval(None, None, None, 0))
    pairs: int = 0  # complete ok pairs, including those with an undefined RER
    improved: int = 0  # pairs with error(arm) < error(reference)
    undefined: int = 0  # pairs whose reference error is 0
    unpaired: int = 0  # seeds present in either arm without an ok partner
    cost_ratios: dict[str, float | None] = field(default_factory=dict)

    @property
    def p_improvement(self) -> float | None:
        return self.improved / self.pairs if self.pairs else None

    @property
    def anecdotal(self) -> bool:
        return 0 < self.rer.n < MIN_SEEDS

    @property
    def significant(self) -> bool:
        r = self.rer
        if r.n < MIN_SEEDS or r.low is None or r.high is None:
            return False
        return r.low > 0 or r.high < 0

    @property
    def verdict(self) -> str:
        """One word a reader can trust: never "better" without an interval that excludes 0."""
        if self.rer.n == 0:
            return "no pairs"
        if self.anecdotal:
            return "anecdotal"
        if not self.significant:
            return "no significant difference"
        return "better" if (self.rer.low or 0) > 0 else "worse"


@dataclass
class GroupSummary:
    """One leaderboard row: a task on one dataset, data source, engine and budget."""

    key: GroupKey
    modality: str
    description: str
    metric: str
    higher_is_better: bool
    arms: dict[str, ArmSummary]
    comparisons: dict[tuple[str, str], Comparison]
    seeds: list[int]
    records: list[dict[str, Any]]  # the records used (latest per arm and seed), for the task page

    @property
    def failures(self) -> int:
        return sum(a.failed + a.diverged for a in self.arms.values())

    def comparison(self, arm: str, reference: str) -> Comparison:
        return self.comparisons.get((arm, reference)) or Comparison(arm, reference)


# -- primitives -------------------------------------------------------------------------------
def rer(err_reference: float, err_arm: float) -> float | None:
    """(err_reference - err_arm) / err_reference; None when the reference error is 0 (undefined)."""
    if err_reference == 0:
        return None
    return (err_reference - err_arm) / err_reference


def bootstrap_ci(values: Sequence[float], confidence: float = CONFIDENCE, n_boot: int = N_BOOT,
                 seed: int = BOOT_SEED) -> Interval:
    """Mean and percentile-bootstrap interval of the mean, resampling ``values`` with replacement.

    One value gives a zero-width interval at itself (callers mark it anecdotal); none gives Nones.
    The resamples depend only on (n, n_boot, seed), so they are drawn once per size as a matrix of
    counts and every interval of that size is one matrix-vector product (a site of 10,000 records
    computes dozens of intervals over hundreds of seeds).
    """
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = len(x)
    if n == 0:
        return Interval(None, None, None, 0)
    mean = float(x.mean())
    if n == 1 or np.all(x == x[0]):
        return Interval(mean, mean, mean, n)
    if n * n_boot <= _MAX_COUNTS:
        means = _resample_counts(n, n_boot, seed) @ x / n
    else:  # very many seeds: gather in chunks instead of holding an n_boot x n matrix
        means = np.concatenate([x[idx].mean(axis=1) for idx in _resample_chunks(n, n_boot, seed)])
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return Interval(mean, float(low), float(high), n)


_MAX_COUNTS = 5_000_000  # 40 MB of float64 counts at most per cached size


def _resample_chunks(n: int, n_boot: int, seed: int) -> Iterable[np.ndarray]:
    """Index matrices of the resamples, ``n_boot`` rows in all, from one seeded generator."""
    rng = np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // n)
    for start in range(0, n_boot, chunk):
        yield rng.integers(0, n, size=(min(n_boot, start + chunk) - start, n))


@lru_cache(maxsize=4)
def _resample_counts(n: int, n_boot: int, seed: int) -> np.ndarray:
    """How often each value appears in each resample (rows sum to n); read-only, shared."""
    counts = np.concatenate([
        np.bincount((idx + (np.arange(len(idx)) * n)[:, None]).ravel(), minlength=len(idx) * n).reshape(len(idx), n)
        for idx in _resample_chunks(n, n_boot, seed)]).astype(float)
    counts.flags.writeable = False
    return counts


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _mean(values: Iterable[Any]) -> float | None:
    vals = [v for v in (_num(x) for x in values) if v is not None]
    return float(np.mean(vals)) if vals else None


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den == 0:
        return None
    return num / den


def usable(record: dict[str, Any]) -> bool:
    """An ok run with a finite error: the only kind that enters a pair."""
    return record.get("status") == "ok" and _num(record.get("error")) is not None


def modality_of(record: dict[str, Any]) -> str:
    """The task's modality as the runner put it into ``config.task_info``; "unknown" otherwise."""
    info = (record.get("config") or {}).get("task_info") or {}
    value = info.get("modality") if isinstance(info, dict) else None
    return str(value) if value else "unknown"


def description_of(record: dict[str, Any]) -> str:
    info = (record.get("config") or {}).get("task_info") or {}
    value = info.get("description") if isinstance(info, dict) else None
    return str(value) if value else ""


def _recency(record: dict[str, Any]) -> tuple[str, str, str]:
    return (str(record.get("finished") or ""), str(record.get("started") or ""), str(record.get("config_hash")))


# -- grouping ---------------------------------------------------------------------------------
def group_key(record: dict[str, Any]) -> GroupKey:
    return GroupKey(str(record["task"]), record.get("dataset"), str(record["data_source"]),
                    str(record["engine"]), str(record["budget"]))


def group_records(records: Iterable[dict[str, Any]]) -> dict[GroupKey, list[dict[str, Any]]]:
    """Records by :class:`GroupKey`; dataset-less records (early failures) join their only sibling."""
    groups: dict[GroupKey, list[dict[str, Any]]] = defaultdict(list)
    for rec in records:
        groups[group_key(rec)].append(rec)
    for key in [k for k in groups if k.dataset is None]:
        siblings = [k for k in groups if k.dataset is not None and k._replace(dataset=None) == key]
        if len(siblings) == 1:
            groups[siblings[0]].extend(groups.pop(key))
    return dict(sorted(groups.items(), key=lambda kv: tuple(str(x) for x in kv[0])))


def _latest(records: list[dict[str, Any]]) -> tuple[dict[tuple[str, int], dict[str, Any]], dict[str, int]]:
    """The most recent record per (arm, seed), and how many were superseded per arm."""
    chosen: dict[tuple[str, int], dict[str, Any]] = {}
    superseded: dict[str, int] = defaultdict(int)
    for rec in records:
        k = (rec["arm"], int(rec["seed"]))
        old = chosen.get(k)
        if old is None:
            chosen[k] = rec
            continue
        superseded[rec["arm"]] += 1
        if _recency(rec) > _recency(old):
            chosen[k] = rec
    return chosen, superseded


# -- summaries --------------------------------------------------------------------------------
def summarize_arm(arm: str, records: Sequence[dict[str, Any]], metric: str, superseded: int = 0) -> ArmSummary:
    s = ArmSummary(arm=arm, runs=len(records), superseded=superseded)
    ok = [r for r in records if usable(r)]
    s.ok = len(ok)
    s.failed = sum(r.get("status") == "failed" for r in records)
    # an "ok" run without a finite error cannot be scored: counted with the diverged, not dropped
    s.diverged = sum(r.get("status") == "diverged" or (r.get("status") == "ok" and not usable(r)) for r in records)
    s.messages = sorted({str(r.get("message")) for r in records if r.get("status") != "ok" and r.get("message")})
    s.error = bootstrap_ci([float(r["error"]) for r in ok])
    s.test_metric = bootstrap_ci([_num((r.get("test") or {}).get(metric)) for r in ok])  # type: ignore[misc]
    s.val_metric = bootstrap_ci([_num((r.get("val") or {}).get(metric)) for r in ok])  # type: ignore[misc]
    s.params = _mean((r.get("params") or {}).get("inference") for r in ok)
    s.flops_per_sample = _mean((r.get("cost") or {}).get("flops_per_sample") for r in ok)
    s.wall_s = _mean((r.get("cost") or {}).get("wall_s") for r in ok)
    s.steps = _mean((r.get("cost") or {}).get("steps") for r in ok)
    return s


def compare(arm: str, reference: str, by_seed: dict[tuple[str, int], dict[str, Any]],
            arms: dict[str, ArmSummary]) -> Comparison:
    """Pair ``arm`` with ``reference`` seed by seed (see the module docstring for the rules)."""
    c = Comparison(arm, reference)
    seeds = sorted({s for (a, s) in by_seed if a in (arm, reference)})
    for seed in seeds:
        a, r = by_seed.get((arm, seed)), by_seed.get((reference, seed))
        if a is None or r is None or not usable(a) or not usable(r):
            c.unpaired += 1
            continue
        c.pairs += 1
        ea, er = float(a["error"]), float(r["error"])
        c.improved += ea < er
        value = rer(er, ea)
        if value is None:
            c.undefined += 1
            continue
        c.seeds.append(seed)
        c.rers.append(value)
    c.rer = bootstrap_ci(c.rers)
    sa, sr = arms.get(arm), arms.get(reference)
    for key in COST_KEYS:
        c.cost_ratios[key] = _ratio(getattr(sa, key, None), getattr(sr, key, None))
    return c


def summarize_group(key: GroupKey, records: Sequence[dict[str, Any]]) -> GroupSummary:
    by_seed, superseded = _latest(list(records))
    used = list(by_seed.values())
    first = next((r for r in used if usable(r)), used[0])
    metric = str(first["metric"]["name"])
    arms = {}
    for arm in ARMS:
        recs = [r for (a, _), r in by_seed.items() if a == arm]
        if recs:
            arms[arm] = summarize_arm(arm, recs, metric, superseded.get(arm, 0))
    comparisons = {(a, ref): compare(a, ref, by_seed, arms) for a, ref in COMPARISONS if a in arms and ref in arms}
    return GroupSummary(
        key=key, modality=modality_of(first), description=description_of(first), metric=metric,
        higher_is_better=bool(first["metric"]["higher_is_better"]), arms=arms, comparisons=comparisons,
        seeds=sorted({s for (_, s) in by_seed}), records=sorted(used, key=lambda r: (int(r["seed"]), ARMS.index(r["arm"])
                                                                                   if r["arm"] in ARMS else 9)),
    )


def summarize(records: Iterable[dict[str, Any]]) -> list[GroupSummary]:
    """Every leaderboard row, sorted by task, dataset, data source, engine, budget."""
    return [summarize_group(k, recs) for k, recs in group_records(records).items()]
