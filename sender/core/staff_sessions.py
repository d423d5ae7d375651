"""Server-side session versions: what lets logout and a password change end every session.

A staff session cookie is signed, not stored, so on its own it stays valid
until it expires, wherever a copy of it went. Each session therefore carries
the version its user had at login, and the web app compares it with the
version kept here on every request: bumping the version (logout) ends every
session issued before, on every browser and every web process at once.

Passwords live in the settings today (one shared staff login), so a password
change is seen through `credential`: a keyed digest of user and password.
When the configured password differs from the digest stored, the version is
bumped before anything is compared, so sessions made under the old password
end on the first request after the restart that brought the new one.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sender.core.models import StaffSessionVersion
from sender.core.upsert import insert_for


def credential_digest(secret_key: str, user: str, password: str) -> str:
    """Keyed, so the stored digest tells nothing about the password without the secret."""
    message = f"{user}\0{password}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def current_version(session: Session, user: str, credential: str, now: datetime) -> int:
    """The version every live session of `user` must carry; made on first use."""
    row = session.scalar(select(StaffSessionVersion).where(StaffSessionVersion.user_name == user))
    if row is None:
        statement = insert_for(session, StaffSessionVersion.__table__).values(
            user_name=user, version=1, credential=credential, updated_at=now
        )
        session.execute(statement.on_conflict_do_nothing(index_elements=["user_name"]))
    elif hmac.compare_digest(row.credential, credential):
        return row.version
    else:
        # The password changed: every session issued under the old one ends.
        # Conditional, so two web processes seeing the change bump it once.
        session.execute(
            update(StaffSessionVersion)
            .where(
                StaffSessionVersion.user_name == user,
                StaffSessionVersion.credential != credential,
            )
            .values(version=StaffSessionVersion.version + 1, credential=credential, updated_at=now)
        )
    session.expire_all()
    found = session.scalar(
        select(StaffSessionVersion.version).where(StaffSessionVersion.user_name == user)
    )
    return int(found or 1)


def revoke_sessions(session: Session, user: str, credential: str, now: datetime) -> int:
    """End every session of `user` (logout); the new version, for nobody to hold yet."""
    current_version(session, user, credential, now)
    session.execute(
        update(StaffSessionVersion)
        .where(StaffSessionVersion.user_name == user)
        .values(version=StaffSessionVersion.version + 1, updated_at=now)
    )
    session.expire_all()
    return int(
        session.scalar(
            select(StaffSessionVersion.version).where(StaffSessionVersion.user_name == user)
        )
        or 1
    )
