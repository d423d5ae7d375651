"""chunked planning: plan_rows and waves.planning_until

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 18:00:00

A wave is planned a few batches per transaction from rows staged in
plan_rows; planning_until marks a half-planned wave and whose it is.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import sender.core.models

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sender.core.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "plan_rows",
        sa.Column("wave_id", ID, autoincrement=False, nullable=False),
        sa.Column("slot_at", WHEN, nullable=False),
        sa.Column("case_id", ID, autoincrement=False, nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("batch_seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("supporter_id", ID, autoincrement=False, nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint(
            "wave_id",
            "slot_at",
            "case_id",
            "language",
            "batch_seq",
            "supporter_id",
            name=op.f("pk_plan_rows"),
        ),
    )
    # Plain ADD COLUMN (nullable, no default): SQLite adds it in place.
    op.add_column("waves", sa.Column("planning_until", WHEN, nullable=True))


def downgrade() -> None:
    op.drop_column("waves", "planning_until")
    op.drop_table("plan_rows")
