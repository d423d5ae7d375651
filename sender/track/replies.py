"""Stored replies as staff see them: the review list and the solidarity export."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from sender.campaign.cases import case_by_slug
from sender.core.models import Reply, Supporter
from sender.core.vocabulary import ReplyStatus
from sender.track.mail_auth import read_auth
from sender.track.reply_sender import SPOOFED

NEEDS_A_PERSON = (ReplyStatus.REVIEW, ReplyStatus.MATCHED)
EXPORT_HEADER = ("reply_id", "received_at", "language", "first_name", "country", "message")


@dataclass(frozen=True)
class SolidarityMessage:
    reply_id: int
    received_at: datetime
    language: str | None
    first_name: str | None
    country: str | None
    message: str

    def row(self) -> tuple[object, ...]:
        return (
            self.reply_id,
            self.received_at.isoformat(timespec="seconds"),
            self.language or "",
            self.first_name or "",
            self.country or "",
            self.message,
        )


@dataclass(frozen=True)
class ReviewItem:
    reply_id: int
    received_at: datetime
    status: str
    from_email: str | None
    subject: str | None
    problem: str | None
    body: str | None = None
    case_id: int | None = None
    wave_id: int | None = None
    # The provider's checks of the sender, as posted (sender.track.mail_auth).
    spf: str = "not checked"
    dkim: str = "none"

    @property
    def possibly_spoofed(self) -> bool:
        return SPOOFED in (self.problem or "")


def solidarity_messages(
    session: Session, case_slug: str, campaign: str | None = None
) -> list[SolidarityMessage]:
    """Matched replies for a case, oldest first: no auto-replies, STOPs or unverified mail.

    Only first names: the people the messages go to never see supporters' addresses.
    """
    case = case_by_slug(session, case_slug, campaign)
    rows = session.execute(
        select(Reply, Supporter.first_name, Supporter.country)
        .outerjoin(Supporter, Supporter.id == Reply.supporter_id)
        .where(Reply.case_id == case.id, Reply.status == ReplyStatus.MATCHED)
        .order_by(Reply.received_at, Reply.id)
    )
    return [
        SolidarityMessage(
            reply.id, reply.received_at, reply.language, first_name, country, reply.body or ""
        )
        for reply, first_name, country in rows
        if reply.body
    ]


def review_list(session: Session, limit: int | None = 500) -> Sequence[ReviewItem]:
    """Replies that need a person, newest first: the CLI's review and the dashboard's list.

    Unmatched or unreadable ones (REVIEW: possibly spoofed ones among them), any with a
    note attached, and the matched messages themselves, for staff to read; each with the
    provider's SPF and DKIM results.
    Auto-replies and STOPs are handled already and left out.
    """
    query = (
        select(Reply)
        .where(or_(Reply.status.in_(NEEDS_A_PERSON), Reply.problem.is_not(None)))
        .order_by(Reply.received_at.desc(), Reply.id.desc())
    )
    replies = session.scalars(query if limit is None else query.limit(limit))
    return [_item(r) for r in replies]


def _item(reply: Reply) -> ReviewItem:
    fields = (reply.raw_form or {}).get("fields", {})
    auth = read_auth(fields if isinstance(fields, dict) else {})
    return ReviewItem(
        reply.id,
        reply.received_at,
        reply.status,
        reply.from_email,
        reply.subject,
        reply.problem,
        body=reply.body,
        case_id=reply.case_id,
        wave_id=reply.wave_id,
        spf=auth.spf_text,
        dkim=auth.dkim_text,
    )


def unparsed(session: Session) -> list[int]:
    """Stored replies no parser has finished (a worker was down, or Redis was)."""
    return list(
        session.scalars(
            select(Reply.id).where(Reply.status == ReplyStatus.RECEIVED).order_by(Reply.id)
        )
    )
