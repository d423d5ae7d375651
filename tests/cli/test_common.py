"""Wide tables split into parts that each fit the terminal whole."""

from __future__ import annotations

import pytest
from rich.console import Console

from sender.cli.common import fitted_tables

HEADERS = ["case", *(f"metric number {n}" for n in range(8))]
ROWS = [["jani", *(f"{n * 1111:,}" for n in range(8))], ["all", *("12,345" for _ in range(8))]]


@pytest.mark.parametrize("width", [40, 80, 120])
def test_every_part_fits_and_nothing_is_cut(width: int) -> None:
    console = Console(width=width, record=True, file=None, force_terminal=False)
    tables = fitted_tables("Results", HEADERS, ROWS, width=width)
    with console.capture() as captured:
        for table in tables:
            console.print(table)
    text = captured.get()
    assert "…" not in text
    assert all(len(line) <= width for line in text.splitlines())
    shown = [c.header for t in tables for c in t.columns[1:]]
    assert shown == HEADERS[1:]
    assert all(t.columns[0].header == "case" for t in tables)
    assert len(tables) > 1  # 152 columns wide in one piece


def test_a_narrow_table_stays_one_part() -> None:
    tables = fitted_tables("Results", ["case", "sent"], [["jani", "3"]], width=80)
    assert len(tables) == 1 and tables[0].title == "Results"
