"""A supporter who leaves after the wave was planned, before it is sent, gets nothing.

One supporter uses the one-click unsubscribe (RFC 8058 POST to the web app,
with the token from an earlier email); another address is suppressed
(a bounce recorded elsewhere). Their messages are already planned in
batches; the re-check right before each batch leaves must drop them.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests
from sqlalchemy import select

from faults.fault_fixtures import (
    SECRET,
    World,
    add_audience,
    declare_wave,
    delivery,
    launch_wave,
    message_counts,
    open_campaign,
)
from sender.core.addresses import email_hash
from sender.core.db import session_scope
from sender.core.models import Message, Supporter
from sender.core.tokens import TokenSigner
from sender.core.vocabulary import MessageStatus, SuppressionReason
from sender.send.planner import plan_wave
from sender.track import suppressions

pytest_plugins = ("faults.fault_fixtures",)
SUPPORTERS = 1000
LEAVER = "fan10@example.net"
BOUNCED = "fan11@example.net"


def _planned_message(world: World, email: str) -> Message:
    with session_scope(world.engine) as session:
        message = session.scalars(
            select(Message).join(Supporter).where(Supporter.email == email)
        ).one()
        session.expunge(message)
        return message


@pytest.mark.slow
def test_who_leaves_between_planning_and_sending_is_not_emailed(world: World) -> None:
    cases = open_campaign(world.engine, world.settings)
    emails = add_audience(world.engine, cases[:2], SUPPORTERS)
    wave_id = declare_wave(world.engine, world.settings)
    launch_wave(world.engine, world.settings)
    plan_wave(world.engine, world.settings, wave_id, datetime.now(UTC))
    leaving = _planned_message(world, LEAVER)
    assert leaving.status == MessageStatus.PLANNED and leaving.batch_id is not None

    token = TokenSigner(SECRET).tokens_for(
        leaving.supporter_id, leaving.id, leaving.case_id, wave_id
    )[1]
    answer = requests.post(
        f"{world.web_url}/unsubscribe/{token}",
        data={"List-Unsubscribe": "One-Click"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    with session_scope(world.engine) as session:
        suppressions.add(
            session,
            suppressions.Suppressed(email_hash(BOUNCED), SuppressionReason.BOUNCED),
            "test: bounced elsewhere",
            datetime.now(UTC),
        )

    world.start_worker()
    world.drive(wave_id)
    result = delivery(world.sg, wave_id, [e for e in emails if e not in (LEAVER, BOUNCED)])
    result.assert_exactly_once()
    assert world.sg.admin.count(email=LEAVER) == 0
    assert world.sg.admin.count(email=BOUNCED) == 0
    counts = message_counts(world.engine, wave_id)
    assert counts[MessageStatus.SENT] == SUPPORTERS - 2
    assert sum(counts.values()) == SUPPORTERS  # the two were planned, then dropped
    for email in (LEAVER, BOUNCED):
        dropped = _planned_message(world, email)
        assert dropped.status in (MessageStatus.SKIPPED, MessageStatus.CANCELLED), dropped.status
