"""The report as tables: one model that the workspace page, its CSV download and the CLI share.

Each view (a campaign by case, wave, language or day; a subject test's
variants; campaigns compared) becomes a `View` of `Table`s holding raw values.
The page and the CLI print `Table.shown()`, the download writes `View.csv()`,
so the three read the same cells and cannot disagree about a figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine

from sender.core.csvsafe import to_csv
from sender.core.errors import InvalidInput
from sender.report.campaigns import compare_campaigns
from sender.report.totals import Dimension, build_report
from sender.report.variants import Figure, TestReport, figures, summary, wave_tests

Value = str | int | float | bool | None


class By(StrEnum):
    """What a report's rows are: the running totals' dimensions, or a subject test's variants."""

    CASE = Dimension.CASE.value
    WAVE = Dimension.WAVE.value
    LANGUAGE = Dimension.LANGUAGE.value
    DAY = Dimension.DAY.value
    VARIANT = "variant"


def by_named(text: str) -> By:
    """The dimension a person typed or a query string named; InvalidInput lists the choices."""
    try:
        return By(text.strip().lower())
    except ValueError:
        choices = ", ".join(b.value for b in By)
        raise InvalidInput(f"by must be one of {choices}, not {text!r}") from None


class Kind(StrEnum):
    TEXT = "text"
    COUNT = "count"
    RATE = "rate"  # a fraction, shown as a percentage


@dataclass(frozen=True)
class Column:
    key: str  # the CSV header
    heading: str  # what a person reads
    kind: Kind = Kind.COUNT
    shown: bool = True  # False: in the CSV only (ids, the wave of a per-wave table)
    in_csv: bool = True  # False: a reading aid on screen only ("B (winner)")
    charted: bool = False  # drawn as bars beside the table


@dataclass(frozen=True)
class Table:
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Value, ...], ...]
    total: tuple[Value, ...] | None = None  # the "all" row
    keep: int = 1  # leading shown columns that name the row
    note: str | None = None

    def headings(self) -> list[str]:
        return [c.heading for c in self.columns if c.shown]

    def shown(self) -> list[list[str]]:
        """Every row as text, the total last: what the page and the terminal print."""
        every = [*self.rows, *([self.total] if self.total is not None else [])]
        return [
            [
                show(value, column.kind)
                for value, column in zip(row, self.columns, strict=True)
                if column.shown
            ]
            for row in every
        ]

    def series(self, key: str) -> list[tuple[str, float, str]]:
        """(row name, value, value as shown) of one column, the total left out: a chart's bars."""
        index = next(i for i, c in enumerate(self.columns) if c.key == key)
        kind = self.columns[index].kind
        names = [i for i, c in enumerate(self.columns) if c.shown][: self.keep]
        return [
            (
                " · ".join(str(row[i]) for i in names),
                float(row[index] or 0),
                show(row[index], kind),
            )
            for row in self.rows
        ]

    def charted(self) -> list[Column]:
        return [c for c in self.columns if c.charted]


@dataclass(frozen=True)
class View:
    title: str
    by: By
    campaigns: tuple[str, ...]
    tables: tuple[Table, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def csv(self) -> str:
        """Formula-safe CSV of the tables laid out as the first one (a breakdown such as
        bounces by class has its own columns and stays on screen)."""
        if not self.tables:
            return to_csv([self.by.value], [])
        first = self.tables[0]
        rows: list[Sequence[Value]] = []
        for table in self.tables:
            if table.columns == first.columns:
                rows += [*table.rows, *([table.total] if table.total is not None else [])]
        keep = [i for i, c in enumerate(first.columns) if c.in_csv]
        return to_csv(
            [first.columns[i].key for i in keep], ([row[i] for i in keep] for row in rows)
        )

    def filename(self) -> str:
        return f"report-{'-'.join(self.campaigns) or 'all'}-by-{self.by.value}.csv"


def show(value: Value, kind: Kind) -> str:
    if value is None:
        return "-"
    if kind is Kind.RATE and isinstance(value, int | float):
        return f"{value:.1%}"
    if kind is Kind.COUNT and isinstance(value, int | float):
        return f"{value:,}"
    return str(value)


# The running totals' figures drawn as bars: what was sent and who acted.
CHARTED = ("sends", "acted")


def report_view(report: Mapping[str, Any]) -> View:
    """sender.report.totals.build_report's answer: the figures, then bounces by class if any."""
    by = By(report["by"])
    metrics = [str(m) for m in report["metrics"]]
    columns = (
        Column(by.value, by.value, Kind.TEXT, shown=False),
        Column("label", by.value, Kind.TEXT),
        *(
            Column(
                m,
                m.replace("_", " "),
                Kind.RATE if m == "action_rate" else Kind.COUNT,
                charted=m in CHARTED,
            )
            for m in metrics
        ),
    )
    campaign = report.get("campaign")
    tables = [
        Table(
            f"Campaign results by {by.value}" + (f": {campaign}" if campaign else ""),
            columns,
            tuple(
                (row["key"], row["label"], *(row["counts"][m] for m in metrics))
                for row in report["rows"]
            ),
            ("all", "all", *(report["totals"][m] for m in metrics)),
        )
    ]
    if any(report["bounce_totals"].values()):
        tables.append(_bounce_table(report, by))
    return View(
        tables[0].title, by, (campaign,) if campaign else (), tuple(tables), _unattributed(report)
    )


def _bounce_table(report: Mapping[str, Any], by: By) -> Table:
    classes = [str(c) for c in report["bounce_classes"]]
    columns = (
        Column("label", by.value, Kind.TEXT),
        *(Column(c, c.replace("_", " ")) for c in classes),
    )
    bounced = [row for row in report["rows"] if any(row["bounces"].values())]
    return Table(
        f"Bounces by classification, by {by.value}",
        columns,
        tuple((row["label"], *(row["bounces"][c] for c in classes)) for row in bounced),
        ("all", *(report["bounce_totals"][c] for c in classes)),
    )


def _unattributed(report: Mapping[str, Any]) -> tuple[str, ...]:
    found = report.get("unattributed")
    if not found:
        return ()
    counts = found["counts"]
    figures_ = ", ".join(f"{v} {k}" for k, v in counts.items() if v and k != "action_rate")
    return (f"not attributable to any campaign (kept out of the totals): {figures_}",)


VARIANT_COLUMNS = (
    Column("wave", "wave", Kind.TEXT, shown=False),
    Column("variant", "variant", Kind.TEXT, shown=False),
    Column("named", "variant", Kind.TEXT, in_csv=False),
    Column("part", "part", Kind.TEXT),
    Column("sent", "sent", charted=True),
    Column("human_opens", "human opens"),
    Column("machine_opens", "machine opens"),
    Column("human_clicks", "human clicks"),
    Column("machine_clicks", "machine clicks"),
    Column("actions", "actions", charted=True),
    Column("metric", "metric", Kind.TEXT, shown=False),
    Column("rate", "rate", Kind.RATE),
    Column("low", "interval low", Kind.RATE),
    Column("high", "interval high", Kind.RATE),
    Column("winner", "winner", Kind.TEXT, shown=False),
)


def variant_view(campaign: str | None, tests: Sequence[TestReport]) -> View:
    """One table per wave that runs a subject test (sender.report.variants' figures)."""
    tables = tuple(
        Table(
            f"wave {test.wave} by variant",
            VARIANT_COLUMNS,
            tuple(_variant_row(test.wave, f) for f in figures(test)),
            keep=2,
            note=summary(test),
        )
        for test in tests
    )
    notes = () if tests else ("no wave of this campaign runs a subject test",)
    title = "Subject tests by variant" + (f": {campaign}" if campaign else "")
    return View(title, By.VARIANT, (campaign,) if campaign else (), tables, notes)


def _variant_row(wave: str, f: Figure) -> tuple[Value, ...]:
    named = f.variant + (" (winner)" if f.winner else "")
    return (
        wave,
        f.variant,
        named,
        f.part,
        f.sent,
        f.human_opens,
        f.machine_opens,
        f.human_clicks,
        f.machine_clicks,
        f.actions,
        f.metric,
        f.rate,
        f.low,
        f.high,
        f.winner,
    )


def comparison_view(comparison: Mapping[str, Any]) -> View:
    """sender.report.campaigns.compare_campaigns' answer: a table per figure, the campaigns
    side by side, so each reads as a comparison and fits a narrow screen."""
    by = By(comparison["by"])
    slugs = [str(s) for s in comparison["campaigns"]]
    tables = []
    for metric in comparison["metrics"]:
        kind = Kind.RATE if metric == "action_rate" else Kind.COUNT
        columns = (
            Column(by.value, by.value, Kind.TEXT),
            Column("metric", "figure", Kind.TEXT, shown=False),
            *(Column(s, s, kind, charted=True) for s in slugs),
        )
        rows = tuple(
            (row["key"], metric, *(_compared(row["campaigns"][s], metric) for s in slugs))
            for row in comparison["rows"]
        )
        total = ("all", metric, *(_compared(comparison["totals"][s], metric) for s in slugs))
        tables.append(Table(f"{metric.replace('_', ' ')}, compared", columns, rows, total))
    return View(f"{', '.join(slugs)} compared by {by.value}", by, tuple(slugs), tuple(tables))


def _compared(cells: Mapping[str, Any] | None, metric: str) -> Value:
    return None if cells is None else cells[metric]


def build_view(engine: Engine, by: By, campaign: str | None, compare: Sequence[str] = ()) -> View:
    """The view a page, a download or a command asks for. `compare` adds campaigns to set
    beside `campaign` (or, without one, names them all)."""
    if compare:
        if by is By.VARIANT:
            raise InvalidInput(
                "variants belong to one wave's subject test: compare by case, wave or language"
            )
        slugs = [*([campaign] if campaign else []), *compare]
        return comparison_view(compare_campaigns(engine, slugs, Dimension(by)))
    if by is By.VARIANT:
        return variant_view(campaign, wave_tests(engine, campaign))
    return report_view(build_report(engine, Dimension(by), campaign))
