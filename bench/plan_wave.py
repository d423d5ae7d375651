"""Benchmark: plan one wave (eligibility, slots, batches) for N supporters on PostgreSQL.

    .venv/bin/python -m bench.plan_wave [--supporters N] [--sample N]

Fills a throwaway PostgreSQL with supporters in 40 time zones, two cases and
one assignment each, then times `sender.send.planner.plan_wave` (set-based SQL). For
comparison, on a database of `--sample` supporters it times the set-based
path and a naive one (per supporter: eligibility queries, a slot computed in
Python, one ORM Message row, batches numbered in Python) and prints the ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import sys
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, exists, func, select, text
from sqlalchemy.orm import Session

from bench.bulk import bench_campaign
from sender.core import db
from sender.core.config import Settings
from sender.core.models import (
    Action,
    Assignment,
    Batch,
    Campaign,
    Case,
    Message,
    Supporter,
    Suppression,
    Wave,
)
from sender.core.vocabulary import WaveStatus
from sender.devtools.services import postgres_server
from sender.send.planner import plan_wave
from sender.send.slots import slot_for

SETTINGS = Settings(secret_key="bench")
START = datetime(2020, 12, 1, tzinfo=UTC)
ZONES = [
    "UTC", "Europe/London", "Europe/Madrid", "Europe/Athens", "Europe/Moscow", "Asia/Dubai",
    "Asia/Karachi", "Asia/Kolkata", "Asia/Kathmandu", "Asia/Dhaka", "Asia/Bangkok",
    "Asia/Shanghai", "Asia/Tokyo", "Australia/Adelaide", "Australia/Sydney", "Pacific/Auckland",
    "America/Sao_Paulo", "America/Argentina/Buenos_Aires", "America/New_York",
    "America/Chicago", "America/Denver", "America/Los_Angeles", "America/Anchorage",
    "Pacific/Honolulu", "America/Mexico_City", "America/Bogota", "America/Lima",
    "America/Santiago", "America/Halifax", "America/St_Johns", "Africa/Lagos", "Africa/Cairo",
    "Africa/Nairobi", "Africa/Johannesburg", "Asia/Tehran", "Asia/Kabul", "Asia/Yangon",
    "Asia/Jakarta", "Asia/Manila", "Asia/Seoul",
]  # fmt: skip


def fill(engine: Engine, count: int) -> None:
    stamp = datetime(2020, 9, 1, tzinfo=UTC)
    campaign_id = bench_campaign(engine, START)
    with db.session_scope(engine) as session:
        for slug in ("first", "second"):
            session.add(Case(campaign_id=campaign_id, slug=slug, person=slug, country="MA"))
    with engine.begin() as connection:
        cursor = connection.connection.cursor()
        columns = "email, email_hash, language, timezone, consent, status, created_at, updated_at"
        with cursor.copy(f"COPY supporters ({columns}) FROM STDIN") as copy:
            for n in range(count):
                email = f"s{n}@example.org"
                digest = hashlib.sha256(email.encode()).hexdigest()
                language = ("en", "es", "fr", "ar")[n % 4]
                row = (email, digest, language, ZONES[n % len(ZONES)], n % 50 != 0)
                copy.write_row((*row, "subscribed", stamp, stamp))
        connection.execute(
            text(
                "INSERT INTO assignments (supporter_id, case_id, strategy, created_at) "
                "SELECT s.id, 1 + s.id % 2, 'bench', now() FROM supporters s"
            )
        )
        connection.execute(
            text(
                "INSERT INTO suppressions (email_hash, reason, created_at) "
                "SELECT email_hash, 'bounced', now() FROM supporters WHERE id % 97 = 0"
            )
        )
        connection.execute(text("ANALYZE"))


def new_wave(engine: Engine, name: str) -> int:
    with db.session_scope(engine) as session:
        wave = Wave(
            campaign_id=session.scalars(select(Campaign.id)).one(),
            name=name,
            kind="case_email",
            audience="all_assigned",
            status=WaveStatus.SCHEDULED,
            starts_at=START,
            ends_at=START + timedelta(days=2),
            subjects={"en": "x", "es": "x", "fr": "x", "ar": "x"},
        )
        session.add(wave)
        session.flush()
        return wave.id


def naive_plan(engine: Engine, wave_id: int) -> int:
    """What a loop over rows costs: queries and objects per supporter."""
    with Session(engine) as session:
        wave = session.get(Wave, wave_id)
        assert wave is not None
        window = (wave.local_window_start, wave.local_window_end)
        rows = session.execute(
            select(Supporter, Assignment.case_id)
            .join(Assignment, Assignment.supporter_id == Supporter.id)
            .order_by(Assignment.id)
        ).all()
        groups: dict[tuple[int, str, datetime], list[Message]] = {}
        seen: set[int] = set()
        for supporter, case_id in rows:
            if supporter.id in seen or not supporter.consent or supporter.status != "subscribed":
                continue
            checks = (
                exists().where(Suppression.email_hash == supporter.email_hash),
                exists().where(Action.supporter_id == supporter.id, Action.case_id == case_id),
                exists().where(Message.supporter_id == supporter.id, Message.status == "sent"),
            )
            if any(session.scalar(select(check)) for check in checks):
                continue
            slot = slot_for(supporter.timezone, wave.starts_at, wave.ends_at, window)
            if slot is None:
                continue
            seen.add(supporter.id)
            message = Message(
                wave_id=wave_id, supporter_id=supporter.id, case_id=case_id,
                language=supporter.language, status="planned",
            )  # fmt: skip
            session.add(message)
            groups.setdefault((case_id, supporter.language, slot.slot_at), []).append(message)
        session.flush()
        for (case_id, language, slot_at), messages in groups.items():
            for seq, start in enumerate(range(0, len(messages), 1000)):
                chunk = messages[start : start + 1000]
                batch = Batch(
                    wave_id=wave_id, case_id=case_id, language=language, slot_at=slot_at,
                    seq=seq, send_after=slot_at, send_before=slot_at + timedelta(hours=2),
                    size=len(chunk), status="pending",
                )  # fmt: skip
                session.add(batch)
                session.flush()
                for message in chunk:
                    message.batch_id = batch.id
        session.commit()
        return len(seen)


def timed_plan(engine: Engine, name: str) -> tuple[float, int]:
    wave = new_wave(engine, name)
    started = time.perf_counter()
    result = plan_wave(engine, SETTINGS, wave, START)
    assert result is not None
    return time.perf_counter() - started, result.messages


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--supporters", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=10_000)
    args = parser.parse_args()
    print(f"machine: nproc={os.cpu_count()} {platform.machine()} python {sys.version.split()[0]}")
    with postgres_server() as server:
        base = db.normalise_url(server.url)
        engine = db.get_engine(base)
        db.upgrade(engine)
        fill(engine, args.sample)
        fast, planned = timed_plan(engine, "sample-fast")
        with db.session_scope(engine) as session:  # the naive run must see no earlier wave
            session.execute(text("DELETE FROM batches; DELETE FROM messages; DELETE FROM waves"))
        started = time.perf_counter()
        naive_planned = naive_plan(engine, new_wave(engine, "sample-naive"))
        naive = time.perf_counter() - started
        print(
            f"sample {args.sample:,} supporters: set-based {fast:.2f}s ({planned:,} planned), "
            f"naive {naive:.2f}s ({naive_planned:,} planned): "
            f"naive/set-based = {naive / fast:.1f}x"
        )
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        db.upgrade(engine)
        started = time.perf_counter()
        fill(engine, args.supporters)
        print(f"filled {args.supporters:,} supporters in {time.perf_counter() - started:.1f}s")
        seconds, planned = timed_plan(engine, "full")
        with db.session_scope(engine) as session:
            batches = session.scalar(select(func.count()).select_from(Batch))
        print(f"planned {planned:,} messages in {batches:,} batches in {seconds:.1f}s "
              f"({planned / seconds:,.0f} messages/s)")  # fmt: skip


if __name__ == "__main__":
    main()
