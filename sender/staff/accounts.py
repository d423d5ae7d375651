"""Staff accounts: one per person, with a role, an optional campaign limit and 2FA.

Each change bumps what it must: disabling an account or changing its
password raises its session version, so every live session of that account
ends on its next request (sender.web.sessions reads the account each time).
Functions take the caller's session and return frozen values; the adapters
wrap them in sender.staff.audit.audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from sender.core.addresses import normalise_email
from sender.core.errors import InvalidInput, NotFound
from sender.core.models import Campaign
from sender.core.staff_models import StaffAccount, StaffCampaignLimit, StaffRecoveryCode
from sender.staff import passwords
from sender.staff.audit import Actor
from sender.staff.roles import Role


@dataclass(frozen=True)
class Account:
    id: int
    email: str
    role: Role
    campaigns: tuple[str, ...]  # slugs it is limited to; empty: every campaign
    campaign_ids: frozenset[int] | None
    disabled: bool
    two_factor: bool
    session_version: int
    last_login_at: datetime | None
    created_at: datetime

    def summary(self) -> str:
        """The short form the audit log keeps as before/after (no password, no secret)."""
        limit = ",".join(self.campaigns) or "all campaigns"
        state = "disabled" if self.disabled else "active"
        two_factor = "on" if self.two_factor else "off"
        return f"role={self.role.value} campaigns={limit} {state} 2fa={two_factor}"

    def actor(self, address: str) -> Actor:
        return Actor(self.email, self.role, address, self.campaign_ids, self.id)


def any_accounts(session: Session) -> bool:
    """While none exists, the settings' STAFF_USER login is the bootstrap way in."""
    return session.scalar(select(func.count()).select_from(StaffAccount)) != 0


def _limits(session: Session, account_id: int) -> list[tuple[int, str]]:
    rows = session.execute(
        select(Campaign.id, Campaign.slug)
        .join(StaffCampaignLimit, StaffCampaignLimit.campaign_id == Campaign.id)
        .where(StaffCampaignLimit.account_id == account_id)
        .order_by(Campaign.slug)
    )
    return [(int(i), str(s)) for i, s in rows]


def _account(session: Session, row: StaffAccount) -> Account:
    limits = _limits(session, row.id)
    return Account(
        id=row.id,
        email=row.email,
        role=Role(row.role),
        campaigns=tuple(slug for _, slug in limits),
        campaign_ids=frozenset(i for i, _ in limits) if limits else None,
        disabled=row.disabled_at is not None,
        two_factor=row.totp_secret is not None,
        session_version=row.session_version,
        last_login_at=row.last_login_at,
        created_at=row.created_at,
    )


def _row(session: Session, email: str) -> StaffAccount:
    found = session.scalar(select(StaffAccount).where(StaffAccount.email == _email(email)))
    if found is None:
        raise NotFound(f"no staff account {email!r}: `campaign staff list` shows them")
    return found


def _email(raw: str) -> str:
    return normalise_email(raw)


def find(session: Session, email: str) -> Account | None:
    try:
        row = session.scalar(select(StaffAccount).where(StaffAccount.email == _email(email)))
    except InvalidInput:
        return None
    return None if row is None else _account(session, row)


def by_id(session: Session, account_id: int) -> Account | None:
    row = session.get(StaffAccount, account_id)
    return None if row is None else _account(session, row)


def get(session: Session, email: str) -> Account:
    return _account(session, _row(session, email))


def all_accounts(session: Session) -> list[Account]:
    rows = session.scalars(select(StaffAccount).order_by(StaffAccount.email))
    return [_account(session, row) for row in rows]


def _campaign_ids(session: Session, slugs: Sequence[str]) -> list[int]:
    ids = []
    for slug in slugs:
        found = session.scalar(select(Campaign.id).where(Campaign.slug == slug.strip()))
        if found is None:
            raise NotFound(f"no campaign {slug!r}: `campaign campaigns list` shows them")
        ids.append(int(found))
    return ids


def _set_limits(session: Session, account_id: int, slugs: Sequence[str]) -> None:
    ids = _campaign_ids(session, slugs)
    session.execute(delete(StaffCampaignLimit).where(StaffCampaignLimit.account_id == account_id))
    session.add_all(StaffCampaignLimit(account_id=account_id, campaign_id=i) for i in ids)
    session.flush()


def add_account(
    session: Session,
    email: str,
    role: Role,
    password: str,
    now: datetime,
    campaigns: Sequence[str] = (),
) -> Account:
    """A new active account; refuses a taken address and a weak password, creating nothing."""
    address = _email(email)
    if session.scalar(select(StaffAccount.id).where(StaffAccount.email == address)) is not None:
        raise InvalidInput(f"a staff account {address} already exists")
    passwords.require_good_password(password, address)
    row = StaffAccount(
        email=address,
        role=role.value,
        password_hash=passwords.hash_password(password),
        session_version=1,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    _set_limits(session, row.id, campaigns)
    return _account(session, row)


def _bump(session: Session, row: StaffAccount, now: datetime, **values: object) -> None:
    """Apply `values` and end every live session of the account."""
    session.execute(
        update(StaffAccount)
        .where(StaffAccount.id == row.id)
        .values(session_version=StaffAccount.session_version + 1, updated_at=now, **values)
    )
    session.expire(row)


def _keep_an_admin(session: Session, row: StaffAccount, change: str) -> None:
    """Refuse to leave the installation without an active admin: nobody could manage staff."""
    if row.role != Role.ADMIN or row.disabled_at is not None:
        return
    others = session.scalar(
        select(func.count())
        .select_from(StaffAccount)
        .where(
            StaffAccount.role == Role.ADMIN.value,
            StaffAccount.disabled_at.is_(None),
            StaffAccount.id != row.id,
        )
    )
    if not others:
        raise InvalidInput(
            f"{row.email} is the only active admin: add another admin before you {change} it"
        )


def disable(session: Session, email: str, now: datetime) -> Account:
    row = _row(session, email)
    _keep_an_admin(session, row, "disable")
    if row.disabled_at is None:
        _bump(session, row, now, disabled_at=now)
    return _account(session, row)


def end_sessions(session: Session, account_id: int, now: datetime) -> Account | None:
    """Logout: every live session of the account ends, wherever its cookie went."""
    row = session.get(StaffAccount, account_id)
    if row is None:
        return None
    _bump(session, row, now)
    return _account(session, row)


def enable(session: Session, email: str, now: datetime) -> Account:
    row = _row(session, email)
    if row.disabled_at is not None:
        _bump(session, row, now, disabled_at=None)
    return _account(session, row)


def set_password(session: Session, email: str, password: str, now: datetime) -> Account:
    row = _row(session, email)
    passwords.require_good_password(password, row.email)
    _bump(session, row, now, password_hash=passwords.hash_password(password))
    return _account(session, row)


def set_role(
    session: Session, email: str, role: Role, now: datetime, campaigns: Sequence[str] | None = None
) -> Account:
    """A new role, and with `campaigns` a new limit (empty: every campaign); sessions end."""
    row = _row(session, email)
    if role is not Role.ADMIN:
        _keep_an_admin(session, row, "demote")
    _bump(session, row, now, role=role.value)
    if campaigns is not None:
        _set_limits(session, row.id, campaigns)
    return _account(session, row)


def reset_two_factor(session: Session, email: str, now: datetime) -> Account:
    """Forget the authenticator and recovery codes; an admin must enrol again at next sign-in."""
    row = _row(session, email)
    session.execute(delete(StaffRecoveryCode).where(StaffRecoveryCode.account_id == row.id))
    _bump(session, row, now, totp_secret=None, totp_last_step=None)
    return _account(session, row)


def verify_login(session: Session, email: str, password: str, now: datetime) -> Account | None:
    """The account when the password is right and the account active; None otherwise.

    An unknown address costs one argon2 verification too, so timing does not
    tell which addresses have accounts. A hash made with weaker parameters
    than today's is replaced on a good login.
    """
    try:
        address = _email(email)
    except InvalidInput:
        address = ""
    row = session.scalar(select(StaffAccount).where(StaffAccount.email == address))
    if row is None:
        passwords.password_matches(passwords.DUMMY_HASH, password)
        return None
    if not passwords.password_matches(row.password_hash, password) or row.disabled_at is not None:
        return None
    if passwords.needs_rehash(row.password_hash):
        row.password_hash = passwords.hash_password(password)
    row.last_login_at = now
    session.flush()
    return _account(session, row)
