"""batch tallies: each batch's messages by status on its row

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 23:45:00

The staff pages counted a wave's messages by scanning `messages` (no index on
wave_id, by design): 1.4 s at a million and a half messages. Each batch now
keeps its messages' count per status (sender.core.tallies), so a wave's counts
are a sum over its batch rows. Existing batches are counted from their
messages once here.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TALLIES = {
    "planned_count": "planned",
    "sent_count": "sent",
    "skipped_count": "skipped",
    "failed_count": "failed",
    "cancelled_count": "cancelled",
}


def upgrade() -> None:
    with op.batch_alter_table("batches") as batch_op:
        for name in _TALLIES:
            batch_op.add_column(sa.Column(name, sa.Integer(), server_default="0", nullable=False))
    _backfill()


def _backfill() -> None:
    """One grouped pass over `messages` on PostgreSQL; per batch on SQLite (small databases)."""
    if op.get_bind().dialect.name == "postgresql":
        sums = ", ".join(
            f"count(*) FILTER (WHERE status = '{status}') AS {name}"
            for name, status in _TALLIES.items()
        )
        sets = ", ".join(f"{name} = counted.{name}" for name in _TALLIES)
        op.execute(
            f"UPDATE batches SET {sets} FROM (SELECT batch_id, {sums} FROM messages"
            " WHERE batch_id IS NOT NULL GROUP BY batch_id) AS counted"
            " WHERE batches.id = counted.batch_id"
        )
        return
    sets = ", ".join(
        f"{name} = (SELECT count(*) FROM messages"
        f" WHERE messages.batch_id = batches.id AND messages.status = '{status}')"
        for name, status in _TALLIES.items()
    )
    op.execute(f"UPDATE batches SET {sets}")


def downgrade() -> None:
    with op.batch_alter_table("batches") as batch_op:
        for name in reversed(list(_TALLIES)):
            batch_op.drop_column(name)
