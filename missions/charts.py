"""Server-drawn SVG charts for the monitoring page: the geometry is computed here, and
templates/missions/_chart.html draws it (autoescaped, so every label is escaped there).

No JavaScript and no library. The SVG scales to its box (a viewBox, width 100%), so it
reads on a phone; it carries a <title>, a <desc> with the totals, a <title> on every bar
and point, and a table with every number beside it. Coordinates and numbers reach the
template as strings formatted here, never as floats that a locale could print with a
decimal comma.
"""

import math
from dataclasses import dataclass, field
from functools import cached_property

from django.utils.translation import gettext as _

# The drawing's own units (the viewBox): about a phone's width, so the text keeps its size there.
WIDTH, HEIGHT = 360, 170
LEFT, RIGHT, TOP, BOTTOM = 42, 16, 8, 20

BARS, LINES = "bars", "lines"
COUNT, CASH, SECONDS = "count", "cash", "seconds"


def format_value(value: float | None, unit: str) -> str:
    """A value as the table and the tooltips show it: 1,234 / 12.5 s / - for no data."""
    if value is None:
        return "-"
    if unit == SECONDS:
        return f"{value:,.1f} s"
    return f"{int(value):,}"


def format_axis(value: float, unit: str) -> str:
    """An axis label: short (1.5k, 2M, 90 s, 4 min, 2 h)."""
    if unit == SECONDS:
        for size, suffix in ((3600, "h"), (60, "min")):
            if value >= 2 * size:
                return f"{_trim(value / size)} {suffix}"
        return f"{_trim(value)} s"
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if value >= size:
            return f"{_trim(value / size)}{suffix}"
    return _trim(value)


def _trim(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def nice_ceiling(value: float) -> float:
    """The axis' top: the smallest of 1, 2, 2.5, 5 times a power of ten at or above `value`."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= value)


def _n(value: float) -> str:
    return f"{value:.1f}"


@dataclass(frozen=True)
class Series:
    label: str
    values: tuple[float | None, ...]
    css: str  # a class of missionhub.css that gives its colour


@dataclass(frozen=True)
class Bar:
    x: str
    y: str
    width: str
    height: str
    css: str
    title: str


@dataclass(frozen=True)
class Dot:
    cx: str
    cy: str
    css: str
    title: str


@dataclass(frozen=True)
class Polyline:
    points: str
    css: str


@dataclass(frozen=True)
class Tick:
    x: str
    y: str
    label: str


@dataclass(frozen=True)
class Drawing:
    width: int
    height: int
    left: str
    right: str
    baseline: str
    bars: list[Bar] = field(default_factory=list)
    lines: list[Polyline] = field(default_factory=list)
    dots: list[Dot] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)


@dataclass(frozen=True)
class Chart:
    """One chart: a value per slot (an hour, a day) for each series.

    `slots` names each slot in full (the table, the tooltips); `axis` is the short label
    under the slots that carry one ("" elsewhere). Bars stack their series; lines draw
    each series on its own, with gaps where a value is None.
    """

    key: str  # unique on the page: the SVG's element ids
    title: str
    kind: str
    unit: str
    slots: tuple[str, ...]
    axis: tuple[str, ...]
    series: tuple[Series, ...]
    slot_heading: str = ""  # the table's first column

    def __post_init__(self):
        if len(self.axis) != len(self.slots) or any(len(s.values) != len(self.slots) for s in self.series):
            raise ValueError(f"chart {self.key}: every series needs one value per slot")

    @property
    def has_data(self) -> bool:
        return any(value for series in self.series for value in series.values)

    @property
    def rows(self) -> list[tuple[str, list[str]]]:
        """The table: each slot with its values, formatted."""
        return [
            (slot, [format_value(series.values[i], self.unit) for series in self.series])
            for i, slot in enumerate(self.slots)
        ]

    @property
    def summary(self) -> str:
        """The SVG's <desc>: what a screen reader says before the table."""
        if not self.has_data:
            return _("%(title)s: no data in this period.") % {"title": self.title}
        parts = []
        for series in self.series:
            known = [v for v in series.values if v is not None]
            if self.kind == BARS:
                parts.append(f"{series.label}: {format_value(sum(known), self.unit)}")
            elif known:
                parts.append(
                    _("%(label)s: from %(low)s to %(high)s")
                    % {
                        "label": series.label,
                        "low": format_value(min(known), self.unit),
                        "high": format_value(max(known), self.unit),
                    }
                )
        return _("%(title)s, %(first)s to %(last)s. %(parts)s.") % {
            "title": self.title,
            "first": self.slots[0],
            "last": self.slots[-1],
            "parts": "; ".join(parts),
        }

    @cached_property
    def drawing(self) -> Drawing:
        slots = len(self.slots)
        plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
        slot_width = plot_width / max(slots, 1)
        if self.kind == BARS:
            tallest = max((sum(s.values[i] or 0 for s in self.series) for i in range(slots)), default=0)
        else:
            tallest = max((v for s in self.series for v in s.values if v is not None), default=0)
        top = nice_ceiling(tallest)

        def y_of(value: float) -> float:
            return TOP + plot_height * (1 - value / top)

        def x_of(slot: int) -> float:
            return LEFT + slot_width * (slot + 0.5)

        y_values = [0, top / 2, top] if self.unit == SECONDS or (top / 2).is_integer() else [0, top]
        drawing = Drawing(
            width=WIDTH,
            height=HEIGHT,
            left=_n(LEFT),
            right=_n(WIDTH - RIGHT),
            baseline=_n(y_of(0)),
            y_ticks=[Tick(x=_n(LEFT - 4), y=_n(y_of(v)), label=format_axis(v, self.unit)) for v in y_values],
            x_ticks=[Tick(x=_n(x_of(i)), y=_n(HEIGHT - 6), label=label) for i, label in enumerate(self.axis) if label],
        )
        if self.kind == BARS:
            self._draw_bars(drawing, slot_width=slot_width, y_of=y_of)
        else:
            self._draw_lines(drawing, x_of=x_of, y_of=y_of)
        return drawing

    def _tooltip(self, slot: int, series: Series) -> str:
        return f"{self.slots[slot]} · {series.label}: {format_value(series.values[slot], self.unit)}"

    def _draw_bars(self, drawing: Drawing, *, slot_width: float, y_of) -> None:
        bar_width = max(slot_width * 0.8, 1)
        for i in range(len(self.slots)):
            below = 0.0
            for series in self.series:
                value = series.values[i] or 0
                if value <= 0:
                    continue
                y_top, y_bottom = y_of(below + value), y_of(below)
                drawing.bars.append(
                    Bar(
                        x=_n(LEFT + slot_width * i + (slot_width - bar_width) / 2),
                        y=_n(y_top),
                        width=_n(bar_width),
                        height=_n(max(y_bottom - y_top, 0.5)),
                        css=series.css,
                        title=self._tooltip(i, series),
                    )
                )
                below += value

    def _draw_lines(self, drawing: Drawing, *, x_of, y_of) -> None:
        # The first series is drawn last, on top: p50 stays visible where it equals p95.
        for series in reversed(self.series):
            run: list[str] = []
            for i, value in enumerate((*series.values, None)):
                if value is None:
                    if len(run) > 1:
                        drawing.lines.append(Polyline(points=" ".join(run), css=series.css))
                    run = []
                    continue
                run.append(f"{_n(x_of(i))},{_n(y_of(value))}")
                drawing.dots.append(
                    Dot(cx=_n(x_of(i)), cy=_n(y_of(value)), css=series.css, title=self._tooltip(i, series))
                )
