"""Small, dependency-free SVG charts for the tender report (matplotlib is not installed).

Each function returns an ``<svg>`` element as a string: axes with rounded ticks, a legend,
text escaped. Enough for a fan chart, a line chart and grouped bars; nothing more.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

PALETTE = ("#1f5fa8", "#d9822b", "#2e8b57", "#b03a48", "#6a4c93", "#4d908e", "#7f7f7f")
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2, 5 x 10^k steps)."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        return [0.0, 1.0]
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    value = start
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < hi:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def fmt(value: float) -> str:
    """Short axis label: 1.2k, 3.4M, 120."""
    a = abs(value)
    if a >= 1e9:
        return f"{value / 1e9:g}G"
    if a >= 1e6:
        return f"{value / 1e6:g}M"
    if a >= 1e4:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


class _Frame:
    def __init__(self, width: int, height: int, y_lo: float, y_hi: float, n_x: int) -> None:
        self.width, self.height = width, height
        self.left, self.right, self.top, self.bottom = 62, 12, 28, 46
        self.ticks = nice_ticks(y_lo, y_hi)
        self.y_lo, self.y_hi = self.ticks[0], self.ticks[-1]
        self.n_x = max(1, n_x)

    def x(self, i: float) -> float:
        span = self.width - self.left - self.right
        return self.left + span * (i + 0.5) / self.n_x

    def y(self, v: float) -> float:
        span = self.height - self.top - self.bottom
        return self.top + span * (1 - (v - self.y_lo) / ((self.y_hi - self.y_lo) or 1))

    def axes(self, labels: Sequence[str], title: str, y_label: str) -> list[str]:
        out = [f'<text x="{self.left}" y="16" {FONT} font-weight="600">{escape(title)}</text>']
        for t in self.ticks:
            y = self.y(t)
            out.append(
                f'<line x1="{self.left}" x2="{self.width - self.right}" y1="{y:.1f}" y2="{y:.1f}" '
                'stroke="#e3e3e3"/>'
            )
            out.append(f'<text x="{self.left - 6}" y="{y + 4:.1f}" {FONT} text-anchor="end">{fmt(t)}</text>')
        every = max(1, math.ceil(len(labels) / 12))
        for i, label in enumerate(labels):
            if i % every == 0:
                out.append(
                    f'<text x="{self.x(i):.1f}" y="{self.height - self.bottom + 16}" {FONT} '
                    f'text-anchor="middle">{escape(label)}</text>'
                )
        out.append(
            f'<text x="14" y="{(self.top + self.height - self.bottom) / 2:.1f}" {FONT} '
            f'transform="rotate(-90 14 {(self.top + self.height - self.bottom) / 2:.1f})" '
            f'text-anchor="middle">{escape(y_label)}</text>'
        )
        return out

    def legend(self, names: Sequence[tuple[str, str]]) -> list[str]:
        out = []
        x = self.left
        y = self.height - 10
        for name, color in names:
            out.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{color}"/>')
            out.append(f'<text x="{x + 14}" y="{y}" {FONT}>{escape(name)}</text>')
            x += 24 + 7 * len(name)
        return out


def _svg(width: int, height: int, parts: list[str]) -> str:
    body = "\n".join(parts)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">\n{body}\n</svg>'
    )


def line_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    bands: Sequence[tuple[str, Sequence[float | None], Sequence[float | None]]] = (),
    title: str = "",
    y_label: str = "",
    width: int = 760,
    height: int = 280,
) -> str:
    """Lines (None = no point) over shaded bands (name, low, high)."""
    values = [v for _, vs in series for v in vs if v is not None]
    values += [v for _, lo, hi in bands for v in (*lo, *hi) if v is not None]
    frame = _Frame(width, height, min([0.0, *values]), max(values or [1.0]), len(labels))
    parts = frame.axes(labels, title, y_label)
    legend: list[tuple[str, str]] = []
    for j, (name, lo, hi) in enumerate(bands):
        color = PALETTE[0]
        pts = [
            (i, a, b) for i, (a, b) in enumerate(zip(lo, hi, strict=True)) if a is not None and b is not None
        ]
        if not pts:
            continue
        upper = " ".join(f"{frame.x(i):.1f},{frame.y(b):.1f}" for i, _, b in pts)
        lower = " ".join(f"{frame.x(i):.1f},{frame.y(a):.1f}" for i, a, _ in reversed(pts))
        opacity = 0.15 + 0.12 * j
        parts.append(
            f'<polygon points="{upper} {lower}" fill="{color}" fill-opacity="{opacity:.2f}" stroke="none"/>'
        )
        legend.append((name, f"rgba(31,95,168,{opacity:.2f})"))
    for k, (name, vs) in enumerate(series):
        color = PALETTE[k % len(PALETTE)]
        segments: list[list[str]] = [[]]
        for i, v in enumerate(vs):
            if v is None:
                segments.append([])
            else:
                segments[-1].append(f"{frame.x(i):.1f},{frame.y(v):.1f}")
        for seg in segments:
            if len(seg) > 1:
                parts.append(
                    f'<polyline points="{" ".join(seg)}" fill="none" stroke="{color}" stroke-width="2"/>'
                )
            for point in seg:
                x, y = point.split(",")
                parts.append(f'<circle cx="{x}" cy="{y}" r="2.2" fill="{color}"/>')
        legend.append((name, color))
    parts += frame.legend(legend)
    return _svg(width, height, parts)


def bar_chart(
    labels: Sequence[str],
    groups: Sequence[tuple[str, Sequence[float]]],
    *,
    title: str = "",
    y_label: str = "",
    width: int = 760,
    height: int = 280,
) -> str:
    """Grouped vertical bars: one group per label, one bar per (name, values) series."""
    values = [v for _, vs in groups for v in vs]
    frame = _Frame(width, height, min([0.0, *values]), max(values or [1.0]), len(labels))
    parts = frame.axes(labels, title, y_label)
    slot = (width - frame.left - frame.right) / max(1, len(labels))
    bar = slot * 0.8 / max(1, len(groups))
    zero = frame.y(0.0)
    for k, (_name, vs) in enumerate(groups):
        color = PALETTE[k % len(PALETTE)]
        for i, v in enumerate(vs):
            x = frame.left + slot * i + slot * 0.1 + bar * k
            y = frame.y(v)
            parts.append(
                f'<rect x="{x:.1f}" y="{min(y, zero):.1f}" width="{bar:.1f}" '
                f'height="{abs(zero - y):.1f}" fill="{color}"/>'
            )
    parts += frame.legend([(name, PALETTE[k % len(PALETTE)]) for k, (name, _) in enumerate(groups)])
    return _svg(width, height, parts)
