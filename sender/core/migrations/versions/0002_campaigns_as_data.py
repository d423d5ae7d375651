"""campaigns as data: status, languages, reply domain, send window, cap, kinds

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 07:30:00

A database made before this revision holds one campaign (w4r-2020) whose
languages were fixed in code; it becomes an open campaign declaring those four
languages, with the send window and cap it was using, so its waves, messages,
actions and reports carry on unchanged.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import sender.core.models

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
LANGUAGES_BEFORE_0002 = '["en", "es", "fr", "ar"]'


def upgrade() -> None:
    # Plain ADD COLUMN, not a batch copy: SQLite adds a column with a constant
    # default in place, and copying the table would trip the foreign keys of
    # cases and waves.
    for column in _new_columns():
        op.add_column("campaigns", column)
    campaigns = sa.table(
        "campaigns",
        sa.column("languages", JSON),
        sa.column("created_at", sender.core.models.UTCDateTime(timezone=True)),
        sa.column("updated_at", sender.core.models.UTCDateTime(timezone=True)),
    )
    op.execute(
        campaigns.update().values(
            languages=sa.literal_column(f"'{LANGUAGES_BEFORE_0002}'", JSON),
            updated_at=campaigns.c.created_at,
        )
    )
    if op.get_bind().dialect.name != "sqlite":
        # The defaults were there only to fill existing rows; the code sets every
        # value. SQLite cannot drop a default without copying the table.
        for name in ("status", "languages", "local_window_start", "local_window_end", "kinds"):
            op.alter_column("campaigns", name, server_default=None)
        op.alter_column("campaigns", "updated_at", server_default=None)


def _new_columns() -> list[sa.Column[object]]:
    when = sender.core.models.UTCDateTime(timezone=True)
    return [
        sa.Column("status", sa.String(length=16), nullable=False, server_default="open"),
        sa.Column("closed_at", when, nullable=True),
        sa.Column("languages", JSON, nullable=False, server_default="[]"),
        sa.Column("reply_domain", sa.String(length=253), nullable=True),
        sa.Column("local_window_start", sa.Time(), nullable=False, server_default="09:00:00"),
        sa.Column("local_window_end", sa.Time(), nullable=False, server_default="11:00:00"),
        sa.Column("frequency_cap_hours", sa.Integer(), nullable=True),
        sa.Column("kinds", JSON, nullable=False, server_default="{}"),
        # A constant: SQLite adds no column with a computed default. Set just below.
        sa.Column("updated_at", when, nullable=False, server_default="1970-01-01 00:00:00+00:00"),
    ]


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as table:
        for column in reversed(_new_columns()):
            table.drop_column(column.name)
