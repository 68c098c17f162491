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
* **Ties** (issue 24, :mod:`dendrobench.evidence.estimands`): differences within the metric's
  ``tie_tolerance`` (its evaluator's resolution) are set to 0 before the test; only the other,
  *informative* pairs carry a sign, and the 6-pair rule counts them.
* **Headline RER** (``Comparison.rer``): the RER of the mean errors, mean(d) / mean(err_ref), over
  the tested differences, with the test inverted as its 95 % interval: it shares the verdict's sign,
  and excludes 0 exactly when the verdict is "better" or "worse".
* **Intervals** (:class:`Interval`) are Student-t 95 % intervals of a mean over seeds: for the mean
  per-pair RER (``Comparison.rer_per_pair``), for the mean paired difference in the metric's own units
  (``Comparison.diff``) and for each arm's metric (``ArmSummary.test_metric`` ...). They are
  descriptive; the verdict rests on the test alone.
* **Verdict** (:attr:`Comparison.verdict`, precedence in this order): "no pairs"; "pipeline check"
  for smoke budgets (never a verdict); "too few seeds for a verdict: need 6"; "cannot decide: only k
  informative pairs" (fewer than 6 pairs are not ties); "better" / "worse" at ``p < 0.05``
  (direction from the mean tie-zeroed error difference); otherwise "no significant difference".
  A row where most pairs' dendritic model has no dendrites adds "; null arm: k of n selected
  models had dendrites" and is not publishable.
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
* **Null arm.** A dendritic record whose validation-selected model has no dendrites
  (``dendrites.at_selected == 0``, whatever its stored ``null_arm`` flag says) or that added none is
  null (:func:`null_reason`); :attr:`Comparison.null_arm` is true when every ok run of the arm is
  such a run, :attr:`Comparison.null_pairs` counts the null pairs.
* Cost ratios are ratios of the arm means over ok runs (params at inference and forward FLOPs per
  sample of the selected model, training wall-clock, optimizer steps); a ratio with a missing or zero
  denominator is None.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dendrobench.contract import metrics
from dendrobench.evidence.estimands import informative, rer_test_interval, untied  # noqa: F401

# what a record says and what a row is live in their own modules; their names stay importable from
# here, where the leaderboard, the claims and the CLI have always found them
from dendrobench.evidence.fields import (  # noqa: F401
    DENDRITIC_ARMS,
    _canon,
    _mean,
    _num,
    _ratio,
    _recency,
    claim_of,
    dedupe,
    description_of,
    metric_value,
    modality_of,
    null_reason,
    protocol_of,
    record_digest,
    report_split,
    usable,
    versions_of,
)
from dendrobench.evidence.grouping import (  # noqa: F401
    GroupKey,
    _by_seed,
    _flat,
    _pick,
    _Row,
    _row_key,
    arm_settings,
    common_settings,
    engine_settings,
    group_rows,
    labels,
    scale_settings,
)
from dendrobench.evidence.paired import (  # noqa: F401
    CONFIDENCE,
    EMPTY,
    PERM_SEED,
    TIE_TOLERANCE,
    Interval,
    rer,
    sign_flip_pvalue,
    t_interval,
)
from dendrobench.evidence.verdicts import (  # noqa: F401
    ALPHA,
    BETTER,
    CANNOT_DECIDE,
    MIN_PAIRS,
    MIN_SEEDS,
    N_RESAMPLES,
    NO_DIFFERENCE,
    NO_PAIRS,
    NULL_ARM,
    PIPELINE_CHECK,
    TOO_FEW,
    WORSE,
    cannot_decide_verdict,
    min_pairs_for,
    too_few_verdict,
    verdict,
    with_dendrites_text,
)

ARMS = ("baseline", "dendrites", "wide", "compressed")
# (arm, reference): dendrites against the base model and against the capacity control, and the
# narrower dendritic model against the full base model (the "smaller and as good" claim).
COMPARISONS: tuple[tuple[str, str], ...] = (("dendrites", "baseline"), ("dendrites", "wide"),
                                            ("compressed", "baseline"))
PUBLISH_MIN_PAIRS = 10  # OGB's rule: at least 10 seeds
PUBLISH_GRADES = ("standard", "converged", "full")
COST_KEYS = ("params", "flops_per_sample", "wall_s", "steps")

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

    * ``p_value``: two-sided exact sign-flip test of the mean paired error difference, ties (pairs
      within the metric's ``tie_tolerance``) set to 0 (None without pairs); ``informative``: the
      pairs that are not ties, the only ones that carry a sign;
    * ``rer``: the headline RER, the RER of the mean errors mean(d) / mean(err_ref) over the tested
      (tie-zeroed) differences, with the 95 % interval of the test inverted (the RERs it does not
      reject: :func:`estimands.rer_test_interval`, which excludes 0 exactly when the verdict is
      "better" or "worse"); positive when ``arm`` has the lower mean error, always the sign of the
      tested mean; ``rer.n`` pairs behind it;
    * ``rer_per_pair``: :class:`Interval` (Student-t) of the mean per-pair RER
      (err_ref - err_arm) / err_ref, a secondary column (a mean of ratios over-weights seeds with a
      small reference error); ``rer_per_pair.n`` pairs with a defined RER;
    * ``diff``: :class:`Interval` of the mean paired difference of the *test metric* in its own units,
      signed so that positive means ``arm`` is better (metric_arm - metric_ref when higher is better,
      metric_ref - metric_arm when lower is better: same sign as RER);
    * ``p_improvement``: fraction of complete pairs where ``arm`` had the strictly lower error;
    * ``test_verdict``: one of "better", "worse", "no significant difference",
      "cannot decide: only K informative pairs", "too few seeds for a verdict: need N",
      "pipeline check", "no pairs";
    * ``verdict``: ``test_verdict``, followed by "; null arm: K of N selected models had dendrites"
      when most pairs' dendritic model has none (``mostly_null``);
    * ``significant``: the test verdict is "better" or "worse";
    * ``null_arm`` / ``null_runs`` / ``null_message``: whether the dendritic ``arm`` really had
      dendrites (``null_arm``: no ok run's selected model had any, so the comparison is of the base
      model against ``reference``); ``null_pairs``: complete pairs whose dendritic record is null
      (:func:`null_reason`), ``with_dendrites``: "K of N selected models had dendrites" over the pairs.
    """

    arm: str
    reference: str
    grade: str | None = None  # the row's budget name: "smoke" rows get "pipeline check"
    seeds: list[int] = field(default_factory=list)  # seeds with a defined RER, in order
    rers: list[float] = field(default_factory=list)
    pair_seeds: list[int] = field(default_factory=list)  # every complete ok pair, in order
    error_diffs: list[float] = field(default_factory=list)  # err_ref - err_arm per pair, as recorded
    ref_errors: list[float] = field(default_factory=list)  # err_ref per pair (the RER's denominator)
    tie_tolerance: float = 0.0  # |err_ref - err_arm| at most this is a tie (the evaluator's resolution)
    metric_diffs: list[float] = field(default_factory=list)  # per pair, signed like ``diff``
    rer: Interval = field(default_factory=lambda: EMPTY)
    rer_per_pair: Interval = field(default_factory=lambda: EMPTY)
    diff: Interval = field(default_factory=lambda: EMPTY)
    p_value: float | None = None
    pairs: int = 0  # complete ok pairs, including those with an undefined RER
    informative: int = 0  # pairs whose error difference is not a tie
    null_pairs: int = 0  # pairs whose dendritic record is a null arm (dendritic arms only)
    improved: int = 0  # pairs with error(arm) < error(reference)
    undefined: int = 0  # pairs whose reference error is 0
    unpaired: int = 0  # seeds present in either arm without an ok partner
    cost_ratios: dict[str, float | None] = field(default_factory=dict)
    null_runs: int = 0
    null_arm: bool = False
    null_message: str | None = None
    # Holm's adjustment over the family of rows of the same comparison (evidence/multiplicity.py):
    # set by the leaderboard, None where the row is not in a family (smoke, cannot decide)
    p_holm: float | None = None
    family_size: int = 0

    @property
    def p_improvement(self) -> float | None:
        return self.improved / self.pairs if self.pairs else None

    @property
    def test_diffs(self) -> np.ndarray:
        """The differences the test and the headline RER use: ties set to exactly 0."""
        return untied(self.error_diffs, self.tie_tolerance)

    @property
    def test_verdict(self) -> str:
        """What the paired test says, without the null-arm note (see :attr:`verdict`)."""
        d = self.test_diffs
        return verdict(self.pairs, self.p_value, float(d.mean()) if len(d) else 0.0, self.grade,
                       self.informative)

    @property
    def mostly_null(self) -> bool:
        """More than half of the pairs compare a dendritic record without dendrites (issue 24)."""
        return self.pairs > 0 and 2 * self.null_pairs > self.pairs

    @property
    def with_dendrites(self) -> str | None:
        """"K of N selected models had dendrites" over the complete pairs (dendritic arms only)."""
        if self.arm not in DENDRITIC_ARMS or not self.pairs:
            return None
        return with_dendrites_text(self.pairs - self.null_pairs, self.pairs)

    @property
    def null_note(self) -> str:
        """What a mostly null row adds to its verdict ("" otherwise)."""
        if not self.mostly_null or self.test_verdict in (NO_PAIRS, PIPELINE_CHECK):
            return ""
        return f"{NULL_ARM}: {self.with_dendrites}"

    @property
    def verdict(self) -> str:
        note = self.null_note
        return f"{self.test_verdict}; {note}" if note else self.test_verdict

    @property
    def significant(self) -> bool:
        return self.test_verdict in (BETTER, WORSE)

    @property
    def too_few(self) -> bool:
        """Too few pairs, or too few informative ones, for the test ever to reach p < 0.05 (the
        verdict names how many are needed / how many there were)."""
        return self.test_verdict.startswith((TOO_FEW, CANNOT_DECIDE))

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
        """>= 10 complete dendrites/baseline seed pairs at a standard or full budget, dendrites in
        the selected model of at least half of them (a mostly null row is no dendrite result)."""
        c = self.comparison("dendrites", "baseline")
        return (self.grade in PUBLISH_GRADES and c.pairs >= PUBLISH_MIN_PAIRS and not c.null_arm
                and not c.mostly_null)

    def comparison(self, arm: str, reference: str) -> Comparison:
        return self.comparisons.get((arm, reference)) or Comparison(arm, reference, grade=self.grade)


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


def tie_tolerance_of(record: dict[str, Any] | None, metric: str) -> float:
    """The tie tolerance a row uses: the record's ``metric.tie_tolerance`` where a plugin's
    evaluator stored one, else the built-in evaluator's (:func:`metrics.tie_tolerance`)."""
    stored = _num(((record or {}).get("metric") or {}).get("tie_tolerance"))
    return stored if stored is not None and stored >= 0 else metrics.tie_tolerance(metric)


def compare(arm: str, reference: str, by_seed: dict[tuple[str, int], dict[str, Any]],
            arms: dict[str, ArmSummary], metric: str = "", higher_is_better: bool = True,
            grade: str | None = None, tie_tolerance: float | None = None) -> Comparison:
    """Pair ``arm`` with ``reference`` seed by seed, test and summarise (module docstring).
    ``tie_tolerance``: error differences within it are ties (default: the metric's evaluator's)."""
    c = Comparison(arm, reference, grade=grade,
                   tie_tolerance=metrics.tie_tolerance(metric) if tie_tolerance is None else tie_tolerance)
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
        c.ref_errors.append(er)
        c.improved += ea < er
        c.null_pairs += arm in DENDRITIC_ARMS and null_reason(a) is not None
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
    c.rer_per_pair = t_interval(c.rers)
    c.diff = t_interval(c.metric_diffs)
    tested = c.test_diffs
    c.informative = informative(c.error_diffs, c.tie_tolerance)
    c.p_value = sign_flip_pvalue(tested) if c.error_diffs else None
    point, low, high = rer_test_interval(c.ref_errors, tested, sign_flip_pvalue, ALPHA)
    c.rer = Interval(point, low, high, c.pairs if point is not None else 0)
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
    tolerance = tie_tolerance_of(first, metric)
    comparisons = {(a, ref): compare(a, ref, by_seed, arms, metric, hib, key.budget, tolerance)
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
