"""The report's charts: a PNG of a report's rows, and the dashboard's actions per day in SVG."""

from __future__ import annotations

import io
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import matplotlib

from sender.core.errors import InvalidInput

matplotlib.use("Agg")  # files only: no display on servers; chosen before pyplot loads
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

CHARTED = ("sends", "deliveries", "human_opens", "clicks", "acted")


def write_chart(report: dict[str, Any], path: Path) -> Path:
    """Draw the report's rows as grouped bars; raises InvalidInput if it cannot be written."""
    rows = report["rows"]
    figure, axes = plt.subplots(figsize=(max(6.0, 1.2 * len(rows) + 3), 4.5))
    width = 0.8 / len(CHARTED)
    for index, metric in enumerate(CHARTED):
        positions = [n + index * width for n in range(len(rows))]
        axes.bar(positions, [row["counts"][metric] for row in rows], width, label=metric)
    axes.set_xticks([n + 0.4 - width / 2 for n in range(len(rows))])
    axes.set_xticklabels([row["label"] for row in rows], rotation=20, ha="right", fontsize=8)
    axes.set_title(f"Campaign results by {report['by']}")
    axes.legend(fontsize=8)
    figure.tight_layout()
    try:
        figure.savefig(path, format="png", dpi=100)
    except OSError as error:
        raise InvalidInput(f"cannot write chart {path}: {error}") from error
    finally:
        plt.close(figure)
    return path


def actions_svg(
    series: Mapping[str, Mapping[date, int]], start: date, end: date, colour: str
) -> bytes:
    """A line per case over the days from ``start`` to ``end``, as SVG (no JavaScript, no CDN)."""
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    figure = Figure(figsize=(9, 3.2))  # not pyplot: no global state shared by web threads
    axes = figure.subplots()
    for slug, counts in sorted(series.items()):
        values = [counts.get(d, 0) for d in days]
        axes.plot(days, values, label=slug, linewidth=1.8)  # type: ignore[arg-type]  # dates work
    axes.set_ylabel("actions per day")
    axes.grid(True, color="#dddddd")
    axes.set_facecolor("#ffffff")
    figure.patch.set_facecolor("#ffffff")
    if series:
        axes.legend(loc="upper left", fontsize="small", frameon=False)
    else:
        axes.text(0.5, 0.5, "no actions yet", ha="center", va="center", transform=axes.transAxes)
    axes.spines["bottom"].set_color(colour)
    figure.autofmt_xdate()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    return buffer.getvalue()
