"""A small campaign in the database and helpers to feed it provider events."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from sender.core.addresses import email_hash
from sender.core.db import session_scope
from sender.core.models import Batch, Campaign, Case, Message, Supporter, Wave
from sender.report.totals import count_sends
from sender.track.event_store import parse_batch, store_events
from sender.track.providers.sendgrid import PROVIDER

T0 = datetime(2020, 12, 1, 9, 0, tzinfo=UTC)
SEND_KEY = "seeded-batch-key"


@dataclass(frozen=True)
class World:
    case_id: int
    other_case_id: int
    wave_id: int
    later_wave_id: int
    supporters: list[int]
    messages: list[int]  # sent, one per supporter in wave 1
    planned: list[int]  # planned, one per supporter in the later wave
    send_key: str = SEND_KEY  # of the batch the sent messages went out in


def seed(engine: Engine, people: int = 3) -> World:
    with session_scope(engine) as s:
        campaign = Campaign(
            slug="w4r",
            name="W4R",
            window_start=T0,
            window_end=T0 + timedelta(60),
            from_email="c@example.org",
            from_name="C",
        )
        s.add(campaign)
        s.flush()
        case = Case(
            campaign_id=campaign.id,
            slug="jani",
            person="Jani",
            country="ZZ",
            action_url="https://example.org/act/jani",
        )
        other = Case(campaign_id=campaign.id, slug="nassima", person="Nassima", country="ZZ")
        s.add_all([case, other])
        s.flush()
        waves = [
            Wave(
                campaign_id=campaign.id,
                name=name,
                kind="case_email",
                audience="all_assigned",
                starts_at=T0,
                ends_at=T0 + timedelta(1),
            )
            for name in ("first", "reminder")
        ]
        s.add_all(waves)
        s.flush()
        supporters = [
            Supporter(
                email=f"p{n}@example.org",
                email_hash=email_hash(f"p{n}@example.org"),
                language="es" if n % 2 else "en",
            )
            for n in range(people)
        ]
        s.add_all(supporters)
        s.flush()
        batch = Batch(
            wave_id=waves[0].id,
            case_id=case.id,
            language="en",
            send_after=T0,
            send_before=T0 + timedelta(1),
            status="sent",
            size=people,
            send_key=SEND_KEY,
            sent_at=T0,
        )
        s.add(batch)
        s.flush()
        sent = [
            Message(
                wave_id=waves[0].id,
                batch_id=batch.id,
                supporter_id=p.id,
                case_id=case.id,
                language=p.language,
                status="sent",
                sent_at=T0,
            )
            for p in supporters
        ]
        planned = [
            Message(wave_id=waves[1].id, supporter_id=p.id, case_id=case.id, language=p.language)
            for p in supporters
        ]
        s.add_all(sent + planned)
        s.flush()
        # What sender.send.store adds when it marks messages SENT.
        count_sends(s, Counter((m.case_id, m.wave_id, m.language) for m in sent), T0)
        return World(
            case.id,
            other.id,
            waves[0].id,
            waves[1].id,
            [p.id for p in supporters],
            [m.id for m in sent],
            [m.id for m in planned],
        )


def sg_event(world: World, who: int, kind: str, n: int, **extra: Any) -> dict[str, Any]:
    return {
        "email": f"p{who}@example.org",
        "timestamp": int(T0.timestamp()) + n,
        "event": kind,
        "sg_event_id": f"e-{kind}-{who}-{n}",
        "message_id": str(world.messages[who]),
        "supporter_id": str(world.supporters[who]),
        "case_id": str(world.case_id),
        "wave_id": str(world.wave_id),
        "send_key": world.send_key,
        **extra,
    }


def ingest(engine: Engine, events: list[dict[str, Any]]) -> int:
    import json

    return store_events(
        engine, PROVIDER, parse_batch(PROVIDER, json.dumps(events).encode()), T0
    ).stored


def keep_odd_events(engine: Engine) -> list[str]:
    """A batch with two events that cannot be stored (kept raw) and one that can;
    returns the reasons the two are kept with, in batch order."""
    import json

    odd = [
        {"sg_event_id": "no-type", "timestamp": int(T0.timestamp())},
        {"event": "open", "sg_event_id": "no-time", "timestamp": "last tuesday"},
    ]
    good = {"event": "delivered", "sg_event_id": "fine", "timestamp": int(T0.timestamp())}
    body = json.dumps([odd[0], good, odd[1]]).encode()
    store_events(engine, PROVIDER, parse_batch(PROVIDER, body), T0)
    return ["event 0: missing or invalid event", "event 2: missing or invalid timestamp"]


def refuse_forged_events(engine: Engine) -> list[str]:
    """Store and process two forged events (sender.track.binding refuses both: one names
    a supporter without a message, one is another installation's); their reasons."""
    import json

    from sender.core.clock import MovableClock
    from sender.core.config import Settings
    from sender.track.actions import process_pending_events

    stamp = int(T0.timestamp())
    forged = [
        {
            "event": "unsubscribe",
            "email": "x@example.net",
            "timestamp": stamp,
            "sg_event_id": "forged-1",
            "supporter_id": "1",
        },
        {
            "event": "spamreport",
            "email": "y@example.net",
            "timestamp": stamp,
            "sg_event_id": "forged-2",
            "installation_id": "someone-else",
        },
    ]
    store_events(engine, PROVIDER, parse_batch(PROVIDER, json.dumps(forged).encode()), T0)
    settings = Settings(database_url="sqlite://", secret_key="fixture-secret")
    process_pending_events(engine, settings=settings, clock=MovableClock(T0))
    return [
        "forged-1: supporter_id without a message_id",
        "forged-2: installation_id is another installation's",
    ]
