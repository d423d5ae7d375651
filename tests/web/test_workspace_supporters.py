"""The supporters workspace: assignment, search, erasure, suppressions, solidarity export."""

from __future__ import annotations

from pathlib import Path

from flask.testing import FlaskClient
from ops_fixtures import EMAILS, seed
from sqlalchemy import Engine, func, select
from supporters_fixtures import PAGE, changes, signed_in
from web_fixtures import csrf_token
from werkzeug.test import TestResponse

from sender.core.addresses import email_hash
from sender.core.db import session_scope
from sender.core.models import Assignment, Supporter, Suppression
from sender.core.vocabulary import SupporterStatus, SuppressionReason
from sender.staff.roles import Role

ROOT = "/workspace/supporters"
ASSIGN = {"strategy": "balanced", "cases_per_supporter": "1", "seed": "7"}


def assignments(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(session.scalar(select(func.count()).select_from(Assignment)) or 0)


def supporter(engine: Engine, email: str) -> Supporter:
    with session_scope(engine) as session:
        found = session.scalar(select(Supporter).where(Supporter.email_hash == email_hash(email)))
        assert found is not None
        session.expunge(found)
        return found


def suppression(engine: Engine, email: str) -> str | None:
    with session_scope(engine) as session:
        return session.scalar(
            select(Suppression.reason).where(Suppression.email_hash == email_hash(email))
        )


def post(client: FlaskClient, path: str, **data: str) -> TestResponse:
    return client.post(path, data={"csrf_token": csrf_token(client, PAGE), **data})


def test_assign_shows_the_per_case_table_and_is_audited(pg_engine: Engine, tmp_path: Path) -> None:
    seeded = seed(pg_engine)
    client = signed_in(pg_engine, Role.CAMPAIGNER, tmp_path)
    response = post(client, f"{ROOT}/assign", **ASSIGN)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'data-testid="case-table"' in page and "bird" in page and "popi" in page
    assert "10 assignments created for 10 supporters" in page
    assert assignments(pg_engine) == 10
    (entry,) = changes(pg_engine, "assign")
    assert (entry.outcome, entry.campaign_id) == ("done", seeded.campaign_id)
    assert entry.detail is not None and entry.detail.startswith("10 created")


def test_assign_refuses_bad_choices_and_changes_nothing(pg_engine: Engine, tmp_path: Path) -> None:
    seed(pg_engine)
    client = signed_in(pg_engine, Role.CAMPAIGNER, tmp_path)
    for bad in ({"strategy": "lottery"}, {"cases_per_supporter": "0"}, {"seed": "x"}):
        response = post(client, f"{ROOT}/assign", **{**ASSIGN, **bad})
        assert response.status_code == 400
        assert "Nothing was assigned" in response.get_data(as_text=True)
    response = post(client, f"{ROOT}/assign", **ASSIGN, campaign="no-such-campaign")
    assert response.status_code == 400
    assert assignments(pg_engine) == 0


def test_a_viewer_cannot_assign(pg_engine: Engine, tmp_path: Path) -> None:
    seed(pg_engine)
    client = signed_in(pg_engine, Role.VIEWER, tmp_path)
    assert "Assign cases" not in client.get(PAGE).get_data(as_text=True)
    assert post(client, f"{ROOT}/assign", **ASSIGN).status_code == 403
    assert assignments(pg_engine) == 0
    (entry,) = changes(pg_engine, "assign")
    assert entry.outcome == "refused"


def test_search_shows_one_supporter_and_records_no_address(
    pg_engine: Engine, tmp_path: Path
) -> None:
    seed(pg_engine)
    client = signed_in(pg_engine, Role.CAMPAIGNER, tmp_path)
    page = client.get(f"{ROOT}/search", query_string={"email": EMAILS[0].upper()})
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-testid="profile"' in text
    assert EMAILS[0] in text and "subscribed" in text and "w4r-2020" in text
    assert "case-email" in text and "opened" in text  # a message and an action
    missing = client.get(f"{ROOT}/search", query_string={"email": "nobody@example.org"})
    assert 'data-testid="no-supporter"' in missing.get_data(as_text=True)
    bad = client.get(f"{ROOT}/search", query_string={"email": "not an address"})
    assert bad.status_code == 400
    found, not_found = changes(pg_engine, "supporters.lookup")
    assert (found.detail, not_found.detail) == ("found", "not found")
    assert all("supporter0" not in str(e) for e in (found, not_found))


def test_a_viewer_cannot_search(pg_engine: Engine, tmp_path: Path) -> None:
    seed(pg_engine)
    client = signed_in(pg_engine, Role.VIEWER, tmp_path)
    response = client.get(f"{ROOT}/search", query_string={"email": EMAILS[0]})
    assert response.status_code == 403 and EMAILS[0] not in response.get_data(as_text=True)
    (entry,) = changes(pg_engine, "supporters.lookup")
    assert entry.outcome == "refused"


def test_erasure_asks_first_then_forgets_without_the_address_in_the_log(
    pg_engine: Engine, tmp_path: Path
) -> None:
    seed(pg_engine)
    client = signed_in(pg_engine, Role.ADMIN, tmp_path)
    asked = post(client, f"{ROOT}/forget", email=EMAILS[2])
    assert asked.status_code == 200 and "cannot be undone" in asked.get_data(as_text=True)
    assert supporter(pg_engine, EMAILS[2]).email == EMAILS[2]  # asking changed nothing
    assert changes(pg_engine, "supporters.forget") == []

    done = post(client, f"{ROOT}/forget", email=EMAILS[2], confirm="erase")
    assert done.status_code == 200 and 'data-testid="erased"' in done.get_data(as_text=True)
    erased = supporter(pg_engine, EMAILS[2])
    assert (erased.email, erased.status) == (None, SupporterStatus.FORGOTTEN)
    assert suppression(pg_engine, EMAILS[2]) == SuppressionReason.FORGOTTEN
    (entry,) = changes(pg_engine, "supporters.forget")
    assert entry.outcome == "done" and "supporter2" not in str(entry)

    unknown = post(client, f"{ROOT}/forget", email="nobody@example.org", confirm="erase")
    assert unknown.status_code == 400
    failed = changes(pg_engine, "supporters.forget")[-1]
    assert failed.outcome == "failed" and "nobody" not in str(failed)


def test_a_campaigner_cannot_erase(pg_engine: Engine, tmp_path: Path) -> None:
    seed(pg_engine)
    client = signed_in(pg_engine, Role.CAMPAIGNER, tmp_path)
    assert post(client, f"{ROOT}/forget", email=EMAILS[3], confirm="erase").status_code == 403
    assert supporter(pg_engine, EMAILS[3]).email == EMAILS[3]
    assert suppression(pg_engine, EMAILS[3]) is None
    (entry,) = changes(pg_engine, "supporters.forget")
    assert entry.outcome == "refused"


def test_an_admin_adds_and_lifts_a_manual_suppression(pg_engine: Engine, tmp_path: Path) -> None:
    client = signed_in(pg_engine, Role.ADMIN, tmp_path)
    path = f"{ROOT}/suppressions/add"
    added = post(client, path, email="Rita@Example.org", reason="asked by phone")
    assert added.status_code == 200 and "is suppressed" in added.get_data(as_text=True)
    assert suppression(pg_engine, "rita@example.org") == SuppressionReason.MANUAL
    found = client.get(f"{ROOT}/suppressions", query_string={"email": "rita@example.org"})
    assert 'data-testid="suppressed"' in found.get_data(as_text=True)
    lifted = post(client, f"{ROOT}/suppressions/remove", email="rita@example.org")
    assert lifted.status_code == 200 and "is lifted" in lifted.get_data(as_text=True)
    assert suppression(pg_engine, "rita@example.org") is None
    (add,) = changes(pg_engine, "suppression.add")
    (remove,) = changes(pg_engine, "suppression.remove")
    assert add.detail == "reason: asked by phone" and add.target.startswith("address sha256:")
    assert (remove.before, remove.after) == ("suppressed (manual)", "not suppressed")
    assert "rita" not in str(add) + str(remove)


def test_a_complaint_cannot_be_lifted_nor_a_reason_left_out(
    pg_engine: Engine, tmp_path: Path
) -> None:
    with session_scope(pg_engine) as session:
        digest = email_hash("sam@example.org")
        session.add(Suppression(email_hash=digest, reason=SuppressionReason.COMPLAINED))
    client = signed_in(pg_engine, Role.ADMIN, tmp_path)
    refused = post(client, f"{ROOT}/suppressions/remove", email="sam@example.org")
    assert refused.status_code == 400 and "only the supporter" in refused.get_data(as_text=True)
    assert suppression(pg_engine, "sam@example.org") == SuppressionReason.COMPLAINED
    blank = post(client, f"{ROOT}/suppressions/add", email="new@example.org", reason="  ")
    assert blank.status_code == 400 and suppression(pg_engine, "new@example.org") is None
    bad = post(client, f"{ROOT}/suppressions/add", email="not an address", reason="x")
    assert bad.status_code == 400
    assert [e.outcome for e in changes(pg_engine, "suppression.remove")] == ["failed"]
    assert changes(pg_engine, "suppression.add") == []


def test_a_campaigner_cannot_change_suppressions(pg_engine: Engine, tmp_path: Path) -> None:
    with session_scope(pg_engine) as session:
        digest = email_hash("kept@example.org")
        session.add(Suppression(email_hash=digest, reason=SuppressionReason.MANUAL))
    client = signed_in(pg_engine, Role.CAMPAIGNER, tmp_path)
    assert "Add a suppression" not in client.get(f"{ROOT}/suppressions").get_data(as_text=True)
    added = post(client, f"{ROOT}/suppressions/add", email="x@example.org", reason="test")
    assert added.status_code == 403 and suppression(pg_engine, "x@example.org") is None
    removed = post(client, f"{ROOT}/suppressions/remove", email="kept@example.org")
    assert removed.status_code == 403
    assert suppression(pg_engine, "kept@example.org") == SuppressionReason.MANUAL
    outcomes = [e.outcome for e in changes(pg_engine, "suppression.add", "suppression.remove")]
    assert outcomes == ["refused", "refused"]


def test_the_old_solidarity_address_reads_and_exports_in_the_replies_area(
    pg_engine: Engine, tmp_path: Path
) -> None:
    seed(pg_engine)
    client = signed_in(pg_engine, Role.CAMPAIGNER, tmp_path)
    page = client.get(f"{ROOT}/solidarity", query_string={"case": "bird"}, follow_redirects=True)
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Stay strong" in text and "Name1" in text
    assert EMAILS[1] not in text  # first names only
    export = client.get(
        f"{ROOT}/solidarity", query_string={"case": "bird", "format": "csv"}, follow_redirects=True
    )
    assert export.status_code == 200 and export.mimetype == "text/csv"
    assert "solidarity-bird.csv" in export.headers["Content-Disposition"]
    lines = export.get_data(as_text=True).splitlines()
    assert lines[0] == "reply_id,received_at,language,first_name,country,message"
    assert len(lines) == 2 and lines[1].endswith(",Name1,,Stay strong")
    unknown = client.get(
        f"{ROOT}/solidarity", query_string={"case": "nobody"}, follow_redirects=True
    )
    assert unknown.status_code == 400


def test_a_viewer_cannot_read_solidarity_messages(pg_engine: Engine, tmp_path: Path) -> None:
    seed(pg_engine)
    client = signed_in(pg_engine, Role.VIEWER, tmp_path)
    response = client.get(
        f"{ROOT}/solidarity", query_string={"case": "bird", "format": "csv"}, follow_redirects=True
    )
    assert response.status_code == 403 and "Stay strong" not in response.get_data(as_text=True)
    (entry,) = changes(pg_engine, "reply.review")
    assert entry.outcome == "refused"
