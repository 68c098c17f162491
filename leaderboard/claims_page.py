"""The claim page (issue 10 item 5): each published claim beside what its procedure really yields.

For every claim in the registry (``baselines/claims/*.yaml``, :mod:`dendrobench.evidence.claims`)
the page sets side by side: the claimed figure | the claim's own procedure re-run over N seeds
(``protocol: published``) | the same model with equal steps (``protocol: matched``, dendrites vs
baseline) | against equal parameters (the matched suite's ``wide`` arm), and says the decomposition
in words. Everything is read from the leaderboard rows whose records carry ``claim: ID``; a row
never mixes the two protocols (stats keys rows by protocol), so each column is one row.

Why the claim's figure is also shown as an RER: claims were stated as an error reduction, a
"relative gain" or an accuracy change; the measured columns are RERs, so the claimed metric values
are converted with the same definition (error = 1 - metric, or the metric itself when lower is
better) and the conversion is printed next to the claim's own words.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from dendrobench.contract.metrics import EVALUATORS
from dendrobench.evidence import stats

from .formatting import fmt_ratio, verdict_text

if TYPE_CHECKING:  # pragma: no cover
    from .model import IndexRow


# The directions of the metrics claims are stated in, including names that have no evaluator ("dice").
HIGHER_IS_BETTER = {"roc_auc": True, "accuracy": True, "dice": True, "mean_dice": True, "perplexity": False}


def higher_is_better(metric: str) -> bool:
    """The metric's direction; other names (a claim's ``eval_loss``) are losses when they say so."""
    if metric in HIGHER_IS_BETTER:
        return HIGHER_IS_BETTER[metric]
    return not any(w in metric.lower() for w in ("loss", "perplexity", "error"))


def claimed_rer(claimed: dict[str, Any]) -> float | None:
    """The claim's own two numbers as an RER: (err_baseline - err_dendritic) / err_baseline, with the
    error the measured rows use where the metric has an evaluator (a perplexity claim becomes an RER
    of log-perplexity, as the wikitext2 rows are), so the claim's mark and the rows share one axis."""
    b, d = stats._num(claimed.get("baseline")), stats._num(claimed.get("dendritic"))
    metric = str(claimed.get("metric") or "")
    if b is not None and d is not None and metric:
        hib = higher_is_better(metric)
        eb, ed = (1 - b, 1 - d) if hib and b <= 1 and d <= 1 else (b, d)
        if metric in EVALUATORS:
            ev = EVALUATORS[metric]()
            eb, ed = ev.error(b), ev.error(d)
        r = stats.rer(eb, ed)
        if r is not None:
            return r
    if claimed.get("quantity") == "rer":
        return stats._num(claimed.get("value"))
    return None


def _pct(v: float | None, digits: int = 1) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v * 100:+.{digits}f} %"


def _rer_text(iv: stats.Interval) -> str:
    if iv.mean is None:
        return "–"
    if iv.low is None or iv.high is None or iv.n < 2:
        return _pct(iv.mean)
    return f"{_pct(iv.mean)} [{iv.low * 100:+.1f}, {iv.high * 100:+.1f}]"


CELL_KEYS = ("rer", "pairs", "verdict", "reached", "reference_metric", "dendritic_metric", "steps", "params",
             "grade", "engine", "link", "metric")
CLAIMED_KEYS = ("statement", "quantity", "value", "metric", "split", "baseline", "dendritic", "params", "seeds", "how")


@dataclass
class Column:
    """One measured column: a comparison of one row, or why there is none."""

    title: str
    row: IndexRow | None = None
    comparison: stats.Comparison | None = None
    reference: str = "baseline"
    missing: str = ""
    cells: dict[str, str] = field(default_factory=lambda: dict.fromkeys(CELL_KEYS, ""))

    @property
    def rer(self) -> float | None:
        return self.comparison.rer.mean if self.comparison is not None else None


def _best(rows: Sequence[IndexRow]) -> IndexRow | None:
    """A claim's protocol may have been run more than once (a smoke check, then 10 seeds): the real
    run with the most pairs wins; smoke rows only when there is nothing else."""
    if not rows:
        return None
    return max(rows, key=lambda r: (not r.smoke, r.group.comparison("dendrites", "baseline").pairs, r.anchor))


def _fill(col: Column, claimed: float | None, metric: str) -> None:

    c, row = col.comparison, col.row
    if c is None or row is None:
        return
    reached = [v for v in c.rers if claimed is not None and v >= claimed - 1e-12]
    col.cells = {
        "rer": _rer_text(c.rer),
        "pairs": str(c.pairs),
        "verdict": verdict_text(c, always_p=True),
        "reached": (f"{len(reached)} of {len(c.rers)}" if claimed is not None and c.rers else "–"),
        # the row's own arm cells: the same metric text, "(val)" marking included, as the index
        "reference_metric": row.cells[col.reference].text,
        "dendritic_metric": row.cells[c.arm].text,
        "steps": fmt_ratio(c.cost_ratios.get("steps")),
        "params": fmt_ratio(c.cost_ratios.get("params")),
        "grade": row.cells["grade"].text,
        "engine": row.key.engine,
        "link": row.href,
        "metric": metric,
    }


def _protocol_text(claim: Any) -> str:
    """The claim's protocol as YAML (sorted keys: the page is rebuilt byte for byte)."""
    data = {"task": claim.task, "data": claim.data, "published": claim.published, "matched": claim.matched,
            "needs": claim.needs}
    return yaml.safe_dump({k: v for k, v in data.items() if v}, sort_keys=True, allow_unicode=True, width=100)


def decomposition(claimed: float | None, cols: Sequence[Column], statement: str) -> str:
    """The sentence the page exists for: "of the claimed X, the published procedure yields ..."."""
    pub, steps, params = cols
    head = f"Of the claimed {_pct(claimed, 1).lstrip('+')}" if claimed is not None else f"Of the claim ({statement})"

    def part(col: Column, words: str) -> str:
        if col.comparison is None:
            return f"{words}: not run yet"

        c = col.comparison
        pairs = f"{c.pairs} seed pair{'s' if c.pairs != 1 else ''}"
        return f"{words} {_pct(col.rer)} ({pairs}, {verdict_text(c, always_p=True)})"

    return (f"{head}, {part(pub, 'the published procedure yields')}; {part(steps, 'with equal steps')}; "
            f"{part(params, 'against equal parameters')}.")


def claim_context(rows: Sequence[IndexRow], registry: dict[str, Any] | None = None,
                  not_run: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """One entry per registered claim, in id order, with its three measured columns, and why it was
    not run where ``not_run`` (claim id -> reason, from ``not-run.yaml``) says."""
    if registry is None:
        from dendrobench.evidence.claims import load_claims

        registry = load_claims()
    out = []
    for cid in sorted(registry):
        claim = registry[cid]
        mine = [r for r in rows if r.group.claim == cid]
        published = _best([r for r in mine if r.group.protocol == "published"])
        matched = _best([r for r in mine if r.group.protocol == "matched"])
        cl = claim.claimed or {}
        metric = str(cl.get("metric") or "")
        target = claimed_rer(cl)
        cols = [Column("as published"), Column("matched steps"), Column("matched parameters", reference="wide")]
        for col, row, ref in ((cols[0], published, "baseline"), (cols[1], matched, "baseline"), (cols[2], matched, "wide")):
            if row is None:
                col.missing = "not run yet"
                continue
            if ref not in row.group.arms or "dendrites" not in row.group.arms:
                col.missing = f"no {ref} arm in these runs"
                continue
            col.row, col.comparison = row, row.group.comparison("dendrites", ref)
            _fill(col, target, metric)
        params = cl.get("params") or {}
        pb, pd = stats._num(params.get("baseline")), stats._num(params.get("dendritic"))
        out.append({
            "id": cid, "anchor": f"claim-{cid}", "title": claim.title, "task": claim.task,
            "source": {"who": "", "path": "", **(claim.source or {})},
            "claimed": {**dict.fromkeys(CLAIMED_KEYS), **cl}, "claimed_rer": _pct(target), "claimed_rer_value": target,
            "converted": target is not None and cl.get("quantity") != "rer",
            "claimed_params": f"×{pd / pb:.2f}" if pb and pd else "–",
            "needs": list(claim.needs), "status": claim.status(), "why": (claim.data or {}).get("why"),
            "runnable": not claim.needs, "protocol": _protocol_text(claim), "notes": claim.notes or "",
            "columns": cols, "run_any": any(c.comparison is not None for c in cols),
            "not_run": (not_run or {}).get(cid),
            "sentence": decomposition(target, cols, str(cl.get("statement", ""))),
            "command": f"dendrobench claim={cid} seeds=10" + (" data.root=DIR" if (claim.data or {}).get("files") else ""),
        })
    return out


def forest_marks(task: str, registry: dict[str, Any] | None = None) -> list[tuple[float, str]]:
    """The registry's claims for ``task`` on the RER axis (converted where the claim was not an RER)."""
    if registry is None:
        from dendrobench.evidence.claims import load_claims

        registry = load_claims()
    marks = []
    for cid in sorted(registry):
        claim = registry[cid]
        if claim.task != task:
            continue
        v = claimed_rer(claim.claimed or {})
        if v is not None:
            how = "" if (claim.claimed or {}).get("quantity") == "rer" else " as RER"
            marks.append((v, f"{cid}: claimed \"{(claim.claimed or {}).get('statement', '')}\"; {_pct(v)}{how}"))
    return marks


def claims_shown(claims: Sequence[dict[str, Any]], rows: Sequence[IndexRow], not_run: dict[str, str] | None) -> list:
    """The reference claims of the tasks this site has rows (or a not-run reason) for: a plugin-only
    results folder gets no table of the built-in tasks' claims."""
    tasks = {r.key.task for r in rows} | set(not_run or {})
    return [c for c in claims if c.get("task") in tasks]


def has_claim_runs(rows: Sequence[IndexRow], not_run: dict[str, str] | None) -> bool:
    """Whether the claims page lists the registered claims: when the site has a claim's runs, a row
    of a task some claim is about, or a reason a claim was not run; not for a plugin-only site."""
    from dendrobench.evidence.claims import load_claims as registry

    claims = registry()
    claim_tasks = {c.task for c in claims.values()}
    return (any(r.key.claim or r.key.task in claim_tasks for r in rows)
            or bool(set(not_run or {}) & set(claims)))
