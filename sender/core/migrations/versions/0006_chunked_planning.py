"""chunked planning: plan_rows and waves.planning_until

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 18:00:00

A wave is planned a few batches per transaction from rows staged in
plan_rows; planning_until marks a half-planned wave and whose it is. The
message's wave, case and batch lose their foreign keys, checked once per
planned row (sender.core.models.Message says why); the supporter's stays.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import sender.core.models

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sender.core.models.UTCDateTime(timezone=True)
# (name, column, table, on delete) of the keys this revision drops.
MESSAGE_KEYS = (
    ("fk_messages_batch_id_batches", "batch_id", "batches", "SET NULL"),
    ("fk_messages_case_id_cases", "case_id", "cases", None),
    ("fk_messages_wave_id_waves", "wave_id", "waves", "CASCADE"),
)


def upgrade() -> None:
    op.create_table(
        "plan_rows",
        sa.Column("wave_id", ID, autoincrement=False, nullable=False),
        sa.Column("slot_at", WHEN, nullable=False),
        sa.Column("case_id", ID, autoincrement=False, nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("variant", sa.String(length=8), nullable=False),
        sa.Column("batch_seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("supporter_id", ID, autoincrement=False, nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint(
            "wave_id",
            "slot_at",
            "case_id",
            "language",
            "variant",
            "batch_seq",
            "supporter_id",
            name=op.f("pk_plan_rows"),
        ),
    )
    # Plain ADD COLUMN (nullable, no default): SQLite adds it in place.
    op.add_column("waves", sa.Column("planning_until", WHEN, nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        # SQLite drops a constraint only by copying the table; no key points at messages.
        with op.batch_alter_table("messages", recreate="always") as batch:
            for name, *_ in MESSAGE_KEYS:
                batch.drop_constraint(name, type_="foreignkey")
    else:
        for name, *_ in MESSAGE_KEYS:
            op.drop_constraint(name, "messages", type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("messages", recreate="always") as batch:
            for name, column, target, ondelete in MESSAGE_KEYS:
                batch.create_foreign_key(name, target, [column], ["id"], ondelete=ondelete)
    else:
        for name, column, target, ondelete in MESSAGE_KEYS:
            op.create_foreign_key(name, "messages", target, [column], ["id"], ondelete=ondelete)
    op.drop_column("waves", "planning_until")
    op.drop_table("plan_rows")
