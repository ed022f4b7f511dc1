"""Server-rendered SVG charts: stacked bars per time bucket, and lines with gaps.

Pure functions from numbers to SVG text (already escaped; templates mark it safe). No
JavaScript: a bar's or point's `<title>` is its tooltip. Times are shown in UTC.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

PAD_LEFT = 44
PAD_BOTTOM = 18
PAD_TOP = 6
PAD_RIGHT = 6


@dataclass(frozen=True, slots=True, kw_only=True)
class Series:
    """One series: the key in each bucket's values, its label and colour."""

    key: str
    label: str
    colour: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Axis:
    """The time axis: `count` buckets of `step_s` seconds from `start` (unix time)."""

    start: float
    step_s: float
    count: int

    def label(self, i: int) -> str:
        t = datetime.fromtimestamp(self.start + i * self.step_s, UTC)
        return t.strftime("%H:%M")


def nice_max(value: float) -> float:
    """A round number >= value for the top of the y axis (1, 2, 5 x 10^k)."""
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for m in (1, 2, 5, 10):
        if m * exp >= value:
            return float(m * exp)
    return float(10 * exp)  # pragma: no cover


def _fmt(v: float, unit: str = "") -> str:
    if unit == "%":
        return f"{v:.0f}%"
    if v >= 10_000:
        return f"{v / 1000:.0f}k{unit}"
    if v >= 1000:
        return f"{v / 1000:.1f}k{unit}"
    return f"{v:.0f}{unit}" if v == int(v) or v >= 10 else f"{v:.1f}{unit}"


def _frame(axis: Axis, width: int, height: int, top: float, unit: str, label: str) -> list[str]:
    plot_h = height - PAD_TOP - PAD_BOTTOM
    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(label)}">'
    ]
    for frac in (0.0, 0.5, 1.0):
        y = PAD_TOP + plot_h * (1 - frac)
        out.append(
            f'<line class="grid" x1="{PAD_LEFT}" x2="{width - PAD_RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="ylabel" x="{PAD_LEFT - 4}" y="{y + 3:.1f}" text-anchor="end">{_fmt(top * frac, unit)}</text>'
        )
    if axis.count:
        plot_w = width - PAD_LEFT - PAD_RIGHT
        for i, anchor in ((0, "start"), (axis.count // 2, "middle"), (axis.count, "end")):
            x = PAD_LEFT + plot_w * i / axis.count
            out.append(
                f'<text class="xlabel" x="{x:.1f}" y="{height - 4}" text-anchor="{anchor}">{axis.label(i)}</text>'
            )
    return out


def stacked_bars(
    values: Mapping[int, Mapping[str, float]],
    *,
    axis: Axis,
    series: Sequence[Series],
    label: str,
    width: int = 560,
    height: int = 120,
) -> str:
    """Bars per bucket index (0 .. axis.count - 1), the series stacked bottom-up."""
    totals = [sum(float(values.get(i, {}).get(s.key, 0)) for s in series) for i in range(axis.count)]
    top = nice_max(max(totals, default=0.0))
    out = _frame(axis, width, height, top, "", label)
    plot_w = width - PAD_LEFT - PAD_RIGHT
    plot_h = height - PAD_TOP - PAD_BOTTOM
    slot = plot_w / max(axis.count, 1)
    bar_w = max(1.0, slot * 0.8)
    for i in range(axis.count):
        bucket = values.get(i)
        if not bucket or not totals[i]:
            continue
        x = PAD_LEFT + i * slot + (slot - bar_w) / 2
        y = float(PAD_TOP + plot_h)
        tip = f"{axis.label(i)} UTC: " + ", ".join(f"{int(bucket.get(s.key, 0))} {s.label}" for s in series)
        out.append(f"<g><title>{escape(tip)}</title>")
        for s in series:
            v = float(bucket.get(s.key, 0))
            if v <= 0:
                continue
            h = plot_h * v / top
            y -= h
            out.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{s.colour}"/>'
            )
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


def lines(
    values: Mapping[int, Mapping[str, float | None]],
    *,
    axis: Axis,
    series: Sequence[Series],
    label: str,
    unit: str = "",
    fixed_top: float | None = None,
    width: int = 560,
    height: int = 120,
) -> str:
    """One line per series over bucket indexes; a missing value breaks the line."""
    seen = [float(v) for b in values.values() for s in series if (v := b.get(s.key)) is not None]
    top = fixed_top if fixed_top is not None else nice_max(max(seen, default=0.0))
    out = _frame(axis, width, height, top, unit, label)
    plot_w = width - PAD_LEFT - PAD_RIGHT
    plot_h = height - PAD_TOP - PAD_BOTTOM
    slot = plot_w / max(axis.count, 1)
    for s in series:
        run: list[str] = []
        runs: list[list[str]] = []
        dots: list[str] = []
        for i in range(axis.count):
            v = values.get(i, {}).get(s.key)
            if v is None:
                if run:
                    runs.append(run)
                run = []
                continue
            x = PAD_LEFT + (i + 0.5) * slot
            y = PAD_TOP + plot_h * (1 - min(float(v), top) / top)
            run.append(f"{x:.1f},{y:.1f}")
            tip = f"{axis.label(i)} UTC: {s.label} {_fmt(float(v), unit)}"
            dots.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{s.colour}"><title>{escape(tip)}</title></circle>'
            )
        if run:
            runs.append(run)
        for r in runs:
            if len(r) > 1:
                out.append(f'<polyline fill="none" stroke="{s.colour}" stroke-width="1.5" points="{" ".join(r)}"/>')
        out.extend(dots)
    out.append("</svg>")
    return "".join(out)
