"""Reports across campaigns: one per open campaign, and year over year.

Each campaign's report is its own (sender.report.totals.build_report with its
slug); nothing here adds one campaign's figures to another's.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Engine, select

from sender.core.db import session_scope
from sender.core.errors import InvalidInput
from sender.core.models import Campaign
from sender.core.vocabulary import CampaignStatus
from sender.report.totals import Dimension, build_report

# What a year-over-year table shows for each campaign.
COMPARED = ("sends", "acted", "action_rate", "letters", "human_opens", "clicks")


def open_campaign_slugs(engine: Engine) -> list[str]:
    with session_scope(engine) as session:
        query = (
            select(Campaign.slug)
            .where(Campaign.status == CampaignStatus.OPEN)
            .order_by(Campaign.window_start, Campaign.id)
        )
        return list(session.scalars(query))


def open_campaign_reports(
    engine: Engine, by: Dimension, only: Collection[str] | None = None
) -> list[dict[str, Any]]:
    """One report per open campaign, oldest window first; `only` keeps to those slugs."""
    slugs = [s for s in open_campaign_slugs(engine) if only is None or s in only]
    return [build_report(engine, by, slug) for slug in slugs]


def compare_campaigns(
    engine: Engine, slugs: Sequence[str], by: Dimension = Dimension.CASE
) -> dict[str, Any]:
    """The campaigns side by side, per case (by slug) or per language or wave.

    Cases change from year to year, so a case row is empty in a year that did
    not have it; a case carried over (same slug) lines up across years.
    """
    if len(slugs) < 2 or len(set(slugs)) != len(slugs):
        raise InvalidInput("--compare needs two or more different campaigns, e.g. a,b")
    if by is Dimension.DAY:
        raise InvalidInput("campaigns run on different days: compare by case, language or wave")
    reports = {slug: build_report(engine, by, slug, COMPARED) for slug in slugs}
    keys: dict[str, None] = {}
    for report in reports.values():
        for row in report["rows"]:
            keys.setdefault(_compare_key(by, row), None)
    rows = []
    for key in keys:
        cells = {}
        for slug, report in reports.items():
            match = next((r for r in report["rows"] if _compare_key(by, r) == key), None)
            cells[slug] = {m: match["counts"][m] for m in COMPARED} if match else None
        rows.append({"key": key, "campaigns": cells})
    totals = {slug: {m: r["totals"][m] for m in COMPARED} for slug, r in reports.items()}
    return {
        "by": by.value,
        "campaigns": list(slugs),
        "metrics": list(COMPARED),
        "rows": rows,
        "totals": totals,
    }


def _compare_key(by: Dimension, row: dict[str, Any]) -> str:
    """A case by its slug and a wave by its name (ids differ between campaigns)."""
    if by is Dimension.CASE:
        return str(row["label"]).split(" (", 1)[0]
    if by is Dimension.WAVE:
        return str(row["label"])
    return str(row["key"])
