"""Every fetch of an email's links, recorded and classified (rules: sender.track.clicks).

A fetch of the action link becomes an action: `clicked` (a person's, acting)
or `clicked_machine` (never acting). Fetches of the unsubscribe page and of
the hidden honeypot link are recorded as evidence only. Evidence can follow
the click it unmasks (a scanner takes the action link, then the honeypot
200 ms later), so machine evidence re-classifies the message's clicks taken
for a person's within the burst window, in its own transaction, report
totals included (sender.report.totals.unmask_click).

Dedupe keys: a person's click keeps "link:<link key>:clicked" (one per
message); a machine's click is "link:<link key>:clicked_machine:<hit id>",
one per fetch. An unmasked click takes the machine form, which frees the
person's key for a person who clicks later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sender.core.models import Action, Event, LinkHit, Message
from sender.core.vocabulary import ActionKind, ClickClass, EventType, LinkTarget, MachineSign
from sender.report import totals as reports
from sender.track.actions import LINK_SOURCE, dedupe_key, link_key, new_action, record_action
from sender.track.clicks import ClickVerdict, EarlierFetch, LinkFetch, Windows, classify, taints


@dataclass(frozen=True)
class LinkVisit:
    """One request for a link, as the web adapter saw it (already verified)."""

    link_key: str  # the message id, or a token digest when the token names no message
    target: LinkTarget
    method: str
    user_agent: str | None
    at: datetime
    supporter_id: int
    case_id: int
    wave_id: int | None
    message_id: int | None
    url: str | None = None  # where the action link leads


@dataclass(frozen=True)
class Recorded:
    verdict: ClickVerdict
    kind: ActionKind | None  # the action recorded, if the fetch made one
    unmasked: int  # clicks re-classified as a machine's by this fetch


def machine_click_key(link: str, hit_id: int) -> str:
    """One machine click per fetch: "link:<link key>:clicked_machine:<hit id>"."""
    return dedupe_key(LINK_SOURCE, link, ActionKind.CLICKED_MACHINE.value, hit_id)


def record_visit(session: Session, visit: LinkVisit, windows: Windows) -> Recorded:
    """Classify and keep one fetch; for the action link, record the click it is."""
    delivered = _delivery_times(session, visit.message_id)
    since = visit.at - windows.burst
    earlier = tuple(
        EarlierFetch(LinkTarget(row.target), row.fetched_at, row.verdict == ClickClass.MACHINE)
        for row in session.execute(
            select(LinkHit.target, LinkHit.fetched_at, LinkHit.verdict).where(
                LinkHit.link_key == visit.link_key, LinkHit.fetched_at >= since
            )
        )
    )
    fetch = LinkFetch(visit.target, visit.method, visit.user_agent, visit.at, delivered, earlier)
    verdict = classify(fetch, windows)
    hit = LinkHit(
        link_key=visit.link_key,
        target=visit.target.value,
        method=visit.method.upper()[:8],
        verdict=verdict.kind.value,
        reason=verdict.reason.value if verdict.reason else None,
        fetched_at=visit.at,
    )
    session.add(hit)
    session.flush()
    kind = _record_click(session, visit, verdict, hit.id)
    unmasked = unmask_clicks(session, visit.link_key, visit.at, windows) if verdict.machine else 0
    return Recorded(verdict, kind, unmasked)


def _delivery_times(session: Session, message_id: int | None) -> tuple[datetime, ...]:
    """sent_at and any `delivered` event times; locks the message row on PostgreSQL.

    The lock serialises the fetches of one message, so evidence arriving
    milliseconds after a click always sees that click.
    """
    if message_id is None:
        return ()
    query = select(Message.sent_at).where(Message.id == message_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    sent_at = session.scalar(query)
    delivered = session.scalars(
        select(Event.occurred_at).where(
            Event.message_id == message_id, Event.event_type == EventType.DELIVERED
        )
    )
    return tuple(t for t in (sent_at, *delivered) if t is not None)


def _record_click(
    session: Session, visit: LinkVisit, verdict: ClickVerdict, hit_id: int
) -> ActionKind | None:
    if visit.target is not LinkTarget.ACTION:
        return None
    if verdict.machine:
        kind, key = ActionKind.CLICKED_MACHINE, machine_click_key(visit.link_key, hit_id)
    else:
        kind, key = ActionKind.CLICKED, link_key(visit.link_key, ActionKind.CLICKED)
    action = new_action(
        kind,
        source=LINK_SOURCE,
        key=key,
        occurred_at=visit.at,
        supporter_id=visit.supporter_id,
        case_id=visit.case_id,
        wave_id=visit.wave_id,
        message_id=visit.message_id,
        url=visit.url,
        acting=not verdict.machine,
    )
    record_action(session, action)
    return kind


def unmask_clicks(session: Session, link: str, evidence_at: datetime, windows: Windows) -> int:
    """Re-classify the message's person's click if it came within the burst window before."""
    person_key = link_key(link, ActionKind.CLICKED)
    click = session.scalars(
        select(Action).where(Action.dedupe_key == person_key).with_for_update()
    ).first()
    if click is None or not taints(evidence_at, click.occurred_at, windows.burst):
        return 0
    hits = list(
        session.scalars(
            select(LinkHit)
            .where(
                LinkHit.link_key == link,
                LinkHit.target == LinkTarget.ACTION,
                LinkHit.verdict == ClickClass.HUMAN,
                LinkHit.fetched_at >= click.occurred_at,
                LinkHit.fetched_at <= evidence_at,
            )
            .order_by(LinkHit.id)
        )
    )
    session.execute(
        update(LinkHit)
        .where(LinkHit.id.in_([hit.id for hit in hits]))
        .values(verdict=ClickClass.MACHINE, reason=MachineSign.LATER_EVIDENCE)
        .execution_options(synchronize_session=False)
    )
    click.kind = ActionKind.CLICKED_MACHINE.value
    click.acting = False
    click.dedupe_key = (
        machine_click_key(link, hits[0].id)
        if hits  # clicks recorded before fetches were: named by the action instead
        else dedupe_key(LINK_SOURCE, link, ActionKind.CLICKED_MACHINE.value, "action", click.id)
    )
    session.flush()
    reports.unmask_click(session, click)
    return 1
