"""replies: review decisions and delivery to the case team

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 14:34:49

Staff act on the review list from the workspace (assign, dismiss, unsubscribe)
and mark solidarity messages delivered to the case team; the reply row keeps
who decided or delivered, and when. Nullable columns only: SQLite adds them in
place, and every existing reply reads as not reviewed and not delivered.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import sender.core.models

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sender.core.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("replies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reviewed_at", WHEN, nullable=True))
        batch_op.add_column(sa.Column("reviewed_by", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("review_outcome", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("review_note", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("delivered_at", WHEN, nullable=True))
        batch_op.add_column(sa.Column("delivered_by", sa.String(length=320), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("replies", schema=None) as batch_op:
        for name in (
            "delivered_by",
            "delivered_at",
            "review_note",
            "review_outcome",
            "reviewed_by",
            "reviewed_at",
        ):
            batch_op.drop_column(name)
