"""The campaigns workspace's cases: the kill switch, the cases file, each case's texts."""

from __future__ import annotations

from ops_fixtures import seed
from sqlalchemy import Engine, select
from web_fixtures import csrf_token
from workspace_fixtures import (
    BASE,
    TEXTS,
    a_case,
    case_status,
    cases_upload,
    changes,
    edited,
    post,
    signed_in,
    stored_title,
    with_texts,
)

from sender.core.db import session_scope
from sender.core.models import Case
from sender.staff.roles import Role


def test_pausing_a_case_says_how_many_messages_it_stops(pg_engine: Engine) -> None:
    seed(pg_engine)
    client = signed_in(pg_engine, Role.CAMPAIGNER)
    cases = client.get(f"{BASE}/w4r-2020/cases").get_data(as_text=True)
    assert "Pause bird" in cases and "Pause popi" in cases
    page = client.get(f"{BASE}/w4r-2020/cases/bird/pause").get_data(as_text=True)
    assert "stops 5 pending messages" in page
    assert case_status(pg_engine, "bird") == "active"
    assert post(client, f"{BASE}/w4r-2020/cases/bird/pause")[0] == 302
    assert case_status(pg_engine, "bird") == "paused"
    assert "Resume bird" in client.get(f"{BASE}/w4r-2020/cases").get_data(as_text=True)
    assert post(client, f"{BASE}/w4r-2020/cases/bird/resume")[0] == 302
    assert case_status(pg_engine, "bird") == "active"
    assert changes(pg_engine) == [
        ("case.resume", "done", "case bird"),
        ("case.pause", "done", "case bird"),
    ]


def test_a_viewer_sees_no_kill_switch_and_a_forged_pause_is_refused(pg_engine: Engine) -> None:
    seed(pg_engine)
    client = signed_in(pg_engine, Role.VIEWER)
    assert "Pause bird" not in client.get(f"{BASE}/w4r-2020/cases").get_data(as_text=True)
    token = csrf_token(client, "/dashboard/account")
    response = client.post(f"{BASE}/w4r-2020/cases/bird/pause", data={"csrf_token": token})
    assert response.status_code == 403
    assert case_status(pg_engine, "bird") == "active"
    assert changes(pg_engine) == [("case.pause", "refused", "case bird")]


def test_unknown_campaigns_cases_and_actions_are_not_found(pg_engine: Engine) -> None:
    seed(pg_engine)
    client = signed_in(pg_engine, Role.CAMPAIGNER)
    for path in (
        f"{BASE}/nope/cases",
        f"{BASE}/nope/cases/bird/pause",
        f"{BASE}/nope/cases/bird/texts",
        f"{BASE}/w4r-2020/cases/nobody/pause",
        f"{BASE}/w4r-2020/cases/bird/delete",
    ):
        assert client.get(path).status_code == 404, path
    assert post(client, f"{BASE}/w4r-2020/cases/bird/delete")[0] == 404
    assert post(client, f"{BASE}/nope/cases/bird/pause")[0] == 404
    assert case_status(pg_engine, "bird") == "active" and changes(pg_engine) == []


def test_a_post_without_the_csrf_token_changes_nothing(pg_engine: Engine) -> None:
    seed(pg_engine)
    client = signed_in(pg_engine, Role.CAMPAIGNER)
    assert client.post(f"{BASE}/w4r-2020/cases/bird/pause").status_code == 400
    assert case_status(pg_engine, "bird") == "active" and changes(pg_engine) == []


def test_a_cases_file_shows_its_changes_before_it_is_applied(pg_engine: Engine) -> None:
    seed(pg_engine)
    client = signed_in(pg_engine, Role.CAMPAIGNER)
    text = "cases:\n" + a_case("bird", "Nassima al-Sada") + a_case("new-one", "Someone New", "EG")
    status, page = cases_upload(client, f"{BASE}/w4r-2020/cases/preview", text)
    assert status == 200
    assert 'data-testid="change-bird">changed' in page
    assert 'data-testid="change-new-one">added' in page
    assert 'data-testid="change-popi">not in the file' in page
    with session_scope(pg_engine) as session:  # the preview stored nothing
        assert sorted(session.scalars(select(Case.slug))) == ["bird", "popi"]
    assert changes(pg_engine) == []
    status, _ = post(client, f"{BASE}/w4r-2020/cases/apply", {"cases_text": text})
    assert status == 302
    with session_scope(pg_engine) as session:
        assert sorted(session.scalars(select(Case.slug))) == ["bird", "new-one", "popi"]
    assert changes(pg_engine) == [("cases.load", "done", "cases file")]
    _, again = cases_upload(client, f"{BASE}/w4r-2020/cases/preview", text)
    assert 'data-testid="change-bird">unchanged' in again


def test_bad_cases_files_change_nothing(pg_engine: Engine) -> None:
    seed(pg_engine)
    client = signed_in(pg_engine, Role.CAMPAIGNER)
    for text, words in (
        ("", "the upload is empty"),
        ("cases: [", "not valid YAML"),
        ("cases:\n  - slug: bird\n", "missing field"),
    ):
        for step in ("preview", "apply"):
            status, page = (
                cases_upload(client, f"{BASE}/w4r-2020/cases/{step}", text)
                if text
                else post(client, f"{BASE}/w4r-2020/cases/{step}", {"cases_text": ""})
            )
            assert (status, words in page) == (400, True), (step, words)
    with session_scope(pg_engine) as session:
        assert sorted(session.scalars(select(Case.slug))) == ["bird", "popi"]
    # an apply that got past the upload checks is a recorded failure; a preview is no change
    assert changes(pg_engine) == [("cases.load", "failed", "cases file")] * 2


def test_a_viewer_may_not_preview_or_apply_a_cases_file(pg_engine: Engine) -> None:
    seed(pg_engine)
    client = signed_in(pg_engine, Role.VIEWER)
    assert "Upload a cases file" not in client.get(f"{BASE}/w4r-2020/cases").get_data(as_text=True)
    text = "cases:\n" + a_case("new-one", "Someone New")
    token = csrf_token(client, "/dashboard/account")
    response = client.post(
        f"{BASE}/w4r-2020/cases/apply", data={"csrf_token": token, "cases_text": text}
    )
    assert response.status_code == 403
    with session_scope(pg_engine) as session:
        assert sorted(session.scalars(select(Case.slug))) == ["bird", "popi"]
    assert changes(pg_engine) == [("cases.load", "refused", "cases file")]


def test_the_texts_page_shows_the_stored_texts_and_loads_htmx(pg_engine: Engine) -> None:
    with_texts(pg_engine)
    client = signed_in(pg_engine, Role.CAMPAIGNER)
    page = client.get(f"{TEXTS}?lang=en").get_data(as_text=True)
    assert ">Free them</textarea>" in page and "Ministry\nCapital</textarea>" in page
    assert 'src="/static/vendor/htmx-2.0.11.min.js"' in page and "<script>" not in page
    assert client.get(f"{TEXTS}?lang=xx").status_code == 404


def test_the_preview_renders_the_typed_texts_in_a_sandbox_and_stores_nothing(
    pg_engine: Engine,
) -> None:
    with_texts(pg_engine)
    client = signed_in(pg_engine, Role.CAMPAIGNER)
    status, fragment = post(client, f"{TEXTS}/preview?lang=en", edited())
    assert status == 200
    assert '<iframe sandbox=""' in fragment and "Free Nassima al-Sada now" in fragment
    status, fragment = post(client, f"{TEXTS}/preview?lang=en", edited(title=""))
    assert 'data-testid="preview-problem"' in fragment and "title" in fragment
    assert stored_title(pg_engine) == "Free them" and changes(pg_engine) == []


def test_saving_the_texts_stores_them_and_records_it(pg_engine: Engine) -> None:
    with_texts(pg_engine)
    client = signed_in(pg_engine, Role.CAMPAIGNER)
    assert post(client, f"{TEXTS}?lang=en", edited())[0] == 302
    assert stored_title(pg_engine) == "Free Nassima al-Sada now"
    assert changes(pg_engine) == [("case.edit", "done", "case bird (en)")]


def test_incomplete_texts_are_refused_and_the_stored_ones_kept(pg_engine: Engine) -> None:
    with_texts(pg_engine)
    client = signed_in(pg_engine, Role.CAMPAIGNER)
    for fields in (edited(title=""), edited(authority_address=" \n ")):
        status, page = post(client, f"{TEXTS}?lang=en", fields)
        assert status == 400 and 'data-testid="texts-error"' in page
    assert stored_title(pg_engine) == "Free them" and changes(pg_engine) == []


def test_a_viewer_reads_the_texts_but_may_not_save_them(pg_engine: Engine) -> None:
    with_texts(pg_engine)
    client = signed_in(pg_engine, Role.VIEWER)
    page = client.get(f"{TEXTS}?lang=en").get_data(as_text=True)
    assert "readonly" in page and "Save the en texts" not in page
    token = csrf_token(client, "/dashboard/account")
    response = client.post(f"{TEXTS}?lang=en", data={"csrf_token": token, **edited()})
    assert response.status_code == 403
    assert stored_title(pg_engine) == "Free them"
    assert changes(pg_engine) == [("case.edit", "refused", "case bird (en)")]


def test_a_closed_campaign_is_read_only_in_the_workspace(pg_engine: Engine) -> None:
    with_texts(pg_engine)
    admin = signed_in(pg_engine, Role.ADMIN)
    assert post(admin, f"{BASE}/w4r-2020/close")[0] == 302
    cases = admin.get(f"{BASE}/w4r-2020/cases").get_data(as_text=True)
    assert "Pause bird" not in cases and "Upload a cases file" not in cases
    response = admin.post(
        f"{BASE}/w4r-2020/cases/bird/pause",
        data={"csrf_token": csrf_token(admin, f"{BASE}/")},
        follow_redirects=True,
    )
    assert "is closed: it is read-only" in response.get_data(as_text=True)
    assert post(admin, f"{TEXTS}?lang=en", edited())[0] == 400
    text = "cases:\n" + a_case("new-one", "Someone New")
    assert post(admin, f"{BASE}/w4r-2020/cases/apply", {"cases_text": text})[0] == 400
    assert case_status(pg_engine, "bird") == "active" and stored_title(pg_engine) == "Free them"
    with session_scope(pg_engine) as session:
        assert sorted(session.scalars(select(Case.slug))) == ["bird", "popi"]
    assert [(a, o) for a, o, _ in changes(pg_engine)] == [
        ("cases.load", "failed"),
        ("case.edit", "failed"),
        ("case.pause", "failed"),
        ("campaign.close", "done"),
    ]
