"""The append-only audit log: who changed what, when, from where, before and after.

Every adapter wraps a change in `audited` (or records a sign-in event with
`record_now`): it checks the actor's role against sender.staff.actions.NEEDED,
records a refusal in its own transaction (so it outlives the refused change),
runs the change, and records its outcome. Code that already holds a
transaction, such as the send pipeline pausing a wave on a 401, calls
`record` inside it, so the row commits with the change or not at all.

Rows describe objects by id, name or count, never by supporter data: an
erasure's row names how many supporters were erased, not who.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from sqlalchemy import Engine, or_, select
from sqlalchemy.orm import Session

from sender.core.clock import SystemClock
from sender.core.db import session_scope
from sender.core.errors import CampaignError, Forbidden, InvalidInput
from sender.core.staff_models import AuditEntry
from sender.staff.actions import NEEDED, What
from sender.staff.roles import Role, at_least

T = TypeVar("T")
SHORT = 500  # before/after/detail are a summary, never a dump


class Outcome(StrEnum):
    DONE = "done"
    REFUSED = "refused"  # the role or campaign limit did not allow it
    FAILED = "failed"  # allowed, but the change itself raised


@dataclass(frozen=True)
class Actor:
    """Who acts: an account's email, `os:<user>` on the CLI, or `system`."""

    name: str
    role: Role
    address: str  # the client address on the web, the host name elsewhere
    campaign_ids: frozenset[int] | None = None  # None: every campaign
    account_id: int | None = None


def host_name() -> str:
    return socket.gethostname()


def system_actor(where: str | None = None) -> Actor:
    """The scheduler, the workers and the send pipeline acting on their own."""
    return Actor("system", Role.ADMIN, where or host_name())


def os_actor() -> Actor:
    """The CLI without --as: shell access with the database URL already reaches everything."""
    return Actor(f"os:{getpass.getuser()}", Role.ADMIN, host_name())


def allowed(actor: Actor, what: What, campaign_id: int | None = None) -> bool:
    needed = NEEDED[what]
    if needed is not None and not at_least(actor.role, needed):
        return False
    return campaign_id is None or actor.campaign_ids is None or campaign_id in actor.campaign_ids


def _short(text: str | None) -> str | None:
    if text is None:
        return None
    return text if len(text) <= SHORT else text[: SHORT - 1] + "…"


def record(
    session: Session,
    actor: Actor,
    what: What,
    target: str,
    *,
    outcome: Outcome = Outcome.DONE,
    before: str | None = None,
    after: str | None = None,
    detail: str | None = None,
    campaign_id: int | None = None,
    at: datetime | None = None,
) -> None:
    """One row, inside the caller's transaction, stamped with the wall clock unless `at`
    says otherwise: a simulated clock (the demo) moves campaign time, not when a person or
    process acted, so callers pass no campaign `now` here."""
    session.add(
        AuditEntry(
            at=at or SystemClock().now(),
            actor=actor.name[:320],
            actor_role=actor.role.value,
            address=actor.address[:300],
            action=what.value,
            outcome=outcome.value,
            target=target[:300],
            campaign_id=campaign_id,
            before=_short(before),
            after=_short(after),
            detail=_short(detail),
        )
    )


def record_now(
    engine: Engine,
    actor: Actor,
    what: What,
    target: str,
    *,
    outcome: Outcome = Outcome.DONE,
    before: str | None = None,
    after: str | None = None,
    detail: str | None = None,
    campaign_id: int | None = None,
) -> None:
    """One row in its own transaction: for sign-in events, refusals and adapters' changes."""
    with session_scope(engine) as session:
        record(
            session,
            actor,
            what,
            target,
            outcome=outcome,
            before=before,
            after=after,
            detail=detail,
            campaign_id=campaign_id,
        )


def check(
    engine: Engine, actor: Actor, what: What, target: str, campaign_id: int | None = None
) -> None:
    """Raise Forbidden, after recording the refusal, unless the actor may do this."""
    if allowed(actor, what, campaign_id):
        return
    needed = NEEDED[what]
    reason = (
        f"{what.value} needs the {needed.value} role; {actor.name} is {actor.role.value}"
        if needed is not None and not at_least(actor.role, needed)
        else f"{actor.name} may not act on this campaign"
    )
    record_now(
        engine, actor, what, target, outcome=Outcome.REFUSED, detail=reason, campaign_id=campaign_id
    )
    raise Forbidden(reason)


def audited(
    engine: Engine,
    actor: Actor,
    what: What,
    target: str,
    change: Callable[[], T],
    *,
    campaign_id: int | None = None,
    before: str | None = None,
    after: Callable[[T], str | None] | None = None,
    detail: Callable[[T], str | None] | None = None,
) -> T:
    """Check, run `change`, record the outcome; a change that raises is recorded as failed."""
    check(engine, actor, what, target, campaign_id)
    try:
        result = change()
    except CampaignError as error:
        record_now(
            engine,
            actor,
            what,
            target,
            outcome=Outcome.FAILED,
            before=before,
            detail=str(error),
            campaign_id=campaign_id,
        )
        raise
    record_now(
        engine,
        actor,
        what,
        target,
        before=before,
        after=after(result) if after else None,
        detail=detail(result) if detail else None,
        campaign_id=campaign_id,
    )
    return result


@dataclass(frozen=True)
class Entry:
    id: int
    at: datetime
    actor: str
    actor_role: str
    address: str
    action: str
    outcome: str
    target: str
    campaign_id: int | None
    before: str | None
    after: str | None
    detail: str | None


COLUMNS = tuple(Entry.__dataclass_fields__)


_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}


def parse_since(text: str, now: datetime) -> datetime:
    """A `since` filter: an ISO date or time (UTC unless it says), or an age: 30m, 24h, 7d."""
    cleaned = text.strip()
    unit = _UNITS.get(cleaned[-1:].lower())
    if unit is not None and cleaned[:-1].isdigit():
        return now - int(cleaned[:-1]) * unit
    try:
        found = datetime.fromisoformat(cleaned)
    except ValueError:
        raise InvalidInput(
            f"since {text!r} is neither a date (2026-12-01), a time (2026-12-01T09:30) "
            "nor an age (30m, 24h, 7d)"
        ) from None
    return found if found.tzinfo is not None else found.replace(tzinfo=UTC)


def entries(
    session: Session,
    *,
    since: datetime | None = None,
    who: str | None = None,
    what: Sequence[str] = (),
    campaign_id: int | None = None,
    limit: int | None = 500,
) -> list[Entry]:
    """Newest first. `who` matches the actor exactly; `what` matches an action or its prefix."""
    query = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if who:
        query = query.where(AuditEntry.actor == who.strip().lower())
    if what:
        matches = ((AuditEntry.action == w) | AuditEntry.action.startswith(f"{w}.") for w in what)
        query = query.where(or_(*matches))
    if campaign_id is not None:
        query = query.where(AuditEntry.campaign_id == campaign_id)
    if limit is not None:
        query = query.limit(limit)
    return [_entry(row) for row in session.scalars(query)]


def _entry(row: AuditEntry) -> Entry:
    return Entry(**{name: getattr(row, name) for name in COLUMNS})


def as_rows(found: Iterable[Entry]) -> list[list[str]]:
    """Strings for a table or a CSV, in COLUMNS order."""
    return [["" if getattr(e, c) is None else str(getattr(e, c)) for c in COLUMNS] for e in found]
