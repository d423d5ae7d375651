"""Messages per wave and status, and a case's planned messages: what the staff pages show.

The fast count sums the waves' batch rows, whose tallies move with their
messages (sender.core.tallies): at most ~1,000 rows a wave, where the plain
twin, the scan, groups every message of the waves (`messages` has no index on
wave_id, so that sending stays heap-only updates): 1.4 s at a million and a
half messages. tests/ops/test_counts.py drives a wave through every
transition and checks that the two agree after each.

Messages without a batch (none are planned so) have no tally: both counts
take them from `messages`, the fast one through its batch_id index.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, func, literal, select
from sqlalchemy.orm import Session

from sender.core.models import Batch, Message
from sender.core.tallies import column
from sender.core.vocabulary import MessageStatus


@dataclass(frozen=True)
class MessageCounts:
    """One wave's messages by status, as the database counts them."""

    by_status: Mapping[str, int] = field(default_factory=dict)
    sent_recently: int = 0  # sent at or after the moment asked for

    @property
    def planned(self) -> int:
        """Every message row of the wave, whatever became of it."""
        return sum(self.by_status.values())

    @property
    def sent(self) -> int:
        return self.by_status.get(MessageStatus.SENT, 0)

    @property
    def failed(self) -> int:
        return self.by_status.get(MessageStatus.FAILED, 0)

    @property
    def remaining(self) -> int:
        """Still planned: will be sent unless the wave stops."""
        return self.by_status.get(MessageStatus.PLANNED, 0)

    @property
    def skipped(self) -> int:
        return self.by_status.get(MessageStatus.SKIPPED, 0) + self.by_status.get(
            MessageStatus.CANCELLED, 0
        )


def message_counts(
    session: Session, wave_ids: Sequence[int], sent_since: datetime | None = None
) -> dict[int, MessageCounts]:
    """Messages per wave and status, and how many went out since ``sent_since``.

    Sums of the waves' batch tallies; "sent since" is the sent messages of the
    batches accepted since then (a rate: a batch reconciled in part counts when
    it is accepted whole, a bounce still counts). Waves without messages are left out.
    """
    if not wave_ids:
        return {}
    ids = list(wave_ids)
    recent = (
        literal(0)
        if sent_since is None
        else func.coalesce(func.sum(Batch.sent_count).filter(Batch.sent_at >= sent_since), 0)
    )
    statuses = list(MessageStatus)
    rows = session.execute(
        select(Batch.wave_id, recent, *[func.sum(column(s)) for s in statuses])
        .where(Batch.wave_id.in_(ids))
        .group_by(Batch.wave_id)
    ).all()
    by_status: dict[int, dict[str, int]] = {}
    sent_recently: dict[int, int] = {}
    for wave_id, since, *sums in rows:
        by_status[wave_id] = {s.value: int(n) for s, n in zip(statuses, sums, strict=True) if n}
        sent_recently[wave_id] = int(since)
    loose = message_counts_scan(session, ids, sent_since, Message.batch_id.is_(None))
    for wave_id, counts in loose.items():
        mine = by_status.setdefault(wave_id, {})
        for status, count in counts.by_status.items():
            mine[status] = mine.get(status, 0) + count
        sent_recently[wave_id] = sent_recently.get(wave_id, 0) + counts.sent_recently
    return {
        wave_id: MessageCounts(counts, sent_recently[wave_id])
        for wave_id, counts in by_status.items()
        if counts
    }


def message_counts_scan(
    session: Session,
    wave_ids: Sequence[int],
    sent_since: datetime | None = None,
    *only: ColumnElement[bool],
) -> dict[int, MessageCounts]:
    """The plain twin of `message_counts`: one pass over the waves' messages for both
    figures (``only`` narrows it: the fast count's messages without a batch)."""
    if not wave_ids:
        return {}
    recent = (
        literal(0) if sent_since is None else func.count().filter(Message.sent_at >= sent_since)
    )
    rows = session.execute(
        select(Message.wave_id, Message.status, func.count(), recent)
        .where(Message.wave_id.in_(list(wave_ids)), *only)
        .group_by(Message.wave_id, Message.status)
    ).all()
    by_status: dict[int, dict[str, int]] = {}
    sent_recently: dict[int, int] = {}
    for wave_id, status, count, since in rows:
        by_status.setdefault(wave_id, {})[status] = int(count)
        sent_recently[wave_id] = sent_recently.get(wave_id, 0) + int(since)
    return {
        wave_id: MessageCounts(counts, sent_recently[wave_id])
        for wave_id, counts in by_status.items()
    }


def planned_of_case(session: Session, case_id: int) -> int:
    """How many of the case's messages are planned: its batches' tallies, and any without one."""
    tallied = session.scalar(
        select(func.coalesce(func.sum(Batch.planned_count), 0)).where(Batch.case_id == case_id)
    )
    return int(tallied or 0) + planned_of_case_scan(session, case_id, Message.batch_id.is_(None))


def planned_of_case_scan(session: Session, case_id: int, *only: ColumnElement[bool]) -> int:
    """The plain twin of `planned_of_case`: the case's planned messages counted one by one."""
    count = session.scalar(
        select(func.count())
        .select_from(Message)
        .where(Message.case_id == case_id, Message.status == MessageStatus.PLANNED, *only)
    )
    return int(count or 0)
