"""Two-factor sign-in: TOTP codes (RFC 6238, pyotp) and one-time recovery codes.

The TOTP secret is stored encrypted with a key derived from SECRET_KEY, so a
copy of the database alone cannot mint codes. A code is accepted once: the
time step it belongs to is remembered, and a code of that step or an earlier
one is a replay. Recovery codes are random and long, so a keyed digest (not a
slow hash) is enough to keep them unreadable at rest; each works once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime

import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from sender.core.staff_models import StaffAccount, StaffRecoveryCode

RECOVERY_CODES = 10
DRIFT_STEPS = 1  # accept the code of the previous and next 30 s step: phone clocks drift
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread


def _fernet(secret_key: str) -> Fernet:
    derived = hashlib.sha256(b"campaign totp secret\0" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def new_secret() -> str:
    return pyotp.random_base32()


def enrolment_uri(secret: str, email: str, issuer: str) -> str:
    """The otpauth:// address an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def qr_svg(uri: str, title: str) -> str:
    """The enrolment QR code as inline SVG: drawn on the server, nothing loaded from elsewhere."""
    return str(segno.make(uri, error="m").svg_inline(scale=5, title=title, border=2))


def _step(totp: pyotp.TOTP, code: str, now: datetime) -> int | None:
    """The time step `code` belongs to, within the drift allowed, or None."""
    cleaned = "".join(code.split())
    if not (cleaned.isdigit() and len(cleaned) == totp.digits):
        return None
    current = totp.timecode(now)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), cleaned):
            return step
    return None


def code_matches_secret(secret: str, code: str, now: datetime) -> bool:
    """For enrolment: the code from the app proves it holds `secret`."""
    return _step(pyotp.TOTP(secret), code, now) is not None


def _digest(secret_key: str, code: str) -> str:
    normalised = "".join(ch for ch in code.lower() if ch.isalnum())
    return hmac.new(secret_key.encode(), normalised.encode(), hashlib.sha256).hexdigest()


def _new_recovery_codes(session: Session, secret_key: str, account_id: int) -> list[str]:
    session.query(StaffRecoveryCode).filter_by(account_id=account_id).delete()
    codes = [
        "-".join("".join(secrets.choice(_ALPHABET) for _ in range(4)) for _ in range(3))
        for _ in range(RECOVERY_CODES)
    ]
    session.add_all(
        StaffRecoveryCode(account_id=account_id, code_digest=_digest(secret_key, code))
        for code in codes
    )
    return codes


def enrol(
    session: Session, secret_key: str, account_id: int, secret: str, code: str, now: datetime
) -> list[str] | None:
    """Store `secret` once a code from the app matches it; the new recovery codes, or None."""
    step = _step(pyotp.TOTP(secret), code, now)
    if step is None:
        return None
    session.execute(
        update(StaffAccount)
        .where(StaffAccount.id == account_id)
        .values(
            totp_secret=_fernet(secret_key).encrypt(secret.encode()).decode(),
            totp_last_step=step,
            updated_at=now,
        )
    )
    return _new_recovery_codes(session, secret_key, account_id)


def accept_code(
    session: Session, secret_key: str, account_id: int, code: str, now: datetime
) -> bool:
    """True once per good code; a replayed or wrong code, or no enrolment, is False."""
    row = session.get(StaffAccount, account_id, with_for_update=True)
    if row is None or row.totp_secret is None:
        return False
    try:
        secret = _fernet(secret_key).decrypt(row.totp_secret.encode()).decode()
    except InvalidToken:
        return False  # SECRET_KEY changed: an admin resets this account's 2FA
    step = _step(pyotp.TOTP(secret), code, now)
    if step is None or (row.totp_last_step is not None and step <= row.totp_last_step):
        return False
    # Conditional, so two requests racing with the same code accept it once.
    claimed = session.execute(
        update(StaffAccount)
        .where(StaffAccount.id == account_id)
        .where((StaffAccount.totp_last_step.is_(None)) | (StaffAccount.totp_last_step < step))
        .values(totp_last_step=step)
    )
    return bool(claimed.rowcount)  # type: ignore[attr-defined]


def use_recovery_code(
    session: Session, secret_key: str, account_id: int, code: str, now: datetime
) -> bool:
    """True once per recovery code."""
    used = session.execute(
        update(StaffRecoveryCode)
        .where(
            StaffRecoveryCode.account_id == account_id,
            StaffRecoveryCode.code_digest == _digest(secret_key, code),
            StaffRecoveryCode.used_at.is_(None),
        )
        .values(used_at=now)
    )
    return bool(used.rowcount)  # type: ignore[attr-defined]


def recovery_codes_left(session: Session, account_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(StaffRecoveryCode)
            .where(StaffRecoveryCode.account_id == account_id, StaffRecoveryCode.used_at.is_(None))
        )
        or 0
    )
