from __future__ import annotations

from datetime import UTC, datetime

import pytest
from campaign_fixtures import add_2020_campaign
from sqlalchemy import Engine, func, select

from sender.core.db import session_scope
from sender.core.errors import InvalidInput, NotFound
from sender.core.staff_models import StaffAccount
from sender.staff import accounts
from sender.staff.roles import Role

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
GOOD = "quiet-harbour-lantern-71"


def test_add_then_sign_in(any_engine: Engine) -> None:
    with session_scope(any_engine) as session:
        assert not accounts.any_accounts(session)
        made = accounts.add_account(session, " Lena.Kovac@Example.org ", Role.ADMIN, GOOD, NOW)
    assert made.email == "lena.kovac@example.org" and made.role is Role.ADMIN
    assert made.campaign_ids is None and not made.disabled and not made.two_factor
    with session_scope(any_engine) as session:
        assert accounts.any_accounts(session)
        signed_in = accounts.verify_login(session, "LENA.KOVAC@example.org", GOOD, NOW)
        assert signed_in is not None and signed_in.last_login_at == NOW
        assert accounts.verify_login(session, "lena.kovac@example.org", GOOD + "x", NOW) is None
        assert accounts.verify_login(session, "nobody@example.org", GOOD, NOW) is None
        assert accounts.verify_login(session, "not an address", GOOD, NOW) is None


def test_a_common_password_or_taken_address_creates_nothing(any_engine: Engine) -> None:
    with session_scope(any_engine) as session:
        accounts.add_account(session, "lena@example.org", Role.VIEWER, GOOD, NOW)
    with pytest.raises(InvalidInput, match="common passwords"), session_scope(any_engine) as db:
        accounts.add_account(db, "omar@example.org", Role.ADMIN, "password1234", NOW)
    with pytest.raises(InvalidInput, match="already exists"), session_scope(any_engine) as db:
        accounts.add_account(db, "LENA@example.org", Role.ADMIN, GOOD, NOW)
    with session_scope(any_engine) as session:
        assert session.scalar(select(func.count()).select_from(StaffAccount)) == 1
        assert accounts.get(session, "lena@example.org").role is Role.VIEWER


def test_disable_and_password_change_bump_the_session_version(any_engine: Engine) -> None:
    with session_scope(any_engine) as session:
        first = accounts.add_account(session, "lena@example.org", Role.CAMPAIGNER, GOOD, NOW)
    with session_scope(any_engine) as session:
        changed = accounts.set_password(session, "lena@example.org", "amber-tide-gully-93", NOW)
    assert changed.session_version == first.session_version + 1
    with session_scope(any_engine) as session:
        disabled = accounts.disable(session, "lena@example.org", NOW)
        assert disabled.disabled and disabled.session_version == first.session_version + 2
        assert (
            accounts.verify_login(session, "lena@example.org", "amber-tide-gully-93", NOW) is None
        )
        again = accounts.disable(session, "lena@example.org", NOW)  # no second bump
        assert again.session_version == disabled.session_version
        enabled = accounts.enable(session, "lena@example.org", NOW)
        assert not enabled.disabled
        assert accounts.verify_login(session, "lena@example.org", "amber-tide-gully-93", NOW)


def test_campaign_limits_name_existing_campaigns(pg_engine: Engine) -> None:
    add_2020_campaign(pg_engine)
    with session_scope(pg_engine) as session:
        limited = accounts.add_account(
            session, "omar@example.org", Role.CAMPAIGNER, GOOD, NOW, campaigns=["w4r-2020"]
        )
        assert limited.campaigns == ("w4r-2020",) and limited.campaign_ids
        actor = limited.actor("203.0.113.9")
        assert actor.campaign_ids == limited.campaign_ids and actor.address == "203.0.113.9"
    with pytest.raises(NotFound, match="no campaign"), session_scope(pg_engine) as session:
        accounts.add_account(
            session, "ada@example.org", Role.VIEWER, GOOD, NOW, campaigns=["w4r-2031"]
        )
    with session_scope(pg_engine) as session:
        assert accounts.find(session, "ada@example.org") is None
        widened = accounts.set_role(session, "omar@example.org", Role.ADMIN, NOW, campaigns=[])
        assert widened.campaign_ids is None and widened.role is Role.ADMIN


def test_unknown_account_is_named(any_engine: Engine) -> None:
    with pytest.raises(NotFound, match="staff list"), session_scope(any_engine) as session:
        accounts.disable(session, "ghost@example.org", NOW)


def test_the_last_active_admin_can_be_neither_disabled_nor_demoted(any_engine: Engine) -> None:
    with session_scope(any_engine) as session:
        accounts.add_account(session, "lena@example.org", Role.ADMIN, GOOD, NOW)
    for change in (
        lambda db: accounts.disable(db, "lena@example.org", NOW),
        lambda db: accounts.set_role(db, "lena@example.org", Role.CAMPAIGNER, NOW),
    ):
        with pytest.raises(InvalidInput, match="only active"), session_scope(any_engine) as db:
            change(db)
    with session_scope(any_engine) as session:
        lena = accounts.get(session, "lena@example.org")
        assert lena.role is Role.ADMIN and not lena.disabled and lena.session_version == 1
        accounts.add_account(session, "omar@example.org", Role.ADMIN, GOOD, NOW)
        assert accounts.disable(session, "lena@example.org", NOW).disabled  # another admin now
        with pytest.raises(InvalidInput, match="only active admin"):
            accounts.set_role(session, "omar@example.org", Role.VIEWER, NOW)
