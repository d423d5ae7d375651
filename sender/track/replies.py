"""Stored replies as staff see them: the review list and the solidarity export."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from sender.campaign.cases import case_by_slug
from sender.core.models import Case, Reply, Supporter
from sender.core.vocabulary import ReplyStatus
from sender.track.mail_auth import read_auth
from sender.track.reply_sender import SPOOFED

NEEDS_A_PERSON = (ReplyStatus.REVIEW, ReplyStatus.MATCHED)
# How the problems of mail that could not be read begin: the webhook's form reader
# (sender.web.inbound), sender.track.inbound.read_mail, and a parser that raised.
_PARSE_PROBLEMS = (
    "unexpected content type",
    "multipart form",
    "field ",
    "charsets field",
    "unknown charset",
    "envelope field",
    "broken MIME",
    "body cannot be decoded",
    "missing From",
    "missing To",
    "parser failed",
)


class ReviewReason(StrEnum):
    """Why a reply waits for a person: what the workspace groups the review list by."""

    UNMATCHED = "unmatched"
    SPOOFED = "possibly spoofed"
    PARSE_PROBLEM = "parse problem"


def review_reason(problem: str | None) -> ReviewReason:
    text = problem or ""
    if SPOOFED in text:
        return ReviewReason.SPOOFED
    if text.startswith(_PARSE_PROBLEMS):
        return ReviewReason.PARSE_PROBLEM
    return ReviewReason.UNMATCHED


EXPORT_HEADER = ("reply_id", "received_at", "language", "first_name", "country", "message")


@dataclass(frozen=True)
class SolidarityMessage:
    reply_id: int
    received_at: datetime
    language: str | None
    first_name: str | None
    country: str | None
    message: str
    delivered_at: datetime | None = None
    delivered_by: str | None = None

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

    @property
    def reason(self) -> ReviewReason:
        return review_reason(self.problem)


PER_PAGE = 100  # solidarity messages a page shows; a case may have thousands


@dataclass(frozen=True)
class SolidarityPage:
    """One page of a case's solidarity messages, and how many there are in all."""

    messages: tuple[SolidarityMessage, ...]
    total: int
    page: int  # from 1
    per_page: int = PER_PAGE

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _solidarity_query(
    session: Session, case_slug: str, campaign: str | None, delivered: bool | None
) -> Select[Reply, str | None, str | None]:
    case = case_by_slug(session, case_slug, campaign)
    query = (
        select(Reply, Supporter.first_name, Supporter.country)
        .outerjoin(Supporter, Supporter.id == Reply.supporter_id)
        .where(
            Reply.case_id == case.id,
            Reply.status == ReplyStatus.MATCHED,
            func.coalesce(Reply.body, "") != "",  # nothing to hand on
        )
        .order_by(Reply.received_at, Reply.id)
    )
    if delivered is not None:
        query = query.where(
            Reply.delivered_at.is_not(None) if delivered else Reply.delivered_at.is_(None)
        )
    return query


def _messages(
    session: Session, query: Select[Reply, str | None, str | None]
) -> tuple[SolidarityMessage, ...]:
    return tuple(
        SolidarityMessage(
            reply.id,
            reply.received_at,
            reply.language,
            first_name,
            country,
            reply.body or "",
            reply.delivered_at,
            reply.delivered_by,
        )
        for reply, first_name, country in session.execute(query)
    )


def solidarity_messages(
    session: Session, case_slug: str, campaign: str | None = None, delivered: bool | None = None
) -> list[SolidarityMessage]:
    """Matched replies for a case, oldest first: no auto-replies, STOPs or unverified mail.

    Only first names: the people the messages go to never see supporters' addresses.
    `delivered` keeps only those handed to the case team already (True) or not yet (False).
    Every one of them: the export; the page reads `solidarity_page`.
    """
    return list(_messages(session, _solidarity_query(session, case_slug, campaign, delivered)))


def solidarity_page(
    session: Session,
    case_slug: str,
    campaign: str | None = None,
    delivered: bool | None = None,
    page: int = 1,
    per_page: int = PER_PAGE,
) -> SolidarityPage:
    """The same messages a page at a time; a page past the last shows the last."""
    query = _solidarity_query(session, case_slug, campaign, delivered)
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    page = min(max(1, page), max(1, -(-total // per_page)))
    shown = _messages(session, query.limit(per_page).offset((page - 1) * per_page))
    return SolidarityPage(shown, total, page, per_page)


def review_list(
    session: Session, limit: int | None = 500, campaign_id: int | None = None
) -> Sequence[ReviewItem]:
    """Replies that need a person, newest first: the CLI's review and the workspace's CSV.

    Unmatched or unreadable ones (REVIEW: possibly spoofed ones among them), any with a
    note attached, and the matched messages themselves, for staff to read; each with the
    provider's SPF and DKIM results.
    Auto-replies and STOPs are handled already and left out, and so is every reply a
    person has decided on (sender.track.reply_review). With `campaign_id`, as in
    `to_decide`.
    """
    query = (
        select(Reply)
        .where(or_(Reply.status.in_(NEEDS_A_PERSON), Reply.problem.is_not(None)))
        .where(Reply.reviewed_at.is_(None))
        .order_by(Reply.received_at.desc(), Reply.id.desc())
    )
    return _items(session, query, campaign_id, limit)


def to_decide(
    session: Session, campaign_id: int | None = None, limit: int | None = 500
) -> Sequence[ReviewItem]:
    """The review list's replies a person still has to decide on (REVIEW), newest first.

    With `campaign_id`: those about that campaign's cases, and those about no case yet
    (unmatched mail names none).
    """
    query = (
        select(Reply)
        .where(Reply.status == ReplyStatus.REVIEW, Reply.reviewed_at.is_(None))
        .order_by(Reply.received_at.desc(), Reply.id.desc())
    )
    return _items(session, query, campaign_id, limit)


def _items(
    session: Session, query: Select[Reply], campaign_id: int | None, limit: int | None
) -> list[ReviewItem]:
    if campaign_id is not None:
        in_campaign = select(Case.id).where(Case.campaign_id == campaign_id)
        query = query.where(or_(Reply.case_id.is_(None), Reply.case_id.in_(in_campaign)))
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
