"""The staff tables: accounts, their campaign limits, recovery codes and the audit log.

Kept apart from sender.core.models so that neither file grows past reading
length; sender.core.models imports this module last, so the tables share
its metadata and every migration sees them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sender.core.models import Base, Id, utcnow


class StaffAccount(Base):
    """One person who signs in to the dashboard or acts through `campaign --as`."""

    __tablename__ = "staff_accounts"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # normalised, lower case
    role: Mapped[str] = mapped_column(String(16))  # sender.staff.roles.Role
    password_hash: Mapped[str] = mapped_column(String(200))  # argon2id, PHC string
    # Encrypted with a key derived from SECRET_KEY (sender.staff.totp); None = no 2FA.
    totp_secret: Mapped[str | None] = mapped_column(String(300))
    # The last TOTP time step accepted: a code of that step or an earlier one is a replay.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    # Every live session carries the version it was issued under; bumping it ends them all.
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    disabled_at: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class StaffCampaignLimit(Base):
    """The campaigns an account may act on; an account with no rows here may act on all."""

    __tablename__ = "staff_campaign_limits"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("staff_accounts.id", ondelete="CASCADE"), primary_key=True
    )
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )


class StaffRecoveryCode(Base):
    """One-time codes that stand in for a lost authenticator; only their digests are kept."""

    __tablename__ = "staff_recovery_codes"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("staff_accounts.id", ondelete="CASCADE"), index=True
    )
    code_digest: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None]


class AuditEntry(Base):
    """One state change, or one refused attempt at one. Append-only.

    Migration 0004 adds triggers that refuse UPDATE, DELETE (and on PostgreSQL
    TRUNCATE) of these rows; `campaign db app-role` grants the application's
    role INSERT and SELECT on it and nothing else (docs/SECURITY.md). The rows
    name objects by id or name and never hold supporter data.
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_action_at", "action", "at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(320), index=True)  # an account, os:<user> or system
    actor_role: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(300))  # client address, or host name
    action: Mapped[str] = mapped_column(String(40))  # sender.staff.audit.What
    outcome: Mapped[str] = mapped_column(String(16))  # sender.staff.audit.Outcome
    target: Mapped[str] = mapped_column(String(300))
    campaign_id: Mapped[int | None] = mapped_column(Integer)  # no foreign key: rows outlive it
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text)
