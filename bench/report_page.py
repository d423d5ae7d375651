"""The workspace's Reports page over many campaigns' totals: this code against the code before.

    .venv/bin/python -m bench.report_page [--campaigns 6] [--runs 30]

Fills a throwaway PostgreSQL with `--campaigns` campaigns, each of 20 cases,
2 waves, 4 languages and 60 days of the 11 figures in report_counts (the shape
of a season's totals), then times GET /workspace/reports/ through the Flask
app, signed in: one campaign by case, and two campaigns compared. Each page is
timed with the current code and with the code before (the report rolled
actions up on every read, and its grouped query named waves the primary key
cannot find), alternating, in the same run. Prints p50/p95 and their ratio,
and the load average, since the host is shared.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from unittest import mock

from flask.testing import FlaskClient
from sqlalchemy import Engine, and_, func, or_, select, text
from sqlalchemy.orm import Session

from sender.core import db
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.models import Campaign, Case, ReportCount, Wave
from sender.devtools.services import postgres_server
from sender.report import campaigns as compared
from sender.report import tables, totals
from sender.web import create_app

CASES, WAVES, DAYS = 20, 2, 60
USER, PASSWORD = "bench", "bench-password-long-enough-1"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
FIGURES = [m.value for m in totals.Metric]  # the 11 figures
FILL = """INSERT INTO report_counts (case_id, wave_id, language, day, metric, count)
    SELECT c, w, l, date '2020-11-01' + :year * 365 + d, f, (c * 7 + d * 3 + w) % 97 + 1
    FROM unnest(CAST(:cases AS int[])) c, unnest(CAST(:waves AS int[])) w,
    unnest(ARRAY['en','es','fr','ar']) l, generate_series(0, :days - 1) d,
    unnest(CAST(:figures AS text[])) f"""


def fill(engine: Engine, campaigns: int) -> list[str]:
    start = datetime(2020, 11, 1, tzinfo=UTC)
    slugs = []
    for year in range(campaigns):
        slug = f"w4r-{2020 + year}"
        with session_scope(engine) as session:
            campaign = Campaign(
                slug=slug,
                name=slug,
                window_start=start,
                window_end=start,
                from_email="c@example.org",
                from_name="C",
            )
            session.add(campaign)
            session.flush()
            cases = [
                Case(campaign_id=campaign.id, slug=f"case{n}", person=f"Person {n}", country="ZZ")
                for n in range(CASES)
            ]
            waves = [
                Wave(
                    campaign_id=campaign.id,
                    name=f"wave{n}",
                    kind="case_email",
                    audience="all_assigned",
                    starts_at=start,
                    ends_at=start,
                )
                for n in range(WAVES)
            ]
            session.add_all([*cases, *waves])
            session.flush()
            params = {
                "year": year,
                "cases": [c.id for c in cases],
                "waves": [w.id for w in waves],
                "days": DAYS,
                "figures": FIGURES,
            }
            session.execute(text(FILL), params)
        slugs.append(slug)
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    return slugs


def _rolled_totals_before(
    session: Session, by: totals.Dimension, scope: Any, figures: object = None
) -> list[Any]:
    """The grouped query as it was: no case_id test, so the whole table is read, and every
    figure, whatever the page shows (`figures` is ignored)."""
    column = totals.DIMENSION_COLUMNS[by]
    query = select(column, ReportCount.metric, func.sum(ReportCount.count)).group_by(
        column, ReportCount.metric
    )
    if scope is not None:
        query = query.where(
            or_(
                ReportCount.wave_id.in_(scope.wave_ids),
                and_(ReportCount.wave_id == 0, ReportCount.case_id.in_(scope.case_ids)),
            )
        )
    return list(session.execute(query).all())


@contextmanager
def code_before(engine: Engine) -> Iterator[None]:
    """The report as it was: a roll-up on every read, then the unscoped grouped query."""
    build = totals.build_report

    def rolled_then_built(*args: Any, **kwargs: Any) -> dict[str, Any]:
        totals.catch_up(engine, datetime.now(UTC))
        return build(*args, **kwargs)

    with (
        mock.patch.object(totals, "_rolled_totals", _rolled_totals_before),
        mock.patch.object(tables, "build_report", rolled_then_built),
        mock.patch.object(compared, "build_report", rolled_then_built),
    ):
        yield


def signed_in(engine: Engine) -> FlaskClient:
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        secret_key="bench-secret",
        staff_user=USER,
        staff_password=PASSWORD,
        public_base_url="http://localhost",
    )
    client = create_app(settings).test_client()
    match = _TOKEN.search(client.get("/login").get_data(as_text=True))
    assert match, "no CSRF token on /login"
    form = {"username": USER, "password": PASSWORD, "csrf_token": match.group(1)}
    assert client.post("/login", data=form).status_code == 302
    return client


def timed(get: Callable[[], int]) -> float:
    began = time.perf_counter()
    assert get() == 200
    return (time.perf_counter() - began) * 1000


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--campaigns", type=int, default=6)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with postgres_server() as pg:
        engine = db.get_engine(pg.url)
        db.upgrade(engine)
        slugs = fill(engine, max(args.campaigns, 2))
        with engine.connect() as connection:
            rows = connection.scalar(text("SELECT count(*) FROM report_counts"))
        client = signed_in(engine)
        pages = {
            "one campaign by case": f"/workspace/reports/?campaign={slugs[-1]}&by=case",
            "two compared by case": (
                f"/workspace/reports/?campaign={slugs[-1]}&compare={slugs[-2]}&by=case"
            ),
        }
        results: dict[tuple[str, str], list[float]] = {}
        for name, url in pages.items():
            assert client.get(url).status_code == 200  # warm: templates, pools
            for _ in range(args.runs):
                with code_before(engine):
                    results.setdefault((name, "before"), []).append(
                        timed(lambda u=url: client.get(u).status_code)
                    )
                results.setdefault((name, "after"), []).append(
                    timed(lambda u=url: client.get(u).status_code)
                )
        engine.dispose()
    print(f"{len(slugs)} campaigns, {rows:,} rows in report_counts, {args.runs} runs per page")
    for name in pages:
        before, after = results[(name, "before")], results[(name, "after")]
        print(
            f"{name}: before p50 {statistics.median(before):.0f} ms p95 {p95(before):.0f} ms;"
            f" after p50 {statistics.median(after):.0f} ms p95 {p95(after):.0f} ms;"
            f" p95 ratio after/before {p95(after) / p95(before):.2f}"
        )
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
