"""Signing in as a staff account, and the settings' login as a bootstrap only while none exists."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select
from web_fixtures import (
    STAFF_EMAIL,
    STAFF_PASSWORD,
    STAFF_USER,
    add_staff,
    audit_rows,
    csrf_token,
    log_in,
    make_app,
    sign_in,
)

from sender.core.db import session_scope
from sender.core.staff_models import StaffAccount
from sender.staff import accounts
from sender.staff.roles import Role

PAGE = "/workspace/reports/"


def opens(client: FlaskClient) -> bool:
    return client.get(PAGE).status_code == 200


def versions(engine: Engine) -> dict[str, int]:
    with session_scope(engine) as session:
        rows = session.execute(select(StaffAccount.email, StaffAccount.session_version))
        return {str(row.email): int(row.session_version) for row in rows}


def log_out(client: FlaskClient) -> int:
    token = csrf_token(client, "/dashboard/account")
    return client.post("/logout", data={"csrf_token": token}).status_code


def test_the_bootstrap_login_works_while_no_account_exists_and_says_so(pg_engine: Engine) -> None:
    client = make_app(pg_engine).test_client()
    note = "campaign staff add EMAIL --role admin"
    assert note in client.get("/login").get_data(as_text=True)
    assert log_in(client) == 302
    for path in ("/dashboard/", PAGE, "/dashboard/account", "/dashboard/audit"):
        assert note in client.get(path).get_data(as_text=True), path
    (row,) = audit_rows(pg_engine, "login")
    assert (row.action, row.outcome, row.actor, row.actor_role) == (
        "login.bootstrap",
        "done",
        f"bootstrap:{STAFF_USER}",
        "admin",
    )
    assert row.address == "127.0.0.1"


def test_with_two_accounts_the_bootstrap_login_is_refused_and_recorded(pg_engine: Engine) -> None:
    add_staff(pg_engine, Role.ADMIN)
    add_staff(pg_engine, Role.VIEWER, email="omar@example.org")
    before = versions(pg_engine)
    client = make_app(pg_engine).test_client()
    assert "campaign staff add" not in client.get("/login").get_data(as_text=True)
    assert log_in(client) == 401
    assert not opens(client)
    with client.session_transaction() as session:
        assert "staff" not in session
    (row,) = audit_rows(pg_engine)
    assert (row.action, row.outcome, row.actor) == (
        "login.bootstrap",
        "refused",
        f"bootstrap:{STAFF_USER}",
    )
    assert versions(pg_engine) == before  # nothing about the accounts changed


def test_the_refusal_page_tells_the_bootstrap_user_why(pg_engine: Engine) -> None:
    add_staff(pg_engine, Role.ADMIN)
    client = make_app(pg_engine).test_client()
    token = csrf_token(client)
    response = client.post(
        "/login", data={"username": STAFF_USER, "password": STAFF_PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 401
    assert "staff accounts exist" in response.get_data(as_text=True)


def test_a_live_bootstrap_session_ends_when_the_first_account_is_made(pg_engine: Engine) -> None:
    client = make_app(pg_engine).test_client()
    assert log_in(client) == 302 and opens(client)
    add_staff(pg_engine, Role.ADMIN)
    assert not opens(client)
    assert client.get(PAGE).headers["Location"].startswith("/login")


def test_an_account_signs_in_and_out_with_rows_for_both(pg_engine: Engine) -> None:
    viewer = add_staff(pg_engine, Role.VIEWER)
    app = make_app(pg_engine)
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    assert sign_in(client) == 302 and opens(client)
    page = client.get(PAGE).get_data(as_text=True)
    assert STAFF_EMAIL in page and "campaign staff add" not in page
    cookie = client.get_cookie("session")
    assert cookie is not None
    assert log_out(client) == 302
    assert not opens(client)
    copy = app.test_client()
    copy.set_cookie("session", cookie.value)
    assert not opens(copy)  # logout ended the copy too: the account's version moved on
    assert versions(pg_engine)[STAFF_EMAIL] == viewer.session_version + 1
    logout, login = audit_rows(pg_engine)
    assert (login.action, login.actor, login.actor_role, login.address) == (
        "login",
        STAFF_EMAIL,
        "viewer",
        "198.51.100.7",
    )
    assert (logout.action, logout.actor, logout.address) == ("logout", STAFF_EMAIL, "198.51.100.7")


def test_wrong_passwords_are_recorded_without_what_was_typed(pg_engine: Engine) -> None:
    add_staff(pg_engine, Role.CAMPAIGNER)
    client = make_app(pg_engine).test_client()
    assert sign_in(client, password="quiet-harbour-lantern-72") == 401
    assert sign_in(client, email="my-secret-passphrase-typed-here") == 401
    assert not opens(client)
    unknown, known = audit_rows(pg_engine)
    assert (known.action, known.actor, known.target) == ("login.failed", STAFF_EMAIL, STAFF_EMAIL)
    assert (unknown.action, unknown.actor, unknown.target) == (
        "login.failed",
        "unknown account",
        "unknown account",
    )
    for row in (known, unknown):
        assert "lantern" not in str(row) and "passphrase" not in str(row)


def test_a_disabled_accounts_live_session_stops_at_once(pg_engine: Engine) -> None:
    add_staff(pg_engine, Role.ADMIN)
    campaigner = add_staff(pg_engine, Role.CAMPAIGNER, email="omar@example.org")
    app = make_app(pg_engine)
    client = app.test_client()
    assert sign_in(client, email=campaigner.email) == 302 and opens(client)
    with session_scope(pg_engine) as session:
        accounts.disable(session, campaigner.email, campaigner.created_at)
    assert not opens(client)
    assert client.get("/api/report").status_code == 401
    assert sign_in(client, email=campaigner.email) == 401  # nor can it sign in again
    (row,) = audit_rows(pg_engine, "login.failed")
    assert row.detail == "account disabled"


def test_a_role_change_ends_the_session_and_the_new_role_counts(pg_engine: Engine) -> None:
    account = add_staff(pg_engine, Role.CAMPAIGNER)
    client = make_app(pg_engine).test_client()
    assert sign_in(client) == 302
    assert client.get("/workspace/replies/review").status_code == 200
    with session_scope(pg_engine) as session:
        accounts.set_role(session, account.email, Role.VIEWER, account.created_at)
    assert not opens(client)
    assert sign_in(client) == 302
    assert client.get("/workspace/replies/review").status_code == 403


def test_a_hand_made_account_session_is_no_session(pg_engine: Engine) -> None:
    """Attack: a cookie naming an account id, signed with the right key but not made by a login."""
    account = add_staff(pg_engine, Role.VIEWER)
    client = make_app(pg_engine).test_client()
    with client.session_transaction() as session:
        session.update({"staff": True, "account": account.id})
    assert not opens(client)
    assert sign_in(client) == 302
    with client.session_transaction() as session:
        session["v"] = session["v"] + 1
    assert not opens(client)


def test_a_lockout_is_recorded_with_the_account_and_address(pg_engine: Engine) -> None:
    add_staff(pg_engine, Role.VIEWER)
    client = make_app(pg_engine).test_client()
    client.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    codes = [sign_in(client, password=f"quiet-harbour-guess-{i}") for i in range(6)]
    assert codes == [401] * 5 + [429]
    assert sign_in(client) == 429  # the right password waits too
    assert not opens(client)
    with session_scope(pg_engine) as session:
        locked = session.scalar(select(func.count()).select_from(StaffAccount))
    assert locked == 1
    lockouts = audit_rows(pg_engine, "login.locked")
    assert len(lockouts) == 2
    assert {(r.actor, r.address) for r in lockouts} == {(STAFF_EMAIL, "203.0.113.9")}
    assert len(audit_rows(pg_engine, "login.failed")) == 5
