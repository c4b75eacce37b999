"""Bar charts as geometry for server-rendered SVG (templates/_chart.html draws them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from havarti.domain.stats import Day

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 76, 24, 12, 28


@dataclass(frozen=True)
class Bar:
    """One bar of a chart, in SVG coordinates."""

    x: float
    y: float
    width: float
    height: float
    series: str
    title: str


@dataclass(frozen=True)
class Tick:
    """A labelled line across a chart."""

    y: float
    label: str


@dataclass(frozen=True)
class Chart:
    """A bar chart, ready for the template."""

    title: str
    description: str
    bars: list[Bar]
    ticks: list[Tick]
    labels: list[tuple[float, str]]
    legend: list[tuple[str, str]]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    bottom: float = HEIGHT - BOTTOM


def _nice_max(value: float) -> float:
    """The smallest 1, 2 or 5 × 10ⁿ at or above ``value``: round gridlines."""
    if value <= 0:
        return 1
    magnitude = 1.0
    while magnitude * 10 <= value:
        magnitude *= 10
    while magnitude > value:
        magnitude /= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def stacked(days: list[Day], series: list[tuple[str, str, Callable[[Day], float]]],
            title: str, description: str, fmt: Callable[[float], str], minimum: float = 4) -> Chart:
    """One bar per day, the ``series`` (css name, label, value) stacked bottom up.

    The scale starts at ``minimum``, so a quiet month still has whole-number gridlines.
    """
    plot_h = HEIGHT - TOP - BOTTOM
    plot_w = WIDTH - LEFT - RIGHT
    # Four gridline steps of a round size (1, 2 or 5 × 10ⁿ) above the tallest bar.
    top_value = 4 * _nice_max(max([minimum] + [sum(v(d) for _, _, v in series) for d in days]) / 4)
    slot = plot_w / max(1, len(days))
    bars = []
    labels = []
    for i, day in enumerate(days):
        x = LEFT + i * slot + slot * 0.15
        base = float(HEIGHT - BOTTOM)
        for name, label, value in series:
            amount = value(day)
            if amount <= 0:
                continue
            height = max(1.0, amount / top_value * plot_h)
            base -= height
            bars.append(Bar(round(x, 1), round(base, 1), round(slot * 0.7, 1), round(height, 1),
                            name, f"{day.day.isoformat()}: {fmt(amount)} {label}"))
        if (len(days) - 1 - i) % 7 == 0:
            labels.append((round(LEFT + i * slot + slot / 2, 1), day.day.strftime("%b %d")))
    ticks = [Tick(round(HEIGHT - BOTTOM - plot_h * k / 4, 1), fmt(top_value * k / 4))
             for k in range(5)]
    return Chart(title, description, bars, ticks, labels,
                 [(name, label) for name, label, _ in series])


def _count(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def filesize(value: int | None) -> str:
    """1536 → '1.5 KB' (decimal units, as PyPI shows)."""
    if value is None:
        return "—"
    size = float(value)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000:
            return f"{size:.1f}".removesuffix(".0") + f" {unit}" if unit != "bytes" \
                else f"{int(size)} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def _bytes(value: float) -> str:
    return filesize(int(value)) if value else "0"


def requests_chart(days: list[Day]) -> Chart:
    return stacked(days, [("hit", "served from cache", lambda d: d.cache_hits),
                          ("miss", "fetched from upstream", lambda d: d.upstream)],
                   "Files per day",
                   "File requests served from Havarti's storage, and files fetched from "
                   "upstream (for clients, prefetch and downloaders), per day",
                   _count)


def bytes_chart(days: list[Day]) -> Chart:
    return stacked(days, [("saved", "served from storage", lambda d: d.bytes_saved)],
                   "Bytes saved per day",
                   "Bytes served from Havarti's storage instead of upstream, per day", _bytes,
                   minimum=4 * 10**3)
