"""The report's bar charts as inline SVG, drawn on the server from a report table.

Hand-written rather than matplotlib's (sender.report.charts): the markup is a
few hundred bytes per bar, needs no font or import at request time, and can
carry what a screen reader needs: a `<title>` and `<desc>`, and a text label
and value on every bar, so nothing is told by colour alone. The page prints
the same figures as a table beside each chart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from sender.report.tables import Table, View

WIDTH = 360  # about the width it is shown at, so its text stays readable
ROW = 38  # a label line above a bar
BAR = 14
VALUE_ROOM = 70  # the figure printed right of the longest bar
LIMIT = 40  # bars per chart; a longer table (days) is read from the table beside it


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str  # the figure as the table prints it


@dataclass(frozen=True)
class Chart:
    title: str
    bars: tuple[Bar, ...]
    left_out: int = 0  # bars past LIMIT

    def description(self) -> str:
        said = "; ".join(f"{b.label}: {b.text}" for b in self.bars)
        more = f"; {self.left_out} more in the table" if self.left_out else ""
        return f"{len(self.bars)} bars. {said}{more}" if self.bars else "Nothing to draw yet."


def charts(view: View) -> list[list[Chart]]:
    """The charts of each of the view's tables, in its order: one per charted column, or,
    when campaigns are compared, one with a bar for each row and campaign."""
    return [_table_charts(table, len(view.campaigns) > 1) for table in view.tables]


def _table_charts(table: Table, compared: bool) -> list[Chart]:
    columns = table.charted()
    if compared and columns:
        bars = [
            Bar(f"{name} · {c.heading}", value, text)
            for c in columns
            for name, value, text in table.series(c.key)
        ]
        return [_chart(table.title, sorted(bars, key=lambda b: b.label))]
    return [
        _chart(f"{column.heading}, {table.title}", [Bar(*p) for p in table.series(column.key)])
        for column in columns
    ]


def _chart(title: str, bars: Sequence[Bar]) -> Chart:
    return Chart(title, tuple(bars[:LIMIT]), max(0, len(bars) - LIMIT))


def svg(chart: Chart, ident: str) -> str:
    """The chart as an `<svg role="img">` labelled by its title and description."""
    top = max((b.value for b in chart.bars), default=0.0)
    height = ROW * max(1, len(chart.bars)) + 8
    room = WIDTH - VALUE_ROOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="bars" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'aria-labelledby="{ident}-title {ident}-desc" data-testid="chart">',
        f'<title id="{ident}-title">{escape(chart.title)}</title>',
        f'<desc id="{ident}-desc">{escape(chart.description())}</desc>',
    ]
    for n, bar in enumerate(chart.bars):
        y = n * ROW + 14
        length = 0.0 if top <= 0 else max(1.0, room * bar.value / top) if bar.value else 0.0
        parts += [
            f'<text x="0" y="{y}" class="bar-label">{escape(bar.label)}</text>',
            f'<rect x="0" y="{y + 6}" width="{length:.1f}" height="{BAR}" class="bar-fill"/>',
            f'<text x="{length + 6:.1f}" y="{y + 18}" class="bar-value">{escape(bar.text)}</text>',
        ]
    if not chart.bars:
        parts.append('<text x="0" y="20">Nothing to draw yet.</text>')
    parts.append("</svg>")
    return "".join(parts)
