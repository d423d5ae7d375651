"""The report's charts drawn to files and bytes, with nothing fetched from elsewhere."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from sender.core.errors import InvalidInput
from sender.report.charts import actions_svg, write_chart

COUNTS = {"sends": 4, "deliveries": 3, "human_opens": 2, "clicks": 1, "acted": 1}
REPORT = {"by": "case", "rows": [{"label": "bird (Nassima)", "counts": COUNTS}]}


def test_a_report_chart_is_a_png(tmp_path: Path) -> None:
    path = write_chart(REPORT, tmp_path / "cases.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InvalidInput, match="cannot write chart"):
        write_chart(REPORT, tmp_path / "missing" / "x.png")


def test_actions_svg_has_a_line_per_case_and_no_date_stamp() -> None:
    series = {"bird": {date(2020, 12, 2): 3}, "popi": {date(2020, 12, 1): 1}}
    svg = actions_svg(series, date(2020, 12, 1), date(2020, 12, 3), "#000000").decode()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "bird" in svg and "popi" in svg
    assert "<dc:date>" not in svg  # no drawing time in the file
    assert "<image" not in svg and 'href="http' not in svg  # nothing fetched from elsewhere


def test_actions_svg_without_actions_says_so() -> None:
    svg = actions_svg({}, date(2020, 12, 1), date(2020, 12, 1), "#000000").decode()
    assert "no actions yet" in svg
