"""Hand-written SVG charts for the task pages.

Why not matplotlib: a page must open from ``file://`` with nothing fetched, build 10,000 records in
seconds, and render identically everywhere; a few hundred lines of SVG text do that with no font
files, no backend and no global state. Every piece of text placed in a chart goes through
:func:`html.escape`, so a seed label or arm name from a record can never become markup.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
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


def _frame(title: str, xlabel: str, ylabel: str, x: Axis, y: Axis) -> list[str]:
    out = [f'<rect x="{PAD_L}" y="{PAD_T}" width="{W - PAD_L - PAD_R}" height="{H - PAD_T - PAD_B}" '
           f'fill="#fff" stroke="#c8ccd2"/>']
    for t in x.ticks():
        px = x(t)
        out.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{PAD_T}" y2="{H - PAD_B}" stroke="#eef0f3"/>')
        out.append(f'<text x="{px:.1f}" y="{H - PAD_B + 15}" text-anchor="middle" class="tick">{_e(fmt_tick(t))}</text>')
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


def line_chart(title: str, xlabel: str, ylabel: str, series: Sequence[Series]) -> Markup | None:
    """Learning curves: thin lines per seed, a thick line per arm's mean, triangles at dendrite cycles."""
    pts = [p for s in series for p in s.points if all(math.isfinite(c) for c in p)]
    if not pts:
        return None
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x = Axis(min(xs), max(xs), PAD_L, W - PAD_R)
    ypad = (max(ys) - min(ys)) * 0.08
    y = Axis(min(ys) - ypad, max(ys) + ypad * 3, H - PAD_B, PAD_T)  # headroom for the legend
    body = _frame(title, xlabel, ylabel, x, y)
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


def scatter(title: str, xlabel: str, ylabel: str, points: Sequence[tuple[str, float, float, str]]) -> Markup | None:
    """(arm, x, y, tooltip) points; x on a log scale when it spans more than a factor of 20."""
    good = [p for p in points if math.isfinite(p[1]) and math.isfinite(p[2]) and p[1] > 0]
    if not good:
        return None
    xs, ys = [p[1] for p in good], [p[2] for p in good]
    log = max(xs) / min(xs) > 20
    xlo, xhi = (min(xs) / 1.3, max(xs) * 1.3) if log else (min(xs) * 0.9, max(xs) * 1.1)
    x = Axis(xlo, xhi, PAD_L, W - PAD_R, log=log)
    ypad = (max(ys) - min(ys)) * 0.1 or abs(ys[0]) * 0.1 or 0.1
    y = Axis(min(ys) - ypad, max(ys) + ypad * 3, H - PAD_B, PAD_T)
    body = _frame(title, xlabel + (" (log scale)" if log else ""), ylabel, x, y)
    for arm, a, b, tip in good:
        body.append(f'<circle cx="{x(a):.1f}" cy="{y(b):.1f}" r="4" fill="{colour(arm)}" fill-opacity="0.7" '
                    f'stroke="#fff" stroke-width="0.8"><title>{_e(tip)}</title></circle>')
    arms = list(dict.fromkeys(p[0] for p in good))
    return _svg(title, body, [(a, colour(a), "arm") for a in arms])
