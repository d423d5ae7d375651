"""Builders for the wave and sending tests: campaign, cases, supporters, a transport."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from campaign_fixtures import the_2020_campaign
from sqlalchemy import Engine, func, select

from sender.core.addresses import email_hash
from sender.core.clock import Clock
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.errors import TransportError
from sender.core.mail import OutgoingBatch
from sender.core.models import Assignment, Batch, Case, Message, Supporter, Wave
from sender.core.vocabulary import AudienceRule, WaveKind, WaveStatus
from sender.send.batch_store import SqlSendStore
from sender.send.pipeline import Sender, SendPolicy
from sender.send.ratelimit import LocalTokenBucket
from sender.send.transport.base import Accepted

DEC1 = datetime(2020, 12, 1, tzinfo=UTC)

CASE_TEXT = {
    "en": {
        "title": "Free Nassima",
        "summary": "Nassima was jailed for defending women's rights.",
        "ask": "Write to the king and ask for her release.",
        "authority": "The King",
        "authority_address": "Royal Palace, Rabat, Morocco",
        "letter": "Please release Nassima at once.",
    }
}


@dataclass
class RecordingTransport:
    """A real in-memory Transport: keeps each batch; `script` raises errors in turn."""

    name: str = "recording"
    sent: list[OutgoingBatch] = field(default_factory=list)
    tried: list[OutgoingBatch] = field(default_factory=list)  # every attempt, refused ones too
    script: list[TransportError | None] = field(default_factory=list)
    attempts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, batch: OutgoingBatch) -> Accepted:
        with self._lock:
            self.attempts += 1
            self.tried.append(batch)
            outcome = self.script.pop(0) if self.script else None
            if outcome is not None:
                raise outcome
            self.sent.append(batch)
            return Accepted(provider_message_id=f"pm-{len(self.sent)}")

    def emails(self) -> list[str]:
        return [r.to.email for b in self.sent for r in b.recipients]


def make_sender(
    engine: Engine,
    settings: Settings,
    transport: RecordingTransport,
    clock: Clock,
    policy: SendPolicy | None = None,
    sleeps: list[float] | None = None,
) -> Sender:
    record: Callable[[float], None] = sleeps.append if sleeps is not None else (lambda s: None)
    return Sender(
        store=SqlSendStore.from_settings(engine, settings),
        settings=settings,
        transport=transport,
        bucket=LocalTokenBucket(),
        clock=clock,
        policy=policy or SendPolicy(),
        sleep=record,
    )


def add_case(
    engine: Engine,
    settings: Settings,
    slug: str = "nassima",
    content: dict[str, dict[str, str]] | None = None,
    campaign_id: int | None = None,
) -> int:
    """A case of the given campaign, else of the 2020 one."""
    with session_scope(engine) as session:
        row = Case(
            campaign_id=campaign_id or the_2020_campaign(session).id,
            slug=slug,
            person=slug.title(),
            country="MA",
            action_url=f"https://act.example.org/{slug}",
            content=content or CASE_TEXT,
        )
        session.add(row)
        session.flush()
        return row.id


def add_supporters(
    engine: Engine,
    case_ids: Sequence[int],
    emails: Iterable[str],
    **overrides: Any,
) -> list[int]:
    ids: list[int] = []
    with session_scope(engine) as session:
        for email in emails:
            values: dict[str, Any] = {
                "email": email,
                "email_hash": email_hash(email),
                "first_name": email.split("@")[0].title(),
                "consent": True,
                "timezone": "UTC",
                "language": "en",
            }
            values.update(overrides)
            supporter = Supporter(**values)
            session.add(supporter)
            session.flush()
            for case_id in case_ids:
                session.add(Assignment(supporter_id=supporter.id, case_id=case_id, strategy="test"))
            ids.append(supporter.id)
    return ids


def add_wave(
    engine: Engine,
    settings: Settings,
    name: str = "case-email",
    kind: str = WaveKind.CASE_EMAIL,
    audience: str = AudienceRule.ALL_ASSIGNED,
    starts_at: datetime = DEC1,
    days: int = 2,
    window: tuple[time, time] = (time(9), time(11)),
    status: WaveStatus = WaveStatus.SCHEDULED,
    campaign_id: int | None = None,
    **extra: Any,
) -> int:
    with session_scope(engine) as session:
        wave = Wave(
            campaign_id=campaign_id or the_2020_campaign(session).id,
            name=name,
            kind=kind,
            audience=audience,
            status=status,
            starts_at=starts_at,
            ends_at=starts_at + timedelta(days=days),
            local_window_start=window[0],
            local_window_end=window[1],
            **{"subjects": {"en": "Stand with Nassima"}, **extra},
        )
        session.add(wave)
        session.flush()
        return wave.id


def by_email(engine: Engine, column: Any) -> dict[str, Any]:
    """email -> `column` (of Message) for every message."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(Supporter.email, column).join(Supporter, Supporter.id == Message.supporter_id)
        )
        return {str(email): value for email, value in rows}


def statuses(engine: Engine, model: type[Message] | type[Batch]) -> dict[str, int]:
    with session_scope(engine) as session:
        rows = session.execute(select(model.status, func.count()).group_by(model.status))
        return {str(status): int(count) for status, count in rows.all()}


def wave_status(engine: Engine, wave_id: int) -> tuple[str, str | None]:
    with session_scope(engine) as session:
        wave = session.get(Wave, wave_id)
        assert wave is not None
        return wave.status, wave.status_reason


def set_campaign_kinds(engine: Engine, settings: Settings, kinds: dict[str, Any]) -> None:
    """Store `Campaign.kinds` as `campaign campaigns create` does (sender.campaign.kinds)."""
    with session_scope(engine) as session:
        the_2020_campaign(session).kinds = kinds


def campaign_kinds_now(engine: Engine, settings: Settings) -> dict[str, Any]:
    with session_scope(engine) as session:
        return dict(the_2020_campaign(session).kinds or {})
