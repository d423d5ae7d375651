from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlalchemy import Engine, select

from sender.core.db import session_scope
from sender.core.staff_models import StaffAccount, StaffRecoveryCode
from sender.staff import accounts, totp
from sender.staff.roles import Role

NOW = datetime(2026, 12, 4, 9, 0, 10, tzinfo=UTC)
KEY = "test-secret-key-for-totp"


@pytest.fixture
def enrolled(any_engine: Engine) -> tuple[Engine, int, str, list[str]]:
    secret = totp.new_secret()
    with session_scope(any_engine) as session:
        account = accounts.add_account(
            session, "lena@example.org", Role.ADMIN, "quiet-harbour-lantern-71", NOW
        )
        code = pyotp.TOTP(secret).at(NOW)
        codes = totp.enrol(session, KEY, account.id, secret, code, NOW)
    assert codes is not None and len(codes) == totp.RECOVERY_CODES
    return any_engine, account.id, secret, codes


def test_enrolment_needs_a_matching_code(any_engine: Engine) -> None:
    secret = totp.new_secret()
    with session_scope(any_engine) as session:
        account = accounts.add_account(
            session, "lena@example.org", Role.ADMIN, "quiet-harbour-lantern-71", NOW
        )
        wrong = pyotp.TOTP(totp.new_secret()).at(NOW)
        assert totp.enrol(session, KEY, account.id, secret, wrong, NOW) is None
        assert not accounts.get(session, "lena@example.org").two_factor


def test_secret_is_encrypted_at_rest(enrolled: tuple[Engine, int, str, list[str]]) -> None:
    engine, account_id, secret, _ = enrolled
    with session_scope(engine) as session:
        stored = session.get(StaffAccount, account_id)
        assert stored is not None and stored.totp_secret and secret not in stored.totp_secret
        assert accounts.get(session, "lena@example.org").two_factor


def test_a_code_works_once_and_a_wrong_code_never(
    enrolled: tuple[Engine, int, str, list[str]],
) -> None:
    engine, account_id, secret, _ = enrolled
    later = NOW + timedelta(seconds=30)
    code = pyotp.TOTP(secret).at(later)
    with session_scope(engine) as session:
        assert not totp.accept_code(session, KEY, account_id, "000000", later) or code == "000000"
        assert totp.accept_code(session, KEY, account_id, code, later)
    with session_scope(engine) as session:
        assert not totp.accept_code(session, KEY, account_id, code, later)  # replayed
        # The enrolment code's step is spent too, and an older step is a replay.
        assert not totp.accept_code(session, KEY, account_id, pyotp.TOTP(secret).at(NOW), later)
        assert not totp.accept_code(session, KEY, account_id, "12345", later)
        assert not totp.accept_code(session, "another key", account_id, code, later)


def test_recovery_codes_work_once(enrolled: tuple[Engine, int, str, list[str]]) -> None:
    engine, account_id, _, codes = enrolled
    with session_scope(engine) as session:
        assert totp.recovery_codes_left(session, account_id) == totp.RECOVERY_CODES
        assert totp.use_recovery_code(session, KEY, account_id, codes[0].upper(), NOW)
        assert not totp.use_recovery_code(session, KEY, account_id, codes[0], NOW)
        assert not totp.use_recovery_code(session, KEY, account_id, "abcd-efgh-jkmn", NOW)
        assert totp.recovery_codes_left(session, account_id) == totp.RECOVERY_CODES - 1
        digests = session.scalars(select(StaffRecoveryCode.code_digest)).all()
        assert not set(codes) & set(digests)


def test_reset_forgets_secret_and_codes(enrolled: tuple[Engine, int, str, list[str]]) -> None:
    engine, account_id, _, codes = enrolled
    with session_scope(engine) as session:
        reset = accounts.reset_two_factor(session, "lena@example.org", NOW)
        assert not reset.two_factor
        assert not totp.use_recovery_code(session, KEY, account_id, codes[1], NOW)


def test_qr_code_is_inline_svg() -> None:
    uri = totp.enrolment_uri(totp.new_secret(), "lena@example.org", "Write for Rights")
    assert uri.startswith("otpauth://totp/") and "issuer=Write%20for%20Rights" in uri
    svg = totp.qr_svg(uri, "Scan with your authenticator app")
    assert svg.startswith("<svg") and "Scan with" in svg
