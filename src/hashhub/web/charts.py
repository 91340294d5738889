"""Bar charts as plain numbers for an inline SVG in a template (no JavaScript, no chart library)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True, slots=True)
class BarChart:
    width: int
    height: int
    top: int  # the value the full height stands for
    bars: tuple[Bar, ...]


def bar_chart(points: Sequence[tuple[str, int]], width: int = 640, height: int = 160) -> BarChart:
    """Bars for (label, value) points, scaled so the largest fills the height; the chart's 0 is at
    the bottom. The template labels the axis with `top` and lists the numbers in a table too."""
    top = max((v for _, v in points), default=0) or 1
    slot = width / max(len(points), 1)
    gap = min(4.0, slot * 0.2)
    bars = []
    for i, (label, value) in enumerate(points):
        h = height * value / top
        x = round(i * slot + gap / 2, 2)
        bars.append(Bar(label, value, x, round(height - h, 2), round(slot - gap, 2), round(h, 2)))
    return BarChart(width, height, top, tuple(bars))
