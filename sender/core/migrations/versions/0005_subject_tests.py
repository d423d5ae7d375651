"""subject tests: a wave's declared test, each batch's variant, the running test's state

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 18:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import sender.core.models

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_KEY = ["wave_id", "case_id", "language", "slot_at", "seq"]
_NEW_KEY = ["wave_id", "case_id", "language", "slot_at", "variant", "seq"]


def upgrade() -> None:
    op.create_table(
        "subject_tests",
        sa.Column("wave_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("started_at", sender.core.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("winner", sa.String(length=8), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(length=320), nullable=True),
        sa.Column("decided_at", sender.core.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sender.core.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["wave_id"],
            ["waves.id"],
            name=op.f("fk_subject_tests_wave_id_waves"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("wave_id", name=op.f("pk_subject_tests")),
    )
    with op.batch_alter_table("waves", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "subject_test",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                server_default="{}",
                nullable=False,
            )
        )
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("variant", sa.String(length=8), server_default="", nullable=False)
        )
        batch_op.drop_constraint(op.f("uq_batches_wave_id"), type_="unique")
        batch_op.create_unique_constraint(op.f("uq_batches_wave_id"), _NEW_KEY)


def downgrade() -> None:
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_batches_wave_id"), type_="unique")
        batch_op.create_unique_constraint(op.f("uq_batches_wave_id"), _OLD_KEY)
        batch_op.drop_column("variant")
    with op.batch_alter_table("waves", schema=None) as batch_op:
        batch_op.drop_column("subject_test")
    op.drop_table("subject_tests")
