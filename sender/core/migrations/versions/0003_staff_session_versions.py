"""staff session versions: logout and a password change end every session

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import sender.core.models

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_session_versions",
        sa.Column("user_name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("credential", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sender.core.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_name", name=op.f("pk_staff_session_versions")),
    )


def downgrade() -> None:
    op.drop_table("staff_session_versions")
