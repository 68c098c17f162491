"""The forest plot's rows (one per comparison row: RER against the baseline and the wide control,
significance, the published claim on the same axis), shared by the index and the task pages."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dendrobench.evidence import stats
from dendrobench.evidence.convergence import NO_VERDICT

from . import claims_page, svg
from .formatting import (
    fmt_p,
    fmt_rer,
    verdict_text,
)
from .model import (
    IndexRow,
    _claim_rer,
    claim_text,
)


def _estimate(kind: str, c: stats.Comparison, under_trained: bool = False) -> svg.Estimate:
    """One marker: filled when significant, except on an under-trained row, whose verdict is withheld."""
    r = c.rer
    verdict = NO_VERDICT if under_trained else verdict_text(c)
    tip = f"dendrites vs {kind}: RER {fmt_rer(r)}, p {fmt_p(c.p_value)}, {c.pairs} pairs -> {verdict}"
    return svg.Estimate(kind, r.mean, r.low, r.high, tip, c.significant and not under_trained)


def forest_rows(rows: Sequence[IndexRow], link: Callable[[IndexRow], str | None]) -> list[svg.ForestRow]:
    out = []
    for row in rows:
        g, k = row.group, row.key
        cb, cw = g.comparison("dendrites", "baseline"), g.comparison("dendrites", "wide")
        # the claims registry's figures (converted to RER where they were not one); else reference.yaml's RERs
        marks = claims_page.forest_marks(k.task) or [
            (v, f"published: {claim_text(c, k.dataset)} (RER {v * 100:+.1f} %)") for c in row.claims
            if c.get("kind") == "claim" and (v := _claim_rer(c)) is not None]
        proto = "" if g.protocol != "published" else row.protocol_note.replace(f" of {g.claim}", "")
        under = row.under_trained
        sub = " · ".join(x for x in (k.engine, row.cells["grade"].text, "under-trained" if under else "", k.data_source,
                                     f"{cb.pairs} pair" + ("" if cb.pairs == 1 else "s"),
                                     proto or ("claim" if g.claim else ""), row.label) if x)
        label = row.title + (" ⚠" if row.warning else "")
        out.append(svg.ForestRow(label, sub, link(row), [_estimate("baseline", cb, under), _estimate("wide", cw, under)],
                                 marks, muted=row.smoke or under))
    return out
