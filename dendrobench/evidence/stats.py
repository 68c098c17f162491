"""Statistics for the leaderboard: one row per comparison, a paired test whose error rate holds at
small n, intervals in RER and in the metric's own units, and a verdict a reader can cite.

Why paired: seed ``s`` gives every arm the same split, data order and initial base weights
(DESIGN.md "Arms and budgets"), so the unit of evidence is one seed *pair*, not two independent
samples. The full argument, with references, is in ``docs/statistics.md``; the rules in short:

* **Test.** The p-value is a two-sided exact sign-flip permutation test of the mean paired *error
  difference* ``d = error(reference) - error(arm)`` (:func:`sign_flip_pvalue`; it agrees with
  ``scipy.stats.permutation_test`` except on float-split ties, see there). Under the null
  hypothesis that the arm label does not matter within a seed, swapping the labels of a pair flips the sign of ``d`` (it does *not* negate
  the pair's RER), so every sign pattern is equally likely and the test is exact for any symmetric
  distribution, heavy tails included. All ``2**n`` flips are enumerated while that is at most
  :data:`N_RESAMPLES` (n <= 13); above, :data:`N_RESAMPLES` random flips from a fixed seed, with the
  conservative ``(1 + k) / (1 + B)`` p-value. The smallest two-sided p-value of ``n`` pairs is
  ``2 / 2**n``: with fewer than :data:`MIN_PAIRS` (6) pairs no data can reach ``p < 0.05``, and the
  verdict says so instead of pretending.
* **Intervals** (:class:`Interval`) are Student-t 95 % intervals of a mean over seeds: for the mean
  per-pair RER (``Comparison.rer``), for the mean paired difference in the metric's own units
  (``Comparison.diff``) and for each arm's metric (``ArmSummary.test_metric`` ...). They are
  descriptive; the verdict rests on the test alone.
* **Verdict** (:attr:`Comparison.verdict`, precedence in this order): "no pairs"; "pipeline check"
  for smoke budgets (never a verdict); "too few seeds for a verdict: need 6"; "better" / "worse" at
  ``p < 0.05`` (direction from the mean error difference); otherwise "no significant difference".
* **Rows.** Records are grouped by everything that changes a result except arm and seed: task, its
  version and its options (``task_options``), dataset, data source, budget name *and* resolved budget spec, protocol and claim
  (shared by every arm), plus engine and engine parameters (dendrites, wide and compressed arms),
  compressed width (compressed arm) and wide tolerance (wide arm). The baseline does not depend on
  the engine, so one baseline seed pairs with every engine setting of its task: a sweep over
  ``dendrites.max_dendrites`` is one row per value, each against the same baseline seeds. Rows are
  labelled by what differs between rows that would otherwise look alike (:attr:`GroupSummary.label`).
  A claim's published protocol gives its arms unequal budgets by design; its rows are keyed by the
  claim id, not the budget spec. Package versions never split a row; :attr:`GroupSummary.versions`
  lists them. Byte-identical duplicate records (the same folder given twice) count once.
* Several records for one (row, arm, seed) - e.g. a rerun under a newer package - are not averaged:
  a baseline run with the row's own engine setting is preferred, then the most recently finished;
  the others are counted as ``superseded``.
* Only ``status == "ok"`` runs with a finite ``error`` enter a pair. ``failed`` / ``diverged`` runs
  are counted per arm and shown; a seed whose partner is missing or not ok is counted as
  ``unpaired`` for that comparison. Nothing is dropped silently.
* Zero reference error: RER is undefined (0/0 or x/0). Such a pair is left out of the RER mean and
  interval and counted as ``undefined``; it still enters the test (its error difference is defined)
  and P(improvement), where it can never be an improvement (an error cannot go below 0).
* **Grade.** A row's grade is its budget name. Smoke rows get "pipeline check"; a row is
  :attr:`GroupSummary.publishable` only at ``standard`` or ``full`` with at least 10 complete seed
  pairs of dendrites against baseline (OGB's rule) and a dendritic arm that really has dendrites.
* **Null arm.** A dendritic run that added no dendrites, or whose validation-selected model has none,
  is flagged (``record["dendrites"]["null_arm"]``; derived from ``added`` / ``at_selected`` for older
  records); :attr:`Comparison.null_arm` is true when every ok run of the arm is such a run.
* Cost ratios are ratios of the arm means over ok runs (params at inference and forward FLOPs per
  sample of the selected model, training wall-clock, optimizer steps); a ratio with a missing or zero
  denominator is None.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from scipy import stats as sps

ARMS = ("baseline", "dendrites", "wide", "compressed")
DENDRITIC_ARMS = ("dendrites", "compressed")
# (arm, reference): dendrites against the base model and against the capacity control, and the
# narrower dendritic model against the full base model (the "smaller and as good" claim).
COMPARISONS: tuple[tuple[str, str], ...] = (("dendrites", "baseline"), ("dendrites", "wide"),
                                            ("compressed", "baseline"))
ALPHA = 0.05  # two-sided significance level of every verdict
CONFIDENCE = 0.95  # level of every interval
N_RESAMPLES = 9_999  # sign flips: all 2**n when 2**n <= this (n <= 13), else this many random ones
PERM_SEED = 20_260_123  # fixed so that a page rebuilt from the same records is identical
TIE_TOLERANCE = 1e-9  # relative: sign patterns this close to the observed |mean| count as ties
PUBLISH_MIN_PAIRS = 10  # OGB's rule: at least 10 seeds
PUBLISH_GRADES = ("standard", "full")
COST_KEYS = ("params", "flops_per_sample", "wall_s", "steps")

# the verdicts a Comparison can give (TOO_FEW is a prefix: the full text names the pairs needed)
BETTER, WORSE, NO_DIFFERENCE = "better", "worse", "no significant difference"
PIPELINE_CHECK, NO_PAIRS = "pipeline check", "no pairs"
TOO_FEW = "too few seeds for a verdict"


def min_pairs_for(alpha: float = ALPHA) -> int:
    """Fewest pairs whose exact two-sided sign-flip test can reach ``p < alpha`` (min p = 2 / 2**n)."""
    n = 1
    while 2.0 / 2**n >= alpha:
        n += 1
    return n


MIN_PAIRS = min_pairs_for()  # 6 at alpha = 0.05
MIN_SEEDS = MIN_PAIRS  # the name the leaderboard used before the sign-flip test


def too_few_verdict(needed: int = MIN_PAIRS) -> str:
    return f"{TOO_FEW}: need {needed}"


class GroupKey(NamedTuple):
    """What identifies one leaderboard row. The first five fields are what the index shows as
    columns; ``row_id`` (a short hash of every setting, see :func:`row_settings`) tells apart rows
    that share them but differ in a setting (an engine parameter, a budget override ...)."""

    task: str
    dataset: str | None
    data_source: str
    engine: str
    budget: str
    protocol: str = "matched"
    claim: str | None = None
    row_id: str = ""


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


@dataclass
class ArmSummary:
    """One arm of one row: how many runs, how they ended, and the means of what they measured.

    ``params`` / ``flops_per_sample`` are those of the validation-selected model (the one whose test
    metric is reported); ``params_final`` / ``flops_final`` those of the model at the end of
    training, None when no run recorded them. ``null_runs`` counts ok dendritic runs whose selected
    model has no dendrites (see :func:`null_reason`). ``split`` is the split its ``error`` is scored on
    (``test`` unless a claim's published protocol reports validation, ``report_split=val``) and
    ``metric`` the metric on that split: what a row shows beside its RER, so the two never disagree.
    """

    arm: str
    runs: int = 0
    ok: int = 0
    failed: int = 0
    diverged: int = 0
    superseded: int = 0
    error: Interval = field(default_factory=lambda: EMPTY)
    test_metric: Interval = field(default_factory=lambda: EMPTY)
    val_metric: Interval = field(default_factory=lambda: EMPTY)
    split: str = "test"
    params: float | None = None
    flops_per_sample: float | None = None
    wall_s: float | None = None
    steps: float | None = None
    params_final: float | None = None
    flops_final: float | None = None
    dendrites_selected: float | None = None  # mean dendrites in the selected model (dendritic arms)
    null_runs: int = 0
    messages: list[str] = field(default_factory=list)  # distinct failure messages, for the task page

    @property
    def metric(self) -> Interval:
        return self.val_metric if self.split == "val" else self.test_metric


@dataclass
class Comparison:
    """``arm`` against ``reference`` over seed pairs. The fields other helpers rely on:

    * ``p_value``: two-sided exact sign-flip test of the mean paired error difference (None without
      pairs);
    * ``rer``: :class:`Interval` of the mean per-pair RER = (err_ref - err_arm) / err_ref, positive
      when ``arm`` has the lower error; ``rer.n`` pairs with a defined RER;
    * ``diff``: :class:`Interval` of the mean paired difference of the *test metric* in its own units,
      signed so that positive means ``arm`` is better (metric_arm - metric_ref when higher is better,
      metric_ref - metric_arm when lower is better: same sign as RER);
    * ``p_improvement``: fraction of complete pairs where ``arm`` had the strictly lower error;
    * ``verdict``: one of "better", "worse", "no significant difference",
      "too few seeds for a verdict: need N", "pipeline check", "no pairs";
    * ``significant``: the verdict is "better" or "worse";
    * ``null_arm`` / ``null_runs`` / ``null_message``: whether the dendritic ``arm`` really had
      dendrites (``null_arm``: no ok run's selected model had any, so the comparison is of the base
      model against ``reference``).
    """

    arm: str
    reference: str
    grade: str | None = None  # the row's budget name: "smoke" rows get "pipeline check"
    seeds: list[int] = field(default_factory=list)  # seeds with a defined RER, in order
    rers: list[float] = field(default_factory=list)
    pair_seeds: list[int] = field(default_factory=list)  # every complete ok pair, in order
    error_diffs: list[float] = field(default_factory=list)  # err_ref - err_arm per pair (test input)
    metric_diffs: list[float] = field(default_factory=list)  # per pair, signed like ``diff``
    rer: Interval = field(default_factory=lambda: EMPTY)
    diff: Interval = field(default_factory=lambda: EMPTY)
    p_value: float | None = None
    pairs: int = 0  # complete ok pairs, including those with an undefined RER
    improved: int = 0  # pairs with error(arm) < error(reference)
    undefined: int = 0  # pairs whose reference error is 0
    unpaired: int = 0  # seeds present in either arm without an ok partner
    cost_ratios: dict[str, float | None] = field(default_factory=dict)
    null_runs: int = 0
    null_arm: bool = False
    null_message: str | None = None

    @property
    def p_improvement(self) -> float | None:
        return self.improved / self.pairs if self.pairs else None

    @property
    def verdict(self) -> str:
        return verdict(self.pairs, self.p_value, float(np.mean(self.error_diffs)) if self.error_diffs else 0.0,
                       self.grade)

    @property
    def significant(self) -> bool:
        return self.verdict in (BETTER, WORSE)

    @property
    def too_few(self) -> bool:
        """Too few pairs for the test ever to reach p < 0.05 (the verdict names how many are needed)."""
        return self.verdict.startswith(TOO_FEW)

    @property
    def anecdotal(self) -> bool:
        """Older name of :attr:`too_few`, kept for readers of the CSV column of that name."""
        return self.too_few


@dataclass
class GroupSummary:
    """One leaderboard row: one comparison setting of one task. Fields other helpers rely on:

    * ``key`` (:class:`GroupKey`) and ``row_id`` (stable short hash of ``settings``, for anchors);
    * ``settings``: every setting that defines the row, flattened to ``name=value`` keys in Hydra
      override form (``dendrites.max_dendrites``, ``budget.epochs``, ``compressed_width`` ...);
    * ``label``: what differs between this row and the rows of the same task, dataset, data source,
      engine and budget ("dendrites.max_dendrites=3"), "" when nothing does;
    * ``grade``: the budget name ("smoke", "quick", "standard", "full"); ``publishable``;
    * ``versions``: package -> distinct versions among the records used (``mixed_versions`` keeps
      only packages with more than one);
    * ``protocol`` ("matched" or "published") and ``claim`` (claim id or None);
    * ``null_arm`` / ``null_message``: the dendrites arm of this row has no dendrites.
    """

    key: GroupKey
    modality: str
    description: str
    metric: str
    higher_is_better: bool
    arms: dict[str, ArmSummary]
    comparisons: dict[tuple[str, str], Comparison]
    seeds: list[int]
    records: list[dict[str, Any]]  # the records used (one per arm and seed), for the task page
    settings: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    versions: dict[str, list[str]] = field(default_factory=dict)

    @property
    def row_id(self) -> str:
        return self.key.row_id

    @property
    def protocol(self) -> str:
        return self.key.protocol

    @property
    def claim(self) -> str | None:
        return self.key.claim

    @property
    def grade(self) -> str:
        return self.key.budget

    @property
    def split(self) -> str:
        """The split the row's errors, RERs and metric columns are on (see :attr:`ArmSummary.split`)."""
        return "val" if any(a.split == "val" for a in self.arms.values()) else "test"

    @property
    def failures(self) -> int:
        return sum(a.failed + a.diverged for a in self.arms.values())

    @property
    def mixed_versions(self) -> dict[str, list[str]]:
        return {k: v for k, v in self.versions.items() if len(v) > 1}

    @property
    def null_arm(self) -> bool:
        return self.comparison("dendrites", "baseline").null_arm

    @property
    def null_message(self) -> str | None:
        return self.comparison("dendrites", "baseline").null_message

    @property
    def publishable(self) -> bool:
        """>= 10 complete dendrites/baseline seed pairs at a standard or full budget, dendrites present."""
        c = self.comparison("dendrites", "baseline")
        return self.grade in PUBLISH_GRADES and c.pairs >= PUBLISH_MIN_PAIRS and not c.null_arm

    def comparison(self, arm: str, reference: str) -> Comparison:
        return self.comparisons.get((arm, reference)) or Comparison(arm, reference, grade=self.grade)


# -- primitives -------------------------------------------------------------------------------
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


def verdict(n_pairs: int, p_value: float | None, direction: float, grade: str | None = None) -> str:
    """The verdict for ``n_pairs`` complete pairs with test p-value ``p_value``; ``direction`` is
    the mean error difference (positive: the arm has the lower error). See the module docstring."""
    if n_pairs == 0:
        return NO_PAIRS
    if grade == "smoke":
        return PIPELINE_CHECK
    if n_pairs < MIN_PAIRS:
        return too_few_verdict()
    if p_value is not None and math.isfinite(p_value) and p_value < ALPHA and direction != 0:
        return BETTER if direction > 0 else WORSE
    return NO_DIFFERENCE


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


def protocol_of(record: dict[str, Any]) -> str:
    """``record["protocol"]``; version-1 records without it were all run under matched budgets."""
    return str(record.get("protocol") or "matched")


def claim_of(record: dict[str, Any]) -> str | None:
    value = record.get("claim")
    return None if value is None else str(value)


def null_reason(record: dict[str, Any]) -> str | None:
    """Why an ok dendritic run is a null arm (no dendrites where it matters), or None.

    Uses the runner's ``dendrites.null_arm`` flag when present; for older records, ``added == 0``
    ("added no dendrites") or ``at_selected == 0`` ("the selected model has 0 dendrites").
    """
    if record.get("arm") not in DENDRITIC_ARMS or not usable(record):
        return None
    d = record.get("dendrites") or {}
    flag = d.get("null_arm")
    if flag is not None:
        return str(d.get("null_reason") or "no dendrites") if flag else None
    if _num(d.get("added")) == 0:
        return "added no dendrites"
    if _num(d.get("at_selected")) == 0:
        return "the selected model has 0 dendrites"
    return None


def metric_value(record: dict[str, Any], metric: str, split: str = "test") -> float | None:
    return _num((record.get(split) or {}).get(metric))


def report_split(record: dict[str, Any]) -> str:
    """The split a record's ``error`` was scored on: ``test``, or ``val`` where a claim's published
    protocol reported validation scores (as the hackathon entries did)."""
    return "val" if (record.get("config") or {}).get("report_split") == "val" else "test"


def _recency(record: dict[str, Any]) -> tuple[str, str, str]:
    return (str(record.get("finished") or ""), str(record.get("started") or ""), str(record.get("config_hash")))


# -- grouping ---------------------------------------------------------------------------------
def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


def _flat(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(f"{prefix}.{k}" if prefix else str(k), v))
        return out
    if isinstance(value, list):
        value = tuple(value)
    return {prefix: value}


def scale_settings(record: dict[str, Any]) -> dict[str, Any]:
    """What no two runs may differ in to be pooled at all, whatever the protocol: task and its
    version, data, claim and budget name. A claim's summary keeps one such set (a smoke check beside
    the real run is never mixed in); a row adds the rest (:func:`common_settings`)."""
    cfg = record.get("config") or {}
    return {"task": str(record["task"]), "task_version": cfg.get("task_version"),
            "dataset": record.get("dataset"), "data_source": str(record["data_source"]),
            "claim": claim_of(record), "budget": str(record["budget"])}


def common_settings(record: dict[str, Any]) -> dict[str, Any]:
    """Settings that every arm of a comparison shares (flattened; see :class:`GroupSummary`)."""
    cfg = record.get("config") or {}
    scale = scale_settings(record)
    out: dict[str, Any] = {k: scale[k] for k in ("task", "task_version", "dataset", "data_source")}
    out.update(protocol=protocol_of(record), claim=scale["claim"], budget=scale["budget"])
    if out["protocol"] == "published":
        # a claim's published protocol gives its arms unequal budgets, and may give them different
        # models (credit: MLP 128-wide baseline, 64-wide dendritic), on purpose: the claim file and
        # the scale it ran at (smoke | quick | its own) decide them, so those are the row
        return out
    if out["protocol"] == "tuned":  # each arm has its own tuned lr and weight decay (dendrobench/running/tuning.py)
        from dendrobench.running.tuning import row_budget_spec

        out.update(_flat("budget", row_budget_spec(record)))
    else:
        out.update(_flat("budget", cfg.get("budget_spec") or {}))
    # the task's protocol options as the user gave them (the record hash holds the non-default ones)
    out.update(_flat("task_options", cfg.get("task_options") or {}))
    return out


def engine_settings(record: dict[str, Any]) -> dict[str, Any]:
    """The engine and its parameters (what the dendritic arms, and the wide arm through its target
    parameter count, depend on)."""
    dend = (record.get("config") or {}).get("dendrites")
    params = {k: v for k, v in dend.items() if k != "engine"} if isinstance(dend, dict) else {}
    return {"engine": str(record["engine"]), **_flat("dendrites", params)}


def arm_settings(record: dict[str, Any]) -> dict[str, Any]:
    """Settings only one arm depends on."""
    cfg = record.get("config") or {}
    if record.get("arm") == "compressed":
        return {"compressed_width": cfg.get("compressed_width")}
    if record.get("arm") == "wide":
        return {"wide_tolerance": cfg.get("wide_tolerance")}
    return {}


def record_digest(record: dict[str, Any]) -> str:
    """Hash of the whole record: equal for byte-identical copies (the same folder given twice)."""
    return hashlib.sha256(_canon(record).encode()).hexdigest()


def dedupe(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records with exact duplicates dropped (they are one run read twice, not two runs).

    Only records that agree on hash, arm, seed and timestamps are compared in full (serialising
    every record of a 10,000-record site to hash it took seconds)."""
    seen: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    out = []
    for rec in records:
        key = (rec.get("config_hash"), rec.get("arm"), rec.get("seed"), rec.get("started"), rec.get("finished"))
        same = seen[key]
        if any(other == rec for other in same):
            continue
        same.append(rec)
        out.append(rec)
    return out


@dataclass
class _Row:
    common: dict[str, Any]
    engine: dict[str, Any]
    arm_specific: dict[str, dict[str, Any]]  # arm -> its own settings (compressed width, wide tolerance)
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def settings(self) -> dict[str, Any]:
        out = {**self.common, **self.engine}
        for extra in self.arm_specific.values():
            out.update(extra)
        return out


def _budget_names(records: Sequence[dict[str, Any]]) -> str:
    names = sorted({str(r["budget"]) for r in records})
    return "/".join(names) if names else ""


def group_rows(records: Iterable[dict[str, Any]]) -> list[_Row]:
    """Records into rows (see the module docstring). A baseline record joins every row of its
    common settings; a dendrites record every row of its engine setting; a wide or compressed
    record the rows of its own tolerance or width. A record whose ``dataset`` is null (the run failed
    before its data loaded) joins the rows of the same settings when exactly one dataset has rows."""
    from dendrobench.running.tuning import is_trial

    # tuning trials are evidence for a choice, not rows; base_more_training (a claim's baseline with the
    # dendritic arm's extra steps) is summarised by the claim (published_claims.claim_summary), not here
    recs = [r for r in dedupe(records) if not is_trial(r) and r.get("arm") != "base_more_training"]
    by_common: dict[str, list[dict[str, Any]]] = defaultdict(list)
    commons: dict[str, dict[str, Any]] = {}
    for rec in recs:
        c = common_settings(rec)
        k = _canon(c)
        commons[k] = c
        by_common[k].append(rec)
    for k in [k for k, c in commons.items() if c["dataset"] is None]:
        siblings = [k2 for k2, c2 in commons.items() if c2["dataset"] is not None and {**c2, "dataset": None} == commons[k]]
        if len(siblings) == 1:
            by_common[siblings[0]].extend(by_common.pop(k))
            commons.pop(k)
    rows: list[_Row] = []
    for k, members in by_common.items():
        common = commons[k]
        engines: dict[str, dict[str, Any]] = {}
        engine_key: dict[int, str] = {}  # id(record) -> its engine setting, computed once
        for rec in members:
            if rec.get("arm") != "baseline":
                e = engine_settings(rec)
                engine_key[id(rec)] = _canon(e)
                engines[engine_key[id(rec)]] = e
        if not engines:  # baseline-only: one row, whatever engine each run was started with
            names = sorted({str(r["engine"]) for r in members})
            rows.append(_Row(common, {"engine": ",".join(names)}, {}, list(members)))
            continue
        for ek, eng in engines.items():
            mine = [r for r in members if r.get("arm") == "baseline" or engine_key[id(r)] == ek]
            variants: dict[str, list[dict[str, Any]]] = {}  # arm -> distinct own settings
            for arm in ("compressed", "wide"):
                seen = {_canon(arm_settings(r)): arm_settings(r) for r in mine if r.get("arm") == arm}
                variants[arm] = list(seen.values()) or [{}]
            for cw in variants["compressed"]:
                for wt in variants["wide"]:
                    own = {"compressed": cw, "wide": wt}
                    chosen = [r for r in mine if r.get("arm") not in own or not own[r["arm"]]
                              or arm_settings(r) == own[r["arm"]]]
                    rows.append(_Row(common, eng, {a: s for a, s in own.items() if s}, chosen))
    return rows


def _row_key(row: _Row) -> GroupKey:
    c = row.common
    digest = hashlib.sha256(_canon(row.settings).encode()).hexdigest()[:10]
    budget = c.get("budget") or _budget_names(row.records)
    return GroupKey(c["task"], c["dataset"], c["data_source"], str(row.engine["engine"]), budget,
                    c["protocol"], c["claim"], digest)


def _fmt_setting(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, tuple):
        return "[" + ",".join(_fmt_setting(v) for v in value) + "]"
    return str(value)


def labels(keys: Sequence[GroupKey], settings: Sequence[dict[str, Any]]) -> list[str]:
    """For each row, ``name=value`` of the settings in which it differs from rows with the same
    task, dataset, data source, engine and budget (what the index shows as columns)."""
    out = [""] * len(keys)
    peers: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        peers[tuple(k[:5])].append(i)
    for idx in peers.values():
        if len(idx) < 2:
            continue
        names = sorted({n for i in idx for n in settings[i]})
        # a setting only some rows have (compressed_width without a compressed arm) is not a difference
        differ = [n for n in names if len({_canon(settings[i][n]) for i in idx if n in settings[i]}) > 1]
        for i in idx:
            out[i] = ", ".join(f"{n}={_fmt_setting(settings[i].get(n))}" for n in differ if n in settings[i])
    return out


def _pick(candidates: list[dict[str, Any]], row_engine: dict[str, Any]) -> dict[str, Any]:
    """One record of several for one (row, arm, seed): the row's own engine setting first, then latest."""
    def rank(rec: dict[str, Any]) -> tuple[bool, tuple[str, str, str]]:
        return (engine_settings(rec) == row_engine, _recency(rec))

    return max(candidates, key=rank)


def _by_seed(records: list[dict[str, Any]], row_engine: dict[str, Any]
             ) -> tuple[dict[tuple[str, int], dict[str, Any]], dict[str, int]]:
    """One record per (arm, seed) (see :func:`_pick`), and how many were superseded per arm."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for rec in records:
        groups[(rec["arm"], int(rec["seed"]))].append(rec)
    superseded: dict[str, int] = defaultdict(int)
    chosen = {}
    for k, recs in groups.items():
        chosen[k] = recs[0] if len(recs) == 1 else _pick(recs, row_engine)
        superseded[k[0]] += len(recs) - 1
    return chosen, superseded


def versions_of(records: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
    """package -> distinct versions (dendrobench, python, torch and the packages the runner lists)."""
    found: dict[str, set[str]] = defaultdict(set)
    for rec in records:
        env = rec.get("env") or {}
        for name in ("dendrobench", "python", "torch"):
            if env.get(name):
                found[name].add(str(env[name]))
        for name, v in (env.get("packages") or {}).items():
            if str(name) not in ("dendrobench", "python", "torch"):  # env["torch"] has the build tag too
                found[str(name)].add(str(v))
    return {k: sorted(v) for k, v in sorted(found.items())}


# -- summaries --------------------------------------------------------------------------------
def summarize_arm(arm: str, records: Sequence[dict[str, Any]], metric: str, superseded: int = 0) -> ArmSummary:
    s = ArmSummary(arm=arm, runs=len(records), superseded=superseded)
    ok = [r for r in records if usable(r)]
    s.ok = len(ok)
    s.failed = sum(r.get("status") == "failed" for r in records)
    # an "ok" run without a finite error cannot be scored: counted with the diverged, not dropped
    s.diverged = sum(r.get("status") == "diverged" or (r.get("status") == "ok" and not usable(r)) for r in records)
    s.messages = sorted({str(r.get("message")) for r in records if r.get("status") != "ok" and r.get("message")})
    s.error = t_interval(float(r["error"]) for r in ok)
    s.test_metric = t_interval(metric_value(r, metric) for r in ok)
    s.val_metric = t_interval(metric_value(r, metric, "val") for r in ok)
    splits = {report_split(r) for r in ok}
    s.split = splits.pop() if len(splits) == 1 else "test"
    s.params = _mean((r.get("params") or {}).get("inference") for r in ok)
    s.flops_per_sample = _mean((r.get("cost") or {}).get("flops_per_sample") for r in ok)
    s.wall_s = _mean((r.get("cost") or {}).get("wall_s") for r in ok)
    s.steps = _mean((r.get("cost") or {}).get("steps") for r in ok)
    s.params_final = _mean((r.get("params") or {}).get("final_inference") for r in ok)
    s.flops_final = _mean((r.get("cost") or {}).get("flops_per_sample_final") for r in ok)
    if arm in DENDRITIC_ARMS:
        s.dendrites_selected = _mean((r.get("dendrites") or {}).get("at_selected") for r in ok)
        s.null_runs = sum(null_reason(r) is not None for r in ok)
    return s


def null_message(arm: str, reference: str, null_runs: int, ok: int) -> str | None:
    """What the leaderboard says about a comparison whose dendritic arm lacks dendrites."""
    if not null_runs:
        return None
    if null_runs < ok:
        return f"{null_runs} of {ok} {arm} runs selected a model with 0 dendrites"
    base = "the baseline with itself" if (arm, reference) == ("dendrites", "baseline") else (
        f"the base model (width as {arm}) with {reference}")
    return f"selected model has 0 dendrites: this row compares {base}"


def compare(arm: str, reference: str, by_seed: dict[tuple[str, int], dict[str, Any]],
            arms: dict[str, ArmSummary], metric: str = "", higher_is_better: bool = True,
            grade: str | None = None) -> Comparison:
    """Pair ``arm`` with ``reference`` seed by seed, test and summarise (module docstring)."""
    c = Comparison(arm, reference, grade=grade)
    seeds = sorted({s for (a, s) in by_seed if a in (arm, reference)})
    sign = 1.0 if higher_is_better else -1.0
    for seed in seeds:
        a, r = by_seed.get((arm, seed)), by_seed.get((reference, seed))
        if a is None or r is None or not usable(a) or not usable(r):
            c.unpaired += 1
            continue
        c.pairs += 1
        ea, er = float(a["error"]), float(r["error"])
        c.pair_seeds.append(seed)
        c.error_diffs.append(er - ea)
        c.improved += ea < er
        # the metric difference on the split each error was scored on, so it agrees with the RER
        ma, mr = metric_value(a, metric, report_split(a)), metric_value(r, metric, report_split(r))
        if ma is not None and mr is not None:
            c.metric_diffs.append(sign * (ma - mr))
        value = rer(er, ea)
        if value is None:
            c.undefined += 1
            continue
        c.seeds.append(seed)
        c.rers.append(value)
    c.rer = t_interval(c.rers)
    c.diff = t_interval(c.metric_diffs)
    c.p_value = sign_flip_pvalue(c.error_diffs) if c.error_diffs else None
    sa, sr = arms.get(arm), arms.get(reference)
    for key in COST_KEYS:
        c.cost_ratios[key] = _ratio(getattr(sa, key, None), getattr(sr, key, None))
    if sa is not None and arm in DENDRITIC_ARMS:
        c.null_runs = sa.null_runs
        c.null_arm = sa.ok > 0 and sa.null_runs == sa.ok
        c.null_message = null_message(arm, reference, sa.null_runs, sa.ok)
    return c


def summarize_group(key: GroupKey, records: Sequence[dict[str, Any]],
                    row_engine: dict[str, Any] | None = None) -> GroupSummary:
    """One row from its records (several per arm and seed allowed: see :func:`_pick`)."""
    by_seed, superseded = _by_seed(list(records), row_engine or {})
    used = list(by_seed.values())
    first = next((r for r in used if usable(r)), used[0])
    metric = str(first["metric"]["name"])
    hib = bool(first["metric"]["higher_is_better"])
    arms = {}
    for arm in ARMS:
        recs = [r for (a, _), r in by_seed.items() if a == arm]
        if recs:
            arms[arm] = summarize_arm(arm, recs, metric, superseded.get(arm, 0))
    comparisons = {(a, ref): compare(a, ref, by_seed, arms, metric, hib, key.budget)
                   for a, ref in COMPARISONS if a in arms and ref in arms}
    return GroupSummary(
        key=key, modality=modality_of(first), description=description_of(first), metric=metric,
        higher_is_better=hib, arms=arms, comparisons=comparisons,
        seeds=sorted({s for (_, s) in by_seed}),
        records=sorted(used, key=lambda r: (int(r["seed"]), ARMS.index(r["arm"]) if r["arm"] in ARMS else 9)),
        versions=versions_of(used),
    )


def group_records(records: Iterable[dict[str, Any]]) -> dict[GroupKey, list[dict[str, Any]]]:
    """Records by row key (sorted); a baseline record may appear in several rows."""
    rows = group_rows(records)
    return {k: r.records for k, r in sorted(((_row_key(r), r) for r in rows),
                                            key=lambda kv: tuple(str(x) for x in kv[0]))}


def summarize(records: Iterable[dict[str, Any]]) -> list[GroupSummary]:
    """Every leaderboard row, sorted by task, dataset, data source, engine, budget, protocol,
    claim, row id; each row's ``label`` says what sets it apart from its look-alikes."""
    rows = sorted(((_row_key(r), r) for r in group_rows(records)), key=lambda kv: tuple(str(x) for x in kv[0]))
    out = []
    for key, row in rows:
        g = summarize_group(key, row.records, row.engine)
        g.settings = row.settings
        out.append(g)
    for g, text in zip(out, labels([g.key for g in out], [g.settings for g in out])):
        g.label = text
    return out
