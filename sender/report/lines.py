"""The dashboard's actions per case and day as a hand-written SVG line chart.

Beside sender.report.bars (the report's bars), and for the same reasons:
matplotlib took 110-300 ms a drawing (sender.report.charts, before), loads
for a second on the first one, and its markup carries no text a screen reader
can use. This draws in well under a millisecond, with a `<title>` and a
`<desc>` that says each case's total and busiest day, and a legend that names
every line in text, so nothing is told by colour alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta
from xml.sax.saxutils import escape, quoteattr

WIDTH, HEIGHT = 900, 320
LEFT, RIGHT, TOP, BOTTOM = 56, 170, 16, 36  # room for the axis figures and the legend
# Tableau's ten (matplotlib's default cycle): distinguishable, and the chart looks as before.
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
TITLE = "Actions per case and day"


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def nice_top(peak: int) -> int:
    """The y axis' top: the smallest 1, 2 or 5 times a power of ten at or above the peak."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= peak:
                return step * factor
        step *= 10


def describe(series: Mapping[str, Mapping[date, int]], days: Sequence[date]) -> str:
    """Each case's total over the days shown and its busiest day: the chart in words."""
    if not series:
        return "No actions yet."
    parts = []
    for slug, counts in sorted(series.items()):
        shown = {d: counts.get(d, 0) for d in days}
        busiest = max(shown, key=lambda d: (shown[d], d))
        total, most = sum(shown.values()), shown[busiest]
        parts.append(f"{slug}: {total} in all, most on {busiest.isoformat()} ({most})")
    return f"{days[0].isoformat()} to {days[-1].isoformat()}. " + "; ".join(parts) + "."


def actions_svg(
    series: Mapping[str, Mapping[date, int]], start: date, end: date, colour: str
) -> bytes:
    """A line per case over the days from ``start`` to ``end``, as a standalone SVG file."""
    days = days_between(start, end)
    top = nice_top(max((n for c in series.values() for d, n in c.items() if d in days), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(i: int) -> float:
        return LEFT + (plot_w * i / max(1, len(days) - 1))

    def y(n: int) -> float:
        return TOP + plot_h - plot_h * n / max(1, top)

    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" aria-labelledby="title desc" '
        'font-family="sans-serif" font-size="11">',
        f'<title id="title">{TITLE}</title>',
        f'<desc id="desc">{escape(describe(series, days))}</desc>',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        *_grid(top, days, x, y),
        f'<line x1="{LEFT}" y1="{y(0):.1f}" x2="{LEFT + plot_w}" y2="{y(0):.1f}" '
        f"stroke={quoteattr(colour)}/>",
        f'<text x="12" y="{TOP + plot_h / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {TOP + plot_h / 2:.0f})">actions per day</text>',
    ]
    for n, (slug, counts) in enumerate(sorted(series.items())):
        stroke = PALETTE[n % len(PALETTE)]
        points = " ".join(f"{x(i):.1f},{y(counts.get(d, 0)):.1f}" for i, d in enumerate(days))
        parts.append(
            f'<polyline fill="none" stroke="{stroke}" stroke-width="1.8" points="{points}">'
            f"<title>{escape(slug)}</title></polyline>"
        )
        ly = TOP + 10 + 16 * n
        parts.append(
            f'<line x1="{WIDTH - RIGHT + 16}" y1="{ly - 4}" x2="{WIDTH - RIGHT + 36}" '
            f'y2="{ly - 4}" stroke="{stroke}" stroke-width="3"/>'
            f'<text x="{WIDTH - RIGHT + 42}" y="{ly}">{escape(slug)}</text>'
        )
    if not series:
        parts.append(
            f'<text x="{LEFT + plot_w / 2:.0f}" y="{TOP + plot_h / 2:.0f}" '
            'text-anchor="middle">no actions yet</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts).encode()


def _grid(
    top: int, days: Sequence[date], x: Callable[[int], float], y: Callable[[int], float]
) -> list[str]:
    """Four horizontal rules with their figures, and a date under every seventh day."""
    out = []
    for k in range(5):
        n = top * k // 4
        out.append(
            f'<line x1="{LEFT}" y1="{y(n):.1f}" x2="{WIDTH - RIGHT}" y2="{y(n):.1f}" '
            'stroke="#dddddd"/>'
            f'<text x="{LEFT - 6}" y="{y(n) + 4:.1f}" text-anchor="end">{n}</text>'
        )
    for i in range(0, len(days), 7):
        out.append(
            f'<text x="{x(i):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">'
            f"{days[i].strftime('%b %d')}</text>"
        )
    return out
