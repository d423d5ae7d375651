"""The dashboard's actions chart, hand-drawn SVG: a line and legend entry per case, in words too."""

from __future__ import annotations

from datetime import date
from xml.etree import ElementTree

from sender.report.lines import actions_svg, days_between, describe, nice_top

SVG = "{http://www.w3.org/2000/svg}"
SERIES = {"popi": {date(2020, 12, 1): 1}, "bird": {date(2020, 12, 2): 3}}


def _parsed(svg: bytes) -> ElementTree.Element:
    return ElementTree.fromstring(svg)  # noqa: S314  # our own drawing, not outside input


def test_a_line_and_a_legend_entry_per_case_and_nothing_fetched() -> None:
    svg = actions_svg(SERIES, date(2020, 12, 1), date(2020, 12, 3), "#000000").decode()
    root = _parsed(svg.encode())  # well-formed, standalone
    lines = root.findall(f"{SVG}polyline")
    assert [line.findtext(f"{SVG}title") for line in lines] == ["bird", "popi"]
    assert len(lines[0].get("points", "").split()) == 3  # a point a day, zero days included
    texts = {t.text for t in root.iter(f"{SVG}text")}
    assert {"bird", "popi", "actions per day"} <= texts
    assert "<image" not in svg and 'href="http' not in svg  # nothing fetched from elsewhere


def test_the_chart_is_labelled_by_a_title_and_a_description_in_words() -> None:
    root = _parsed(actions_svg(SERIES, date(2020, 12, 1), date(2020, 12, 3), "#000"))
    assert root.get("role") == "img" and root.get("aria-labelledby") == "title desc"
    assert root.findtext(f"{SVG}title") == "Actions per case and day"
    assert root.findtext(f"{SVG}desc") == (
        "2020-12-01 to 2020-12-03. bird: 3 in all, most on 2020-12-02 (3); "
        "popi: 1 in all, most on 2020-12-01 (1)."
    )


def test_without_actions_it_says_so() -> None:
    svg = actions_svg({}, date(2020, 12, 1), date(2020, 12, 1), "#000000").decode()
    assert "no actions yet" in svg and "No actions yet." in svg


def test_the_axis_tops_at_a_round_figure_at_or_above_the_peak() -> None:
    assert [nice_top(n) for n in (0, 1, 3, 7, 20, 21, 4999, 5001)] == [
        1,
        1,
        5,
        10,
        20,
        50,
        5000,
        10000,
    ]
    days = days_between(date(2020, 12, 30), date(2021, 1, 2))
    assert len(days) == 4 and describe({}, days) == "No actions yet."
