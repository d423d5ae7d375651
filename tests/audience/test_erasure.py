"""Erasure: a forgotten supporter keeps its id and counts, loses its personal data, stays out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from audience.audience_fixtures import HEADER, supporters, write
from sender.audience.erasure import forget_supporter
from sender.audience.importer import import_supporters
from sender.core.addresses import email_hash
from sender.core.clock import MovableClock
from sender.core.db import session_scope
from sender.core.errors import InvalidInput, NotFound
from sender.core.models import Action, Event, Reply, Supporter, Suppression
from sender.core.vocabulary import SupporterStatus, SuppressionReason

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def test_forget_erases_and_blocks_reimport(any_engine: Engine, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"{HEADER}\nzara@example.org,Zara,Haddad,JO,ar,,yes\nkeep@example.org,K,K,,,,yes\n",
    )
    import_supporters(any_engine, path)
    zara = supporters(any_engine)["zara@example.org"]
    with session_scope(any_engine) as session:
        session.add(Action(supporter_id=zara.id, kind="clicked", source="link"))
    result = forget_supporter(any_engine, "  ZARA@example.org")
    assert result.supporter_id == zara.id and not result.already_forgotten
    with session_scope(any_engine) as session:
        erased = session.get(Supporter, zara.id)
        assert erased is not None
        assert (erased.email, erased.first_name, erased.last_name, erased.country) == (
            None,
            None,
            None,
            None,
        )
        assert erased.status == SupporterStatus.FORGOTTEN and erased.forgotten_at is not None
        assert erased.language == "ar"
        suppression = session.scalar(
            select(Suppression).where(Suppression.email_hash == email_hash("zara@example.org"))
        )
        assert suppression is not None and suppression.reason == SuppressionReason.FORGOTTEN
        assert (
            session.scalar(
                select(func.count()).select_from(Action).where(Action.supporter_id == zara.id)
            )
            == 1
        )
    again = import_supporters(any_engine, path)
    assert again.rejected == {"suppressed": 1} and again.unchanged == 1
    assert "zara@example.org" not in supporters(any_engine)
    assert forget_supporter(any_engine, "zara@example.org").already_forgotten


def test_forget_unknown_address(any_engine: Engine) -> None:
    with pytest.raises(NotFound, match="no supporter has that address"):
        forget_supporter(any_engine, "Nobody@example.org")
    with pytest.raises(InvalidInput):
        forget_supporter(any_engine, "not an address")


def test_forget_scrubs_replies_and_events_and_keeps_the_first_date(
    any_engine: Engine, tmp_path: Path
) -> None:
    import_supporters(
        any_engine,
        write(tmp_path, f"{HEADER}\nzara@example.org,Z,H,,,,yes\nkeep@example.org,K,K,,,,\n"),
    )
    people = supporters(any_engine)
    zara, keep = people["zara@example.org"].id, people["keep@example.org"].id
    digest = email_hash("zara@example.org")
    with session_scope(any_engine) as session:
        session.add(Suppression(email_hash=digest, reason=SuppressionReason.UNSUBSCRIBED))
        for who, address in ((zara, "zara@example.org"), (keep, "keep@example.org")):
            session.add(
                Reply(
                    supporter_id=who,
                    from_email=address,
                    subject="Re",
                    body="my words",
                    raw_form={"from": address},
                    raw_email=b"From: " + address.encode(),
                )
            )
        session.add(
            Event(
                provider="sendgrid",
                provider_event_id="by-hash",
                event_type="open",
                email_hash=digest,
                occurred_at=T0,
                raw={"email": "zara@example.org"},
            )
        )
        session.add(
            Event(
                provider="sendgrid",
                provider_event_id="other",
                event_type="open",
                supporter_id=keep,
                occurred_at=T0,
                raw={"email": "keep@example.org"},
            )
        )
    forget_supporter(any_engine, "zara@example.org", MovableClock(T0))
    forget_supporter(any_engine, "zara@example.org", MovableClock(T0 + timedelta(days=1)))
    with session_scope(any_engine) as session:
        replies = {r.supporter_id: r for r in session.scalars(select(Reply))}
        events = {e.provider_event_id: e.raw for e in session.scalars(select(Event))}
        forgotten = session.get(Supporter, zara)
        reason = session.scalar(select(Suppression.reason).where(Suppression.email_hash == digest))
        assert forgotten is not None and forgotten.forgotten_at is not None
        assert forgotten.forgotten_at.replace(tzinfo=UTC) == T0  # the second call changed nothing
    scrubbed = replies[zara]
    assert (scrubbed.from_email, scrubbed.subject, scrubbed.body) == (None, None, None)
    assert (scrubbed.raw_form, scrubbed.raw_email) == ({}, None)
    assert replies[keep].body == "my words"
    assert events == {"by-hash": {}, "other": {"email": "keep@example.org"}}
    assert reason == SuppressionReason.FORGOTTEN  # an unsubscribe became a forget
