"""The report's PNG chart, drawn to a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from sender.core.errors import InvalidInput
from sender.report.charts import write_chart

COUNTS = {"sends": 4, "deliveries": 3, "human_opens": 2, "clicks": 1, "acted": 1}
REPORT = {"by": "case", "rows": [{"label": "bird (Nassima)", "counts": COUNTS}]}


def test_a_report_chart_is_a_png(tmp_path: Path) -> None:
    path = write_chart(REPORT, tmp_path / "cases.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InvalidInput, match="cannot write chart"):
        write_chart(REPORT, tmp_path / "missing" / "x.png")
