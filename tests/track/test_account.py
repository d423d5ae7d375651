"""Account events in the shared vocabulary, and the notices processing reports for them.

Shapes: SendGrid's Event Webhook reference ("dropped" with its `reason`; the account
events' `account_status_change` with `type`), written here in our own words.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from events_fixtures import T0, ingest, seed, sg_event
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from sender.core.clock import MovableClock
from sender.core.config import Settings
from sender.core.models import Event, Suppression
from sender.core.vocabulary import AccountChange, BounceClass, EventType
from sender.track.account import AccountNotice, resend_on_resume
from sender.track.actions import process_pending_events
from sender.track.providers.sendgrid import translate

QUOTA = "Recipient List over Package Quota"


def _status_change(n: int, kind: object) -> dict[str, object]:
    return {
        "event": "account_status_change",
        "sg_event_id": f"acct-{n}",
        "timestamp": int(T0.timestamp()) + n,
        "type": kind,
    }


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        ("compliance_suspend", AccountChange.STOPPED),
        ("compliance_deactivate", AccountChange.STOPPED),
        ("compliance_ban", AccountChange.STOPPED),
        ("compliance_reactivate", AccountChange.REACTIVATED),
        ("something_new", AccountChange.STOPPED),  # unknown: read as a stop, kept raw
        (7, AccountChange.STOPPED),
    ],
)
def test_an_account_status_change_is_an_account_event(kind: object, change: AccountChange) -> None:
    event = translate(_status_change(1, kind))
    assert (event.event_type, event.account_change) == (EventType.ACCOUNT_STATUS, change)
    assert event.account_note and event.account_note.startswith("SendGrid changed")
    assert event.email_hash is None and event.raw["type"] == kind


def test_only_a_quota_drop_is_about_the_account() -> None:
    w = {"event": "dropped", "sg_event_id": "d1", "timestamp": 1, "email": "a@example.org"}
    quota = translate({**w, "reason": f" {QUOTA.upper()} "})
    assert quota.account_change is AccountChange.STOPPED
    assert quota.account_note == f"SendGrid dropped mail: {QUOTA.upper()}"
    for reason in ("Spam Content", "Bounced Address", None):
        assert translate({**w, "reason": reason}).account_change is None
    assert resend_on_resume() == frozenset({f"dropped: {QUOTA}".casefold()})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Invalid Address", BounceClass.INVALID_ADDRESS),
        ("technical failure", BounceClass.TECHNICAL),
        ("Frequency or Volume Too High", BounceClass.FREQUENCY_OR_VOLUME),
        ("Mailbox Unavailable", BounceClass.MAILBOX_UNAVAILABLE),
        ("Brand New Class", BounceClass.UNCLASSIFIED),
        (None, None),
    ],
)
def test_bounce_classification_in_the_vocabulary(
    text: str | None, expected: BounceClass | None
) -> None:
    raw = {"event": "bounce", "sg_event_id": "b1", "timestamp": 1, "bounce_classification": text}
    assert translate(raw).bounce_class is expected
    # Only a bounce is classed: the same field on a deferral is kept raw, not counted.
    assert translate({**raw, "event": "deferred"}).bounce_class is None


def test_processing_reports_one_notice_per_stop_and_hands_it_to_the_hook(
    any_engine: Engine,
) -> None:
    w = seed(any_engine, people=3)
    drops = [sg_event(w, n, "dropped", 10 - n, reason=QUOTA) for n in range(3)]
    ingest(any_engine, [*drops, _status_change(20, "compliance_reactivate")])
    seen: list[tuple[AccountNotice, ...]] = []

    def hook(session: Session, notices: object, now: datetime) -> None:
        assert isinstance(session, Session) and now == T0
        seen.append(tuple(notices))  # type: ignore[arg-type]

    settings = Settings(secret_key="t")
    report = process_pending_events(any_engine, 100, settings, MovableClock(T0), hook)
    stop, back = report.notices
    assert seen == [report.notices]
    assert (stop.change, stop.what, stop.wave_ids) == (
        AccountChange.STOPPED,
        f"SendGrid dropped mail: {QUOTA}",
        (w.wave_id,),
    )
    assert stop.occurred_at == datetime.fromtimestamp(T0.timestamp() + 8, T0.tzinfo)  # first
    assert stop.describe().endswith("(at 2020-12-01 09:00 UTC)")
    assert back.change is AccountChange.REACTIVATED and back.wave_ids == ()
    with any_engine.connect() as c:
        assert c.scalar(select(Suppression.id)) is None
        kinds = sorted(c.scalars(select(Event.event_type)))
    assert kinds == ["account_status", "dropped", "dropped", "dropped"]
    # Without a hook the notices are still reported, and nothing else changes.
    ingest(any_engine, [_status_change(30, "compliance_suspend")])
    again = process_pending_events(any_engine, 100, settings, MovableClock(T0))
    assert [n.change for n in again.notices] == [AccountChange.STOPPED]
