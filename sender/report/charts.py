"""The report's chart as a PNG file (the dashboard's actions per day: sender.report.lines)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

from sender.core.errors import InvalidInput

matplotlib.use("Agg")  # files only: no display on servers; chosen before pyplot loads
import matplotlib.pyplot as plt

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
