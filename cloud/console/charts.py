"""Plots for the console drawn on the server as SVG geometry: pure, no I/O, nothing to fetch.

:func:`stock_lines` turns stock readings per SKU into step lines over a day;
:func:`interest_heatmap` turns interest per SKU per hour into shaded cells.
Templates draw the numbers returned here; every text in them is escaped there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise

PALETTE = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#7f7f7f",
    "#bcbd22",
)
HEAT_LEVELS = 6  # classes heat-0 … heat-5


@dataclass
class Line:
    """One SKU's line: its name, colour, SVG points and its value now."""

    name: str
    color: str
    points: str
    last: int


@dataclass
class LineChart:
    """A chart's size, axes and lines."""

    width: int
    height: int
    left: int
    bottom: int
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)


def stock_lines(
    readings: dict[str, list[tuple[datetime, int]]],
    *,
    start: datetime,
    end: datetime,
    width: int = 760,
    height: int = 260,
) -> LineChart:
    """Step lines of stock per SKU from ``start`` to ``end`` (readings oldest first)."""
    left, right, top, bottom = 44, 12, 10, 28
    span = max((end - start).total_seconds(), 1.0)
    top_value = max((v for pts in readings.values() for _, v in pts), default=0)
    y_max = max(1, top_value + (1 if top_value < 5 else top_value // 10))
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(t: datetime) -> float:
        frac = min(max((t - start).total_seconds() / span, 0.0), 1.0)
        return round(left + frac * plot_w, 1)

    def y(v: int) -> float:
        return round(top + plot_h * (1 - max(v, 0) / y_max), 1)

    chart = LineChart(width, height, left, height - bottom)
    hours = max(1, round(span / 3600 / 8))
    t = start
    while t <= end:
        chart.x_ticks.append((x(t), t.strftime("%H:%M")))
        t += timedelta(hours=hours)
    step = max(1, y_max // 5)
    chart.y_ticks = [(y(v), str(v)) for v in range(0, y_max + 1, step)]
    for i, (name, pts) in enumerate(sorted(readings.items())):
        if not pts:
            continue
        coords = [(x(pts[0][0]), y(pts[0][1]))]
        for (_, prev), (when, value) in pairwise(pts):
            coords.append((x(when), y(prev)))
            coords.append((x(when), y(value)))
        coords.append((x(end), y(pts[-1][1])))
        chart.lines.append(
            Line(
                name,
                PALETTE[i % len(PALETTE)],
                " ".join(f"{a},{b}" for a, b in coords),
                pts[-1][1],
            )
        )
    return chart


@dataclass
class HeatCell:
    """Interest episodes of one SKU in one hour, their shade and touch→take conversion."""

    episodes: int
    level: int
    conversion: float | None


@dataclass
class Heatmap:
    """SKUs down, hours across."""

    hours: list[int]
    rows: list[tuple[str, list[HeatCell]]]
    peak: int


def interest_heatmap(
    cells: list[tuple[str, int, int, float | None]], *, hours: range = range(24)
) -> Heatmap:
    """Cells from ``(sku, hour, episodes, touch_to_take)``; shade scales with the busiest hour."""
    peak = max((n for _, _, n, _ in cells), default=0)
    by_sku: dict[str, dict[int, HeatCell]] = {}
    for sku, hour, n, conv in cells:
        level = 0 if n <= 0 or peak <= 0 else max(1, round(n / peak * (HEAT_LEVELS - 1)))
        by_sku.setdefault(sku, {})[hour] = HeatCell(n, level, conv)
    empty = HeatCell(0, 0, None)
    rows = [(sku, [by_sku[sku].get(h, empty) for h in hours]) for sku in sorted(by_sku)]
    return Heatmap(list(hours), rows, peak)
