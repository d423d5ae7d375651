"""The per-case report over millions of events on PostgreSQL: rollup vs plain GROUP BY.

    .venv/bin/python -m bench.report [--events 5000000]

Fills a throwaway PostgreSQL in SQL (generate_series): two campaigns of 5 cases and 3 waves,
events/5 supporters and sent messages, the events (a realistic mix) and one
action per open/click event, as sender.track.actions would store them. Running
totals are then built by the production code path for actions
(`reports.roll_up_actions`) and by one SQL aggregate each for delivery and
bounce counts (what `reports.add_counts` adds batch by batch) and for sends
(what `reports.count_sends` adds when the send path marks messages SENT). It times
`build_report(by=case)` against the naive plain GROUP BY over events and
actions, in the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import UTC, datetime

from sqlalchemy import Engine, text

from sender.core import db
from sender.core.db import session_scope
from sender.core.models import Campaign, Case, Wave
from sender.devtools.services import postgres_server
from sender.report.totals import ROLL_UP_CHUNK, Dimension, build_report, roll_up_actions
from sender.track.providers.sendgrid import PROVIDER

CAMPAIGNS = ("w4r-2020", "w4r-2026")
SETUP = [
    """INSERT INTO supporters (email, email_hash, language, timezone, consent, status,
       created_at, updated_at) SELECT 's' || n || '@example.org', md5(n::text) || md5(n::text),
       (ARRAY['en','es','fr','ar'])[n % 4 + 1], 'UTC', true, 'subscribed', now(), now()
       FROM generate_series(1, :people) n""",
    """INSERT INTO messages (wave_id, supporter_id, case_id, language, status, sent_at, created_at)
       SELECT n % 6 + 1, n, n % 5 + 1 + CASE WHEN n % 6 >= 3 THEN 5 ELSE 0 END,
       (ARRAY['en','es','fr','ar'])[n % 4 + 1], 'sent',
       timestamptz '2020-12-01' + (n % 20) * interval '1 day', now()
       FROM generate_series(1, :people) n""",
    # Event mix per message: processed, delivered, open, open (machine 1 in 3), click.
    """INSERT INTO events (provider, provider_event_id, event_type, raw_type, email_hash,
       message_id, supporter_id, case_id, wave_id, batch_key, occurred_at, received_at,
       processed_at, raw)
       SELECT CAST(:provider AS text), 'ev' || n,
       (ARRAY['queued','delivered','opened','opened','clicked'])[n % 5 + 1],
       (ARRAY['processed','delivered','open','open','click'])[n % 5 + 1], NULL, n / 5 + 1,
       n / 5 + 1,
       (n / 5 + 1) % 5 + 1 + CASE WHEN (n / 5 + 1) % 6 >= 3 THEN 5 ELSE 0 END,
       (n / 5 + 1) % 6 + 1, 'k' || n / 5000,
       timestamptz '2020-12-01' + (n % 20) * interval '1 day', now(), now(),
       jsonb_build_object('event', 'x', 'sg_event_id', 'ev' || n)
       FROM generate_series(0, :events - 1) n""",
    """INSERT INTO actions (supporter_id, case_id, wave_id, message_id, kind, url, source,
       dedupe_key, occurred_at, acting)
       SELECT supporter_id, case_id, wave_id, message_id,
       CASE WHEN event_type = 'clicked' THEN 'clicked'
            WHEN (id % 3) = 0 THEN 'opened_machine' ELSE 'opened' END,
       NULL, CAST(:provider AS text), CAST(:key_prefix AS text) || ':' || provider_event_id,
       occurred_at,
       event_type = 'clicked' AND supporter_id % 4 = 0
       FROM events WHERE event_type IN ('opened', 'clicked')""",
    # What reports.add_counts accumulates batch by batch for deliveries and bounces.
    """INSERT INTO report_counts (case_id, wave_id, language, day, metric, count)
       SELECT e.case_id, e.wave_id, m.language, (e.occurred_at AT TIME ZONE 'UTC')::date,
       CASE e.event_type WHEN 'delivered' THEN 'deliveries' ELSE 'bounces' END, count(*)
       FROM events e JOIN messages m ON m.id = e.message_id
       WHERE e.event_type IN ('delivered', 'bounced') GROUP BY 1, 2, 3, 4, 5""",
    # What reports.count_sends adds as sender.send.store marks each batch's messages SENT.
    """INSERT INTO report_counts (case_id, wave_id, language, day, metric, count)
       SELECT case_id, wave_id, language, (sent_at AT TIME ZONE 'UTC')::date, 'sends', count(*)
       FROM messages WHERE sent_at IS NOT NULL GROUP BY 1, 2, 3, 4""",
    "ANALYZE",
]

NAIVE = [
    """SELECT case_id, event_type, count(*) FROM events GROUP BY 1, 2""",
    """SELECT case_id, kind, count(*) FROM actions GROUP BY 1, 2""",
    """SELECT case_id, count(DISTINCT supporter_id) FROM actions WHERE acting GROUP BY 1""",
    """SELECT case_id, count(*) FROM messages WHERE sent_at IS NOT NULL GROUP BY 1""",
]


def fill(engine: Engine, events: int) -> float:
    began = time.perf_counter()
    start = datetime(2020, 12, 1, tzinfo=UTC)
    # Two campaigns of 5 cases and 3 waves each; every message belongs to one of them.
    for year, slug in enumerate(CAMPAIGNS):
        with session_scope(engine) as session:  # the few rows with defaults: through the ORM
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
            session.add_all(
                Case(campaign_id=campaign.id, slug=f"case{n}", person=f"Person {n}", country="ZZ")
                for n in range(5 * year + 1, 5 * year + 6)
            )
            session.flush()
            session.add_all(
                Wave(
                    campaign_id=campaign.id,
                    name=f"wave{n}",
                    kind="case_email",
                    audience="all_assigned",
                    starts_at=start,
                    ends_at=start,
                )
                for n in range(1, 4)
            )
    # Stored as SendGrid's events and actions are: under its name and action key prefix.
    params = {
        "events": events,
        "people": events // 5 + 1,
        "provider": PROVIDER.name,
        "key_prefix": PROVIDER.action_key_prefix,
    }
    with engine.begin() as connection:
        for statement in SETUP:
            connection.execute(text(statement), params)
    return time.perf_counter() - began


def roll_up(engine: Engine) -> float:
    began = time.perf_counter()
    done = ROLL_UP_CHUNK
    while done == ROLL_UP_CHUNK:
        with session_scope(engine) as session:
            done = roll_up_actions(session, datetime.now(UTC))
    return time.perf_counter() - began


def best_of(runs: int, work: object) -> float:
    timings = []
    for _ in range(runs):
        began = time.perf_counter()
        work()  # type: ignore[operator]
        timings.append(time.perf_counter() - began)
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5_000_000)
    args = parser.parse_args()
    with postgres_server() as pg:
        engine = db.get_engine(pg.url)
        db.upgrade(engine)
        filled = fill(engine, args.events)
        print(f"filled {args.events:,} events in {filled:.0f} s", flush=True)
        rolled = roll_up(engine)
        print(f"rolled actions up in {rolled:.0f} s", flush=True)
        report = build_report(engine, Dimension.CASE)
        whole = best_of(5, lambda: build_report(engine, Dimension.CASE))
        per_campaign = [build_report(engine, Dimension.CASE, slug) for slug in CAMPAIGNS]
        fast = best_of(5, lambda: build_report(engine, Dimension.CASE, CAMPAIGNS[1]))

        def naive() -> None:
            with engine.connect() as connection:
                for query in NAIVE:
                    connection.execute(text(query)).all()

        slow = best_of(3, naive)
        with engine.connect() as connection:
            live_sends = connection.scalar(
                text("SELECT count(*) FROM messages WHERE sent_at IS NOT NULL")
            )
        engine.dispose()
    totals = report["totals"]
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
    )
    print(
        f"{args.events:,} events, {totals['sends']:,} sent messages, "
        f"{totals['human_opens'] + totals['machine_opens'] + totals['clicks']:,} actions "
        f"(filled in {filled:.0f} s, actions rolled up in {rolled:.0f} s)"
    )
    print(
        f"sends in the report {totals['sends']:,}, live count of sent messages {live_sends:,}: "
        f"{'OK' if totals['sends'] == live_sends else 'MISMATCH'}"
    )
    apart = sum(r["totals"]["sends"] for r in per_campaign)
    print(
        f"sends per campaign {' + '.join(str(r['totals']['sends']) for r in per_campaign)}"
        f" = {apart:,}: {'OK' if apart == totals['sends'] else 'MISMATCH'}"
    )
    print(
        f"one campaign's per-case report from running totals: {fast * 1000:.0f} ms (best of 5);"
        f" the whole database's (the query before campaigns): {whole * 1000:.0f} ms,"
        f" ratio {fast / whole:.2f}; load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"plain GROUP BY over events/actions/messages: {slow * 1000:.0f} ms (best of 3); "
        f"ratio {slow / fast:.1f}x"
    )


if __name__ == "__main__":
    main()
