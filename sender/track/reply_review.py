"""A person's decisions on replies: the review list's actions, and delivery to case teams.

The parser (sender.track.inbound) sends to review what it may not act on: mail from
an unknown address, possibly spoofed mail, mail it could not read. Staff decide
each one once:

- **assign** it to a supporter (found by address): it then counts as that
  supporter's reply to the case, through the same action the parser records;
- **dismiss** it, with a reason;
- **unsubscribe** its sender, through sender.track.unsubscribe like every other
  "no more email".

Each decision claims the reply with a conditional UPDATE, so a double submit or
two staff at once decide it exactly once; the second is told it was decided.
Solidarity messages are marked delivered to the case team the same way.

Errors never name a supporter's address: the audit log keeps a failure's message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select, true, update
from sqlalchemy.orm import Session

from sender.core.db import session_scope
from sender.core.errors import InvalidInput, NotFound
from sender.core.models import Assignment, Case, Message, Reply, Supporter
from sender.core.vocabulary import ReplyStatus, ReviewOutcome
from sender.track.inbound import record_reply_action
from sender.track.reply_sender import supporter_by_address
from sender.track.unsubscribe import unsubscribe

REVIEW_SOURCE = "review"  # suppressions.source of an unsubscribe decided from the review list
MAX_REASON = 500
MAX_SELECTED = 1000  # one form's checkboxes; the ids go into an IN list


@dataclass(frozen=True)
class Decision:
    """What a decision did to one reply, in words the audit log may keep (no addresses)."""

    reply_id: int
    outcome: ReviewOutcome
    supporter_id: int | None = None
    case_id: int | None = None
    newly_counted: bool = False  # assign: the reply action is new
    newly_suppressed: bool = False  # unsubscribe: the address was not suppressed before

    def audit_detail(self) -> str:
        parts = [str(self.outcome)]
        if self.supporter_id is not None:
            parts.append(f"supporter #{self.supporter_id}")
        if self.case_id is not None:
            parts.append(f"case #{self.case_id}")
        if self.outcome is ReviewOutcome.UNSUBSCRIBED and not self.newly_suppressed:
            parts.append("already suppressed")
        return ", ".join(parts)


@dataclass(frozen=True)
class Delivered:
    case_id: int
    reply_ids: tuple[int, ...]

    def audit_detail(self) -> str:
        return f"{len(self.reply_ids)} messages: " + ", ".join(f"#{i}" for i in self.reply_ids)


def reply_campaign_id(engine: Engine, reply_id: int) -> int | None:
    """The campaign of the case a reply is about (None: about no case yet); for the
    audit check of a campaign-limited account, before anything changes."""
    with session_scope(engine) as session:
        reply = session.get(Reply, reply_id)
        if reply is None:
            raise NotFound(f"reply #{reply_id} does not exist")
        if reply.case_id is None:
            return None
        return session.scalar(select(Case.campaign_id).where(Case.id == reply.case_id))


def assign_reply(
    engine: Engine,
    reply_id: int,
    email: str,
    by: str,
    now: datetime,
    *,
    campaign_id: int | None = None,
    case_slug: str | None = None,
) -> Decision:
    """Count a review reply as the supporter's (by address) reply to its case.

    The case is the one its reply token names; for a reply naming none, `case_slug`
    in `campaign_id`, or else the supporter's only case in that campaign.
    """
    with session_scope(engine) as session:
        reply = _undecided(session, reply_id)
        supporter = _supporter(session, email)
        case_id = reply.case_id or _case_for(session, supporter.id, campaign_id, case_slug)
        wave_id = reply.wave_id
        message_id = (
            session.scalar(
                select(Message.id).where(
                    Message.wave_id == wave_id, Message.supporter_id == supporter.id
                )
            )
            if wave_id is not None
            else None
        )
        _claim(
            session,
            reply_id,
            by,
            now,
            ReviewOutcome.ASSIGNED,
            status=ReplyStatus.MATCHED,
            supporter_id=supporter.id,
            case_id=case_id,
        )
        counted = record_reply_action(
            session, reply, supporter.id, case_id, wave_id, message_id, now
        )
        return Decision(reply_id, ReviewOutcome.ASSIGNED, supporter.id, case_id, counted)


def dismiss_reply(engine: Engine, reply_id: int, reason: str, by: str, now: datetime) -> Decision:
    """Take a reply off the review list, keeping why."""
    cleaned = " ".join(reason.split())
    if not cleaned:
        raise InvalidInput("say why the reply is dismissed")
    if len(cleaned) > MAX_REASON:
        raise InvalidInput(f"the reason is {len(cleaned)} characters; at most {MAX_REASON}")
    with session_scope(engine) as session:
        reply = _undecided(session, reply_id)
        _claim(session, reply_id, by, now, ReviewOutcome.DISMISSED, review_note=cleaned)
        return Decision(reply_id, ReviewOutcome.DISMISSED, reply.supporter_id, reply.case_id)


def unsubscribe_sender(engine: Engine, reply_id: int, by: str, now: datetime) -> Decision:
    """Stop all email to the reply's supporter (the one it names, else its From's owner)."""
    with session_scope(engine) as session:
        reply = _undecided(session, reply_id)
        supporter = (
            session.get(Supporter, reply.supporter_id)
            if reply.supporter_id is not None
            else supporter_by_address(session, reply.from_email)[0]
        )
        if supporter is None or supporter.forgotten_at is not None:
            raise InvalidInput(
                f"reply #{reply_id} is from no supporter: nobody to unsubscribe (dismiss it)"
            )
        _claim(
            session,
            reply_id,
            by,
            now,
            ReviewOutcome.UNSUBSCRIBED,
            status=ReplyStatus.UNSUBSCRIBE,
            supporter_id=supporter.id,
        )
        added = unsubscribe(session, supporter, source=REVIEW_SOURCE, now=now)
        return Decision(
            reply_id,
            ReviewOutcome.UNSUBSCRIBED,
            supporter.id,
            reply.case_id,
            newly_suppressed=added,
        )


def mark_delivered(
    engine: Engine, case_id: int, reply_ids: Sequence[int], by: str, now: datetime
) -> Delivered:
    """Mark solidarity messages of one case as handed to its case team: all or none.

    Refused when one is not that case's solidarity message or is marked already (a
    double submit), so the record says who delivered each, once.
    """
    wanted = tuple(sorted(set(reply_ids)))
    if not wanted:
        raise InvalidInput("select at least one message to mark delivered")
    if len(wanted) > MAX_SELECTED:
        raise InvalidInput(f"{len(wanted)} messages selected; at most {MAX_SELECTED} at once")
    with session_scope(engine) as session:
        rows = session.execute(
            select(Reply.id, Reply.delivered_at).where(
                Reply.id.in_(wanted),
                Reply.case_id == case_id,
                Reply.status == ReplyStatus.MATCHED,
            )
        ).all()
        found = {row.id for row in rows}
        strangers = [i for i in wanted if i not in found]
        if strangers:
            raise InvalidInput(f"not solidarity messages of this case: {_ids(strangers)}")
        done = sorted(row.id for row in rows if row.delivered_at is not None)
        if done:
            raise InvalidInput(f"marked delivered already: {_ids(done)}; nothing changed")
        marked = session.execute(
            update(Reply)
            .where(Reply.id.in_(wanted), Reply.delivered_at.is_(None))
            .values(delivered_at=now, delivered_by=by[:320])
        )
        if marked.rowcount != len(wanted):  # type: ignore[attr-defined]
            raise InvalidInput("someone marked these messages at the same time; nothing changed")
        return Delivered(case_id, wanted)


def _ids(ids: Sequence[int]) -> str:
    return ", ".join(f"#{i}" for i in ids)


def _undecided(session: Session, reply_id: int) -> Reply:
    reply = session.get(Reply, reply_id)
    if reply is None:
        raise NotFound(f"reply #{reply_id} does not exist")
    if reply.reviewed_at is not None:
        raise InvalidInput(
            f"reply #{reply_id} was {reply.review_outcome} already"
            f" by {reply.reviewed_by}; nothing changed"
        )
    if reply.status != ReplyStatus.REVIEW:
        raise InvalidInput(f"reply #{reply_id} is {reply.status}, not waiting for review")
    return reply


def _claim(
    session: Session,
    reply_id: int,
    by: str,
    now: datetime,
    outcome: ReviewOutcome,
    **values: object,
) -> None:
    """Decide the reply unless someone did since it was read: exactly one decision wins."""
    claimed = session.execute(
        update(Reply)
        .where(
            Reply.id == reply_id,
            Reply.reviewed_at.is_(None),
            Reply.status == ReplyStatus.REVIEW,
        )
        .values(reviewed_at=now, reviewed_by=by[:320], review_outcome=outcome.value, **values)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise InvalidInput(f"reply #{reply_id} was decided by someone else just now")


def _supporter(session: Session, email: str) -> Supporter:
    if not email.strip():
        raise InvalidInput("give the supporter's email address")
    supporter, problem = supporter_by_address(session, email.strip())
    if supporter is None or supporter.forgotten_at is not None:
        # The address stays out of the message: a failure's words go into the audit log.
        valid = problem is None or not problem.startswith("sender address not valid")
        raise InvalidInput("no supporter has that address" if valid else "not an email address")
    return supporter


def _case_for(
    session: Session, supporter_id: int, campaign_id: int | None, case_slug: str | None
) -> int:
    in_campaign = Case.campaign_id == campaign_id if campaign_id is not None else true()
    if case_slug:
        case_id = session.scalar(select(Case.id).where(in_campaign, Case.slug == case_slug.strip()))
        if case_id is None:
            raise InvalidInput(f"no case {case_slug.strip()!r} in this campaign")
        return case_id
    assigned = list(
        session.scalars(
            select(Assignment.case_id)
            .join(Case, Case.id == Assignment.case_id)
            .where(Assignment.supporter_id == supporter_id, in_campaign)
        )
    )
    if len(assigned) != 1:
        found = "no case" if not assigned else f"{len(assigned)} cases"
        raise InvalidInput(f"the reply names no case and the supporter has {found}: say which")
    return assigned[0]
