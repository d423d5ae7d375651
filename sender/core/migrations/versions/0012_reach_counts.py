"""reach counts: the launch confirmation's figures, counted in the background

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 00:10:00

At a million supporters counting who a wave reaches takes seconds, longer
than a page should wait; reach_counts holds one count per wave (what it was
counted for, its state and its rows of figures) for the page to poll.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import sender.core.models

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reach_counts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("wave_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("counted_for", sender.core.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("started_at", sender.core.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sender.core.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "rows",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["wave_id"],
            ["waves.id"],
            name=op.f("fk_reach_counts_wave_id_waves"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reach_counts")),
        sa.UniqueConstraint("wave_id", name=op.f("uq_reach_counts_wave_id")),
    )


def downgrade() -> None:
    op.drop_table("reach_counts")
