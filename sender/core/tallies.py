"""A batch's messages by status, kept on its row (issue 16): the write side.

The staff pages count a wave's messages by summing its batch rows (at most
~1,000 a wave) instead of scanning `messages`, which has no index on wave_id
by design (sending stays heap-only updates: see the Message model). The
reading side and its plain twin, the scan, are `sender.ops.counts`.

What keeps the tallies exact, with workers, the scheduler, staff and webhook
tasks changing messages at once:

- Every statement that changes messages' status changes the tallies of their
  batches by what it changed, in the same transaction.
- A transaction that moves *all* of a batch's messages of one status
  (acceptance, a failed attempt, a cancel, a retry) locks the batch row before
  it touches the messages and moves the tally whole (`moved_all`): nobody else
  can be moving that batch's messages meanwhile, so the tally is their number.
- Any other change counts the rows it changed (rowcount, RETURNING batch_id)
  and adds them (`move`). It too locks the batches first when it moves planned
  messages (`lock`), the status a whole move reads.

Messages without a batch (none are planned so; older test rows) have no tally:
the readers count them from `messages` through its batch_id index.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, cast

from sqlalchemy import Column, Integer, Table, bindparam, select, update
from sqlalchemy.orm import Session

from sender.core.models import Batch
from sender.core.vocabulary import MessageStatus

_BATCHES = cast(Table, Batch.__table__)
# The column of `batches` that counts each message status.
COLUMN: Mapping[MessageStatus, str] = {
    MessageStatus.PLANNED: "planned_count",
    MessageStatus.SENT: "sent_count",
    MessageStatus.SKIPPED: "skipped_count",
    MessageStatus.FAILED: "failed_count",
    MessageStatus.CANCELLED: "cancelled_count",
}


def column(status: MessageStatus) -> Column[int]:
    return cast("Column[int]", _BATCHES.c[COLUMN[status]])


def moved_all(source: MessageStatus, target: MessageStatus) -> dict[str, Any]:
    """Values for the UPDATE of locked batch rows whose every `source` message goes to `target`.

    Both right-hand sides read the row as it was, so the count moves, never doubles.
    """
    return {COLUMN[target]: column(target) + column(source), COLUMN[source]: 0}


def lock(session: Session, batch_ids: Iterable[int]) -> None:
    """Take the batch rows' locks in id order, so two takers never wait on each other
    in a circle (SQLite locks the whole database anyway)."""
    ids = sorted(set(batch_ids))
    if ids:
        session.execute(
            select(Batch.id).where(Batch.id.in_(ids)).order_by(Batch.id).with_for_update()
        ).all()


def per_batch(batch_ids: Iterable[int | None]) -> dict[int, int]:
    """How many changed rows each batch had (the rows RETURNING batch_id gave back)."""
    return dict(Counter(b for b in batch_ids if b is not None))


def move(
    session: Session, moved: Mapping[int, int], source: MessageStatus, target: MessageStatus
) -> None:
    """Add what just moved (batch id -> messages) from `source` to `target`, batch by batch
    in id order."""
    rows = [{"tally_batch": b, "tally_n": n} for b, n in sorted(moved.items()) if n]
    if not rows:
        return
    n = bindparam("tally_n", type_=Integer)
    session.execute(
        update(_BATCHES)
        .where(_BATCHES.c.id == bindparam("tally_batch"))
        .values({COLUMN[source]: column(source) - n, COLUMN[target]: column(target) + n}),
        rows,
    )
