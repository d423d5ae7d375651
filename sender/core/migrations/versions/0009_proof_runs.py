"""proof runs: proofs sent in the background

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 15:47:00

The workspace's "send every variant" runs in the background; proof_runs holds
what its page polls (variants sent, failed with the reason) and the form's
one-off key, unique so a double submission finds the first run.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import sender.core.models

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "proof_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("request_key", sa.String(length=64), nullable=False),
        sa.Column("wave_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("started_by", sa.String(length=320), nullable=False),
        sa.Column(
            "addresses",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "sent",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "failed",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.Column("created_at", sender.core.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sender.core.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["wave_id"], ["waves.id"], name=op.f("fk_proof_runs_wave_id_waves"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proof_runs")),
        sa.UniqueConstraint("request_key", name=op.f("uq_proof_runs_request_key")),
    )


def downgrade() -> None:
    op.drop_table("proof_runs")
