"""Hand-written SVG charts for the task pages.

Why not matplotlib: a page must open from ``file://`` with nothing fetched, build 10,000 records in
seconds, and render identically everywhere; a few hundred lines of SVG text do that with no font
files, no backend and no global state. Every piece of text placed in a chart goes through
:func:`html.escape`, so a seed label or arm name from a record can never become markup.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from markupsafe import Markup

# Okabe-Ito colours: distinguishable with the common forms of colour blindness.
ARM_COLOURS = {"baseline": "#4d4d4d", "dendrites": "#0072b2", "wide": "#e69f00", "compressed": "#009e73"}
CYCLE_COLOUR = "#d55e00"
W, H = 640, 320
PAD_L, PAD_R, PAD_T, PAD_B = 64, 16, 16, 44


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def colour(arm: str) -> str:
    return ARM_COLOURS.get(arm, "#cc79a7")


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (the usual 1-2-5 steps)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    ticks, t = [], start
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    return ticks


def fmt_tick(v: float) -> str:
    a = abs(v)
    if a >= 1e9:
        return f"{v / 1e9:g}G"
    if a >= 1e6:
        return f"{v / 1e6:g}M"
    if a >= 1e3:
        return f"{v / 1e3:g}k"
    return f"{v:.4g}"


@dataclass
class Axis:
    """A linear or log10 axis mapping data values onto a pixel range."""

    lo: float
    hi: float
    px0: float
    px1: float
    log: bool = False

    def __post_init__(self) -> None:
        if self.log:
            self.lo, self.hi = math.log10(self.lo), math.log10(self.hi)
        if self.hi <= self.lo:  # one value: give it some room
            pad = abs(self.lo) * 0.05 or 1.0
            self.lo, self.hi = self.lo - pad, self.hi + pad

    def __call__(self, v: float) -> float:
        x = math.log10(v) if self.log else v
        return self.px0 + (x - self.lo) / (self.hi - self.lo) * (self.px1 - self.px0)

    def ticks(self) -> list[float]:
        if self.log:
            return [10.0 ** k for k in range(math.ceil(self.lo - 1e-9), math.floor(self.hi + 1e-9) + 1)] or [
                10 ** self.lo]
        return [t for t in nice_ticks(self.lo, self.hi) if self.lo - 1e-12 <= t <= self.hi + 1e-12]


def _x_grid(x: Axis, top: float, bottom: float, label: Callable[[float], str]) -> list[str]:
    """A vertical grid line and its tick label per x tick: shared by the plots and the forest."""
    out = []
    for t in x.ticks():
        px = x(t)
        out.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{top}" y2="{bottom}" stroke="#eef0f3"/>')
        out.append(f'<text x="{px:.1f}" y="{bottom + 15}" text-anchor="middle" class="tick">{_e(label(t))}</text>')
    return out


def _frame(title: str, xlabel: str, ylabel: str, x: Axis, y: Axis) -> list[str]:
    out = [f'<rect x="{PAD_L}" y="{PAD_T}" width="{W - PAD_L - PAD_R}" height="{H - PAD_T - PAD_B}" '
           f'fill="#fff" stroke="#c8ccd2"/>']
    out += _x_grid(x, PAD_T, H - PAD_B, fmt_tick)
    for t in y.ticks():
        py = y(t)
        out.append(f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{py:.1f}" y2="{py:.1f}" stroke="#eef0f3"/>')
        out.append(f'<text x="{PAD_L - 6}" y="{py + 4:.1f}" text-anchor="end" class="tick">{_e(fmt_tick(t))}</text>')
    out.append(f'<text x="{(PAD_L + W - PAD_R) / 2}" y="{H - 8}" text-anchor="middle" class="label">{_e(xlabel)}</text>')
    out.append(f'<text transform="translate(14 {(PAD_T + H - PAD_B) / 2}) rotate(-90)" text-anchor="middle" '
               f'class="label">{_e(ylabel)}</text>')
    return out


def _svg(title: str, body: list[str], legend: list[tuple[str, str, str]]) -> Markup:
    """Wrap chart parts in an accessible, self-contained <svg> with a legend row."""
    items, lx = [], PAD_L + 8
    for label, col, kind in legend:
        if kind == "cycle":
            items.append(f'<path d="M{lx} {PAD_T + 16} l5 -9 l5 9 z" fill="{CYCLE_COLOUR}"/>')
        else:
            items.append(f'<rect x="{lx}" y="{PAD_T + 6}" width="12" height="10" rx="2" fill="{col}"/>')
        items.append(f'<text x="{lx + 16}" y="{PAD_T + 15}" class="legend">{_e(label)}</text>')
        lx += 26 + 7 * len(label)
    bg = (f'<rect x="{PAD_L + 2}" y="{PAD_T + 2}" width="{max(0, lx - PAD_L - 6)}" height="18" rx="3" '
          f'fill="#fff" fill-opacity="0.85"/>') if legend else ""
    return Markup(
        f'<svg class="chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" '
        f'aria-label="{_e(title)}" xmlns="http://www.w3.org/2000/svg"><title>{_e(title)}</title>'
        + "".join(body) + bg + "".join(items) + "</svg>")


@dataclass
class Series:
    """One line: an arm's seed (thin) or the arm's mean (thick), with dendrite-cycle points."""

    arm: str
    label: str
    points: list[tuple[float, float]]
    cycles: list[tuple[float, float]] = field(default_factory=list)
    mean: bool = False
    band: list[tuple[float, float, float]] = field(default_factory=list)  # (x, low, high) around a mean line


def line_chart(title: str, xlabel: str, ylabel: str, series: Sequence[Series]) -> Markup | None:
    """Learning curves: thin lines per seed, a thick line per arm's mean, triangles at dendrite cycles."""
    pts = [p for s in series for p in s.points if all(math.isfinite(c) for c in p)]
    pts += [(b[0], v) for s in series for b in s.band for v in b[1:] if all(math.isfinite(c) for c in b)]
    if not pts:
        return None
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x = Axis(min(xs), max(xs), PAD_L, W - PAD_R)
    ypad = (max(ys) - min(ys)) * 0.08
    y = Axis(min(ys) - ypad, max(ys) + ypad * 3, H - PAD_B, PAD_T)  # headroom for the legend
    body = _frame(title, xlabel, ylabel, x, y)
    for s in series:  # bands first, under every line
        band = [b for b in s.band if all(math.isfinite(c) for c in b)]
        if len(band) >= 2:
            edge = [f"{x(a):.1f},{y(hi):.1f}" for a, _, hi in band] + [f"{x(a):.1f},{y(lo):.1f}" for a, lo, _ in band[::-1]]
            body.append(f'<polygon class="band" points="{" ".join(edge)}" fill="{colour(s.arm)}" fill-opacity="0.16" '
                        f'stroke="none"><title>{_e(s.label)}: band</title></polygon>')
    for s in sorted(series, key=lambda s: s.mean):
        good = [p for p in s.points if all(math.isfinite(c) for c in p)]
        if not good:
            continue
        path = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in good)
        width, opacity = (2.4, 1.0) if s.mean else (1.0, 0.35)
        body.append(f'<polyline points="{path}" fill="none" stroke="{colour(s.arm)}" stroke-width="{width}" '
                    f'stroke-opacity="{opacity}"><title>{_e(s.label)}</title></polyline>')
        for a, b in s.cycles:
            if math.isfinite(a) and math.isfinite(b):
                px, py = x(a), y(b)
                body.append(f'<path class="cycle" d="M{px - 4:.1f} {py + 4:.1f} l4 -8 l4 8 z" fill="{CYCLE_COLOUR}">'
                            f'<title>{_e(s.label)}: dendrites added at step {a:g}</title></path>')
    arms = list(dict.fromkeys(s.arm for s in series))
    legend = [(a, colour(a), "arm") for a in arms]
    if any(s.cycles for s in series):
        legend.append(("dendrites added", CYCLE_COLOUR, "cycle"))
    return _svg(title, body, legend)


@dataclass
class ArmMean:
    """An arm's mean point with error bars: y interval (e.g. 95 % over seeds), x range over seeds."""

    arm: str
    x: float
    y: float
    y_low: float | None
    y_high: float | None
    x_low: float | None
    x_high: float | None
    tip: str


def scatter(title: str, xlabel: str, ylabel: str, points: Sequence[tuple[str, float, float, str]],
            means: Sequence[ArmMean] = ()) -> Markup | None:
    """(arm, x, y, tooltip) points, faint, and each arm's mean as a large marker with error bars;
    x on a log scale when it spans more than a factor of 20."""
    good = [p for p in points if math.isfinite(p[1]) and math.isfinite(p[2]) and p[1] > 0]
    if not good:
        return None
    xs, ys = [p[1] for p in good], [p[2] for p in good]
    ok_means = [m for m in means if math.isfinite(m.x) and math.isfinite(m.y) and m.x > 0]
    for m in ok_means:
        ys += [v for v in (m.y_low, m.y_high) if v is not None and math.isfinite(v)]
        xs += [v for v in (m.x_low, m.x_high) if v is not None and math.isfinite(v) and v > 0]
    log = max(xs) / min(xs) > 20
    xlo, xhi = (min(xs) / 1.3, max(xs) * 1.3) if log else (min(xs) * 0.9, max(xs) * 1.1)
    x = Axis(xlo, xhi, PAD_L, W - PAD_R, log=log)
    ypad = (max(ys) - min(ys)) * 0.1 or abs(ys[0]) * 0.1 or 0.1
    y = Axis(min(ys) - ypad, max(ys) + ypad * 3, H - PAD_B, PAD_T)
    body = _frame(title, xlabel + (" (log scale)" if log else ""), ylabel, x, y)
    faint = 0.35 if ok_means else 0.7
    for arm, a, b, tip in good:
        body.append(f'<circle cx="{x(a):.1f}" cy="{y(b):.1f}" r="3.5" fill="{colour(arm)}" fill-opacity="{faint}" '
                    f'stroke="#fff" stroke-width="0.8"><title>{_e(tip)}</title></circle>')
    for m in ok_means:
        cx, cy, col = x(m.x), y(m.y), colour(m.arm)
        bars = []
        if m.y_low is not None and m.y_high is not None and math.isfinite(m.y_low) and math.isfinite(m.y_high):
            y0, y1 = y(m.y_low), y(m.y_high)
            bars.append(f'M{cx:.1f} {y0:.1f}V{y1:.1f}M{cx - 5:.1f} {y0:.1f}h10M{cx - 5:.1f} {y1:.1f}h10')
        if (m.x_low is not None and m.x_high is not None and m.x_low > 0 and m.x_high > m.x_low
                and math.isfinite(m.x_high)):
            x0, x1 = x(m.x_low), x(m.x_high)
            bars.append(f'M{x0:.1f} {cy:.1f}H{x1:.1f}')
        if bars:
            body.append(f'<path class="errorbar" d="{"".join(bars)}" stroke="{col}" stroke-width="1.8" fill="none"/>')
        body.append(f'<rect class="armmean" x="{cx - 6:.1f}" y="{cy - 6:.1f}" width="12" height="12" fill="{col}" '
                    f'stroke="#1d2430" stroke-width="1.2"><title>{_e(m.tip)}</title></rect>')
    arms = list(dict.fromkeys([p[0] for p in good] + [m.arm for m in ok_means]))
    return _svg(title, body, [(a, colour(a), "arm") for a in arms])


# -- forest plot ------------------------------------------------------------------------------
@dataclass
class Estimate:
    """One comparison on a forest-plot row: RER mean and interval (fractions), how it is drawn."""

    kind: str  # "baseline" (dendrites vs baseline) or "wide" (dendrites vs wide)
    mean: float | None
    low: float | None
    high: float | None
    tip: str
    significant: bool = False


@dataclass
class ForestRow:
    label: str
    sublabel: str
    href: str | None
    estimates: list[Estimate]
    claims: list[tuple[float, str]] = field(default_factory=list)  # (claimed RER, tooltip)
    muted: bool = False  # e.g. a smoke row: a pipeline check, no verdict


FOREST_W = 1180
FOREST_LABEL_W = 330
FOREST_ROW_H = 34
FOREST_KIND = {"baseline": ("vs baseline", "#0072b2", -5), "wide": ("vs wide (equal parameters)", "#e69f00", 6)}
CLAIM_COLOUR = "#d55e00"
RER_FLOOR = -1.0  # RER can fall without bound; below -100 % an arrow at the edge says "further"


def _pct(v: float) -> str:
    return f"{v * 100:+.0f} %" if v else "0"


def forest(title: str, rows: Sequence[ForestRow], floor: float = RER_FLOOR) -> Markup | None:
    """RER with its interval per row, vs baseline and vs wide, the zero line and the published claims.

    One axis for every row, so rows can be compared at a glance; values below ``floor`` are drawn at
    the edge with an arrow (and their numbers are in the tooltip and the table).
    """
    if not rows:
        return None
    vals = [0.0]
    for r in rows:
        for e in r.estimates:
            vals += [v for v in (e.mean, e.low, e.high) if v is not None and math.isfinite(v)]
        vals += [v for v, _ in r.claims if math.isfinite(v)]
    lo, hi = max(floor, min(vals)), min(1.0, max(vals))
    span = max(hi - lo, 0.1)
    lo, hi = max(floor, lo - span * 0.06), min(1.0, hi + span * 0.06)
    top, bottom = 34, 38
    height = top + bottom + FOREST_ROW_H * len(rows)
    x = Axis(lo, hi, FOREST_LABEL_W + 10, FOREST_W - 36)  # room for the last tick's label
    clamp = lambda v: min(max(v, x.lo), x.hi)  # noqa: E731
    body = [f'<rect x="{FOREST_LABEL_W + 10}" y="{top}" width="{FOREST_W - FOREST_LABEL_W - 46}" '
            f'height="{height - top - bottom}" fill="#fff" stroke="#c8ccd2"/>']
    body += _x_grid(x, top, height - bottom, _pct)
    zx = x(0.0)
    body.append(f'<line class="zero" x1="{zx:.1f}" x2="{zx:.1f}" y1="{top}" y2="{height - bottom}" stroke="#1d2430" '
                f'stroke-width="1.2" stroke-dasharray="4 3"><title>RER 0: no difference</title></line>')
    body.append(f'<text x="{(FOREST_LABEL_W + FOREST_W) / 2:.0f}" y="{height - 3}" text-anchor="middle" class="label">'
                f'relative error reduction (RER) of dendrites, of the mean errors, with the paired test\'s 95 % interval; '
                f'right of 0 = fewer errors</text>')
    for i, r in enumerate(rows):
        cy = top + FOREST_ROW_H * i + FOREST_ROW_H / 2
        cls = "forest-row muted" if r.muted else "forest-row"
        parts = [f'<g class="{cls}">']
        if i % 2:
            parts.append(f'<rect x="0" y="{cy - FOREST_ROW_H / 2:.1f}" width="{FOREST_W}" height="{FOREST_ROW_H}" '
                         f'fill="#f6f7f9" fill-opacity="0.7"/>')
        label = f'<text x="8" y="{cy - 2:.1f}" class="rowlabel">{_e(r.label[:60])}</text>'
        if r.href:
            label = f'<a href="{_e(r.href)}">{label}</a>'
        parts.append(label)
        parts.append(f'<text x="8" y="{cy + 11:.1f}" class="rowsub">{_e(r.sublabel[:80])}</text>')
        for e in r.estimates:
            if e.mean is None or not math.isfinite(e.mean):
                continue
            _, col, dy = FOREST_KIND.get(e.kind, (e.kind, "#cc79a7", 0))
            py = cy + dy
            if e.low is not None and e.high is not None and math.isfinite(e.low) and math.isfinite(e.high):
                x0, x1 = x(clamp(e.low)), x(clamp(e.high))
                parts.append(f'<line x1="{x0:.1f}" x2="{x1:.1f}" y1="{py:.1f}" y2="{py:.1f}" stroke="{col}" '
                             f'stroke-width="2.2"/>')
                if e.low < x.lo:
                    parts.append(f'<path d="M{x0:.1f} {py:.1f} l6 -4 v8 z" fill="{col}"/>')
            px = x(clamp(e.mean))
            fill = col if e.significant else "#fff"
            shape = (f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4.5"' if e.kind == "baseline" else
                     f'<path d="M{px:.1f} {py - 5.5:.1f} l5.5 5.5 l-5.5 5.5 l-5.5 -5.5 z"')
            parts.append(f'{shape} class="est est-{_e(e.kind)}" fill="{fill}" stroke="{col}" stroke-width="2">'
                         f'<title>{_e(e.tip)}</title>{"</circle>" if e.kind == "baseline" else "</path>"}')
        for v, tip in r.claims:
            if not math.isfinite(v):
                continue
            px = x(clamp(v))
            parts.append(f'<path class="claim-mark" d="M{px:.1f} {cy - 9:.1f} l4 7 l-4 7 l-4 -7 z" fill="{CLAIM_COLOUR}" '
                         f'stroke="#fff" stroke-width="0.8"><title>{_e(tip)}</title></path>')
        parts.append("</g>")
        body.append("".join(parts))
    legend = [("vs baseline", FOREST_KIND["baseline"][1], "dot"),
              ("vs wide (equal parameters)", FOREST_KIND["wide"][1], "diamond"),
              ("published claim", CLAIM_COLOUR, "claim")]
    items, lx = [], FOREST_LABEL_W + 14
    for text, col, kind in legend:
        if kind == "dot":
            items.append(f'<circle cx="{lx + 5}" cy="16" r="4.5" fill="{col}" stroke="{col}" stroke-width="2"/>')
        elif kind == "diamond":
            items.append(f'<path d="M{lx + 5} 10.5 l5.5 5.5 l-5.5 5.5 l-5.5 -5.5 z" fill="{col}"/>')
        else:
            items.append(f'<path d="M{lx + 5} 9 l4 7 l-4 7 l-4 -7 z" fill="{col}"/>')
        items.append(f'<text x="{lx + 15}" y="20" class="legend">{_e(text)}</text>')
        lx += 30 + 7 * len(text)
    items.append(f'<text x="{lx}" y="20" class="legend muted-text">filled: p &lt; 0.05 · grey: no verdict</text>')
    items.append(f'<text x="8" y="20" class="legend"><tspan font-weight="600">{_e(title)}</tspan></text>')
    return Markup(
        f'<svg class="chart forest" viewBox="0 0 {FOREST_W} {height}" width="{FOREST_W}" height="{height}" role="img" '
        f'aria-label="{_e(title)}" xmlns="http://www.w3.org/2000/svg"><title>{_e(title)}</title>'
        + "".join(body) + "".join(items) + "</svg>")


def standalone(chart: str, css: str) -> str:
    """A chart as its own ``.svg`` file, for the README and for slides: the page's ``svg.chart``
    rules go inside it (a file has no page stylesheet); the row links stay, relative to the site."""
    rules = "\n".join(line for line in css.splitlines() if line.startswith("svg.chart"))
    style = rules.replace("var(--line)", "#dfe3e8")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            + str(chart).replace("</title>", f"</title><style>{style}</style>", 1) + "\n")
