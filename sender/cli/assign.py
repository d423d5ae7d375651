"""`campaign assign`: give supporters their case(s)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from sender.audience.assignment import AssignReport, Strategy, assign
from sender.cli.common import CampaignOption, audited_change, campaign_id, console, open_database
from sender.staff.actions import What

HELP = """Assign cases to supporters who have none yet (every supporter not forgotten).

Safety exclusions always apply: a supporter never gets a case whose
excluded_countries list holds their country. Strategies:
balanced spreads supporters evenly over the active cases;
preference honours each supporter's case_preference when that case is active
and allowed, and balances the rest;
country balances within each country (every country's supporters spread
evenly over the cases allowed to them) while keeping the global spread even.
"""


def assign_command(
    strategy: Annotated[
        Strategy, typer.Option(help="balanced, preference or country")
    ] = Strategy.BALANCED,
    cases_per_supporter: Annotated[
        int, typer.Option(min=1, help="How many cases each supporter gets")
    ] = 1,
    seed: Annotated[int, typer.Option(help="Same seed, same data: same assignment")] = 0,
    reassign: Annotated[
        bool,
        typer.Option(
            "--reassign", help="Delete the campaign's assignments and assign everyone again"
        ),
    ] = False,
    campaign: CampaignOption = None,
) -> None:
    engine = open_database()
    report = audited_change(
        engine,
        What.ASSIGN,
        f"{strategy} x{cases_per_supporter}" + (" reassign" if reassign else ""),
        lambda: assign(
            engine, strategy, cases_per_supporter, seed, reassign, campaign_slug=campaign
        ),
        campaign_id=campaign_id(engine, campaign),
        detail=lambda r: (
            f"{r.assignments_created} created, {r.assignments_replaced} replaced,"
            f" {r.unassignable} unassignable of {r.supporters_considered} supporters"
        ),
    )
    console.print(_table(report))
    console.print(
        f"{report.assignments_created} assignments created for "
        f"{report.supporters_considered} supporters"
        + (f", {report.assignments_replaced} replaced" if reassign else "")
        + f"; unassignable: {report.unassignable}"
        + (f"; fewer cases than asked: {report.short}" if report.short else "")
        + (
            f"; preferences honoured: {report.preferences_honoured}"
            if report.strategy == Strategy.PREFERENCE
            else ""
        )
    )


def _table(report: AssignReport) -> Table:
    table = Table("case", "person", "status", "assignments", "share", title=f"{report.strategy}")
    for case in report.cases:
        table.add_row(
            case.slug, case.person, case.status, f"{case.assignments:,}", f"{case.share:.2%}"
        )
    return table
