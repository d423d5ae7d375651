"""Two campaigns with rolled-up totals, for the report tables, the workspace page and the CLI.

The figures are written straight into report_counts (sender.report.totals.add_counts),
as the roll-up would leave them: the report reads nothing else.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from sender.core.db import session_scope
from sender.core.models import Campaign, Case, Wave
from sender.core.vocabulary import CampaignStatus
from sender.report.totals import CountKey, Metric, add_counts

OLD, NEW = "w4r-2020", "w4r-2026"
# A wave name a spreadsheet would run as a formula, to prove the CSV is safe.
FORMULA = '=HYPERLINK("http://x")'


@dataclass(frozen=True)
class Reports:
    ids: dict[str, int]  # campaign slug -> id


def _campaign(session: Session, slug: str, start: datetime, status: str) -> Campaign:
    campaign = Campaign(
        slug=slug,
        name=f"Write for Rights {slug[-4:]}",
        window_start=start,
        window_end=start + timedelta(days=60),
        from_email="c@example.org",
        from_name="C",
        status=status,
    )
    session.add(campaign)
    session.flush()
    return campaign


def two_campaigns(engine: Engine, old_status: str = CampaignStatus.OPEN) -> Reports:
    """w4r-2020 and w4r-2026, both open, each with the cases `bird` and `popi` and the
    waves `first` and one named like a formula; `old_status` closes the older one."""
    counts: Counter[CountKey] = Counter()
    ids: dict[str, int] = {}
    with session_scope(engine) as session:
        for slug, year, status, sends, acted in (
            (OLD, 2020, old_status, 40, 4),
            (NEW, 2026, CampaignStatus.OPEN, 120, 30),
        ):
            campaign = _campaign(session, slug, datetime(year, 12, 1, tzinfo=UTC), status)
            ids[slug] = campaign.id
            bird = Case(campaign_id=campaign.id, slug="bird", person="Nassima", country="SA")
            other = Case(campaign_id=campaign.id, slug="popi", person="Popi", country="ZZ")
            session.add_all([bird, other])
            first, odd = (
                Wave(
                    campaign_id=campaign.id,
                    name=name,
                    kind="case_email",
                    audience="all_assigned",
                    starts_at=campaign.window_start,
                    ends_at=campaign.window_start + timedelta(days=1),
                )
                for name in ("first", FORMULA)
            )
            session.add_all([first, odd])
            session.flush()
            day = date(year, 12, 1)
            for case, share, wave in ((bird, 3, first), (other, 1, odd)):
                for language, part in (("en", 2), ("ar", 1)):
                    head = (case.id, wave.id, language, day)
                    counts[CountKey(*head, Metric.SENDS)] += sends * share * part
                    counts[CountKey(*head, Metric.DELIVERIES)] += sends * share * part - 1
                    counts[CountKey(*head, Metric.ACTED)] += acted * share * part
        add_counts(session, counts)
    return Reports(ids)
