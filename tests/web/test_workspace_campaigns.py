"""The campaigns workspace: list, create from a form or a zip, close, and the case kill switch."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta

import pyotp
import pytest
from campaign_fixtures import W4R_2020
from flask.testing import FlaskClient
from ops_fixtures import seed
from sqlalchemy import Engine, func, select
from web_fixtures import add_staff, audit_rows, csrf_token, enrol_staff, make_app, sign_in

from sender.campaign import upload as upload_module
from sender.campaign.cases import case_text_changes
from sender.core.clock import SystemClock
from sender.core.db import session_scope
from sender.core.models import Campaign, Case
from sender.staff.roles import Role
from sender.web.workspace import campaigns as workspace_campaigns

PERSON = "omar@example.org"
BASE = "/workspace/campaigns"


def signed_in(engine: Engine, role: Role) -> FlaskClient:
    account = add_staff(engine, role, email=PERSON)
    client = make_app(engine).test_client()
    client.environ_base["REMOTE_ADDR"] = "198.51.100.30"
    code = pyotp.TOTP(enrol_staff(engine, account)).now() if role is Role.ADMIN else None
    assert sign_in(client, email=PERSON, code=code) == 302
    return client


def post(client: FlaskClient, path: str, data: dict[str, object] | None = None) -> tuple[int, str]:
    token = csrf_token(client, f"{BASE}/")
    response = client.post(path, data={"csrf_token": token, **(data or {})})
    return response.status_code, response.get_data(as_text=True)


def campaign_slugs(engine: Engine) -> list[str]:
    with session_scope(engine) as session:
        return list(session.scalars(select(Campaign.slug).order_by(Campaign.slug)))


def case_status(engine: Engine, slug: str) -> str:
    with session_scope(engine) as session:
        return session.scalars(select(Case.status).where(Case.slug == slug)).one()


def changes(engine: Engine) -> list[tuple[str, str, str]]:
    return [
        (r.action, r.outcome, r.target)
        for r in audit_rows(engine)
        if not r.action.startswith(("login", "logout", "2fa"))
    ]


def form_around_today(**overrides: str) -> dict[str, object]:
    today = SystemClock().now().date()
    values = {
        "slug": "w4r-web",
        "name": "Write for Rights on the web",
        "window_start": (today - timedelta(days=2)).isoformat(),
        "window_end": (today + timedelta(days=20)).isoformat(),
        "timezone": "Europe/Berlin",
        "from_email": "campaigns@example.org",
        "from_name": "Write for Rights",
        "languages": "en es",
    }
    return {**values, **overrides}


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, body in files.items():
            archive.writestr(name, body)
    return buffer.getvalue()


def the_2020_folder(prefix: str = "w4r-2020/") -> dict[str, bytes]:
    return {
        f"{prefix}{name}": (W4R_2020 / name).read_bytes()
        for name in ("campaign.yaml", "cases.yaml", "plan.yaml")
    }


def upload(client: FlaskClient, data: bytes, name: str = "folder.zip") -> tuple[int, str]:
    return post(client, f"{BASE}/upload", {"folder": (io.BytesIO(data), name)})


def test_an_admin_creates_a_campaign_from_the_form(pg_engine: Engine) -> None:
    client = signed_in(pg_engine, Role.ADMIN)
    status, _ = post(client, f"{BASE}/new", form_around_today())
    assert status == 302
    with session_scope(pg_engine) as session:
        campaign = session.scalars(select(Campaign).where(Campaign.slug == "w4r-web")).one()
        assert (campaign.timezone, campaign.languages) == ("Europe/Berlin", ["en", "es"])
        assert campaign.window_start <= SystemClock().now() < campaign.window_end
    assert changes(pg_engine) == [("campaign.create", "done", "w4r-web")]
    page = client.get(f"{BASE}/").get_data(as_text=True)
    assert "w4r-web" in page and "en es" in page and "open" in page


def test_a_window_ending_before_it_starts_is_a_field_error_and_saves_nothing(
    pg_engine: Engine,
) -> None:
    client = signed_in(pg_engine, Role.ADMIN)
    today = SystemClock().now().date()
    status, page = post(
        client,
        f"{BASE}/new",
        form_around_today(window_end=(today - timedelta(days=5)).isoformat()),
    )
    assert status == 400
    assert 'data-testid="error-window_end"' in page and "comes before the first day" in page
    assert 'value="Write for Rights on the web"' in page  # the form keeps what was typed
    assert campaign_slugs(pg_engine) == [] and changes(pg_engine) == []


def test_a_bad_sender_address_is_refused_with_the_folder_checks_words(pg_engine: Engine) -> None:
    client = signed_in(pg_engine, Role.ADMIN)
    status, page = post(client, f"{BASE}/new", form_around_today(from_email="not-an-address"))
    assert status == 400 and "is not an email address" in page
    assert campaign_slugs(pg_engine) == []


def test_a_viewer_sees_no_forms_and_a_forged_create_is_refused(pg_engine: Engine) -> None:
    client = signed_in(pg_engine, Role.VIEWER)
    page = client.get(f"{BASE}/").get_data(as_text=True)
    assert f'action="{BASE}/new"' not in page and f'action="{BASE}/upload"' not in page
    token = csrf_token(client, "/dashboard/account")
    response = client.post(f"{BASE}/new", data={"csrf_token": token, **form_around_today()})
    assert response.status_code == 403
    assert campaign_slugs(pg_engine) == []
    (row,) = [r for r in audit_rows(pg_engine) if r.action == "campaign.create"]
    assert (row.outcome, row.actor, row.actor_role) == ("refused", PERSON, "viewer")


def test_an_uploaded_folder_zip_creates_the_campaign_and_its_cases(pg_engine: Engine) -> None:
    client = signed_in(pg_engine, Role.ADMIN)
    status, _ = upload(client, zipped(the_2020_folder()))
    assert status == 302
    assert campaign_slugs(pg_engine) == ["w4r-2020"]
    with session_scope(pg_engine) as session:
        assert session.scalar(select(func.count()).select_from(Case)) == 7
    ((action, outcome, target),) = changes(pg_engine)
    assert (action, outcome, target) == ("campaign.create", "done", "w4r-2020")
    page = client.get(f"{BASE}/w4r-2020/cases").get_data(as_text=True)
    assert "idris-khattak" in page and "Texts of idris-khattak in es" in page


def test_a_zip_at_the_top_level_works_too(pg_engine: Engine) -> None:
    client = signed_in(pg_engine, Role.ADMIN)
    assert upload(client, zipped(the_2020_folder(prefix="")))[0] == 302
    assert campaign_slugs(pg_engine) == ["w4r-2020"]


def test_bad_uploads_are_refused_and_store_nothing(pg_engine: Engine) -> None:
    client = signed_in(pg_engine, Role.ADMIN)
    cases = {
        b"this is not a zip at all": "not a zip file",
        b"": "the upload is empty",
        zipped({**the_2020_folder(), "../evil.yaml": b"x"}): "points outside the campaign folder",
        zipped({**the_2020_folder(""), "/etc/cron.d/evil": b"x"}): "points outside",
        zipped({**the_2020_folder(), "w4r-2020/run.sh": b"rm -rf /"}): "not part of a campaign",
        zipped({"w4r-2020/cases.yaml": b"cases: []\n"}): "has no campaign.yaml",
    }
    for data, words in cases.items():
        status, page = upload(client, data)
        assert (status, words in page) == (400, True), words
    assert campaign_slugs(pg_engine) == [] and changes(pg_engine) == []


def test_a_folder_the_checks_refuse_stores_nothing(
    pg_engine: Engine,
) -> None:
    client = signed_in(pg_engine, Role.ADMIN)
    folder = the_2020_folder()
    folder["w4r-2020/cases.yaml"] = b"cases:\n  - slug: x\n"
    status, page = upload(client, zipped(folder))
    assert (
        status == 400
        and "cases.yaml: case &#39;x&#39;: missing field" in page
        and "/tmp" not in page
    )
    assert campaign_slugs(pg_engine) == [] and changes(pg_engine) == []


def test_a_viewer_upload_is_refused(pg_engine: Engine) -> None:
    client = signed_in(pg_engine, Role.VIEWER)
    token = csrf_token(client, "/dashboard/account")
    data = {"csrf_token": token, "folder": (io.BytesIO(zipped(the_2020_folder())), "f.zip")}
    assert client.post(f"{BASE}/upload", data=data).status_code == 403
    assert campaign_slugs(pg_engine) == []
    assert changes(pg_engine) == [("campaign.create", "refused", "uploaded folder")]


def test_closing_asks_first_then_closes(pg_engine: Engine) -> None:
    seed(pg_engine)
    client = signed_in(pg_engine, Role.ADMIN)
    page = client.get(f"{BASE}/w4r-2020/close").get_data(as_text=True)
    assert "cannot be reopened" in page
    with session_scope(pg_engine) as session:
        assert session.scalars(select(Campaign.status)).one() == "open"  # asking changed nothing
    status, _ = post(client, f"{BASE}/w4r-2020/close")
    assert status == 302
    with session_scope(pg_engine) as session:
        assert session.scalars(select(Campaign.status)).one() == "closed"
    assert changes(pg_engine) == [("campaign.close", "done", "w4r-2020")]


def test_a_campaigner_may_not_close(pg_engine: Engine) -> None:
    seed(pg_engine)
    client = signed_in(pg_engine, Role.CAMPAIGNER)
    assert "needs the admin role" in client.get(f"{BASE}/w4r-2020/close").get_data(as_text=True)
    status, _ = post(client, f"{BASE}/w4r-2020/close")
    assert status == 403
    with session_scope(pg_engine) as session:
        assert session.scalars(select(Campaign.status)).one() == "open"
    assert changes(pg_engine) == [("campaign.close", "refused", "w4r-2020")]


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
        f"{BASE}/w4r-2020/cases/nobody/pause",
        f"{BASE}/w4r-2020/cases/bird/delete",
    ):
        assert client.get(path).status_code == 404, path
    assert post(client, f"{BASE}/w4r-2020/cases/bird/delete")[0] == 404
    assert case_status(pg_engine, "bird") == "active" and changes(pg_engine) == []


def test_a_post_without_the_csrf_token_changes_nothing(pg_engine: Engine) -> None:
    seed(pg_engine)
    client = signed_in(pg_engine, Role.CAMPAIGNER)
    assert client.post(f"{BASE}/w4r-2020/cases/bird/pause").status_code == 400
    assert case_status(pg_engine, "bird") == "active" and changes(pg_engine) == []


def a_case(slug: str, person: str, country: str = "SA") -> str:
    return (
        f"  - slug: {slug}\n    person: {person}\n    country: {country}\n    status: active\n"
        "    content:\n      en:\n        title: Free them\n        summary: Held for writing.\n"
        "        ask: Release them.\n        authority: The Minister\n"
        "        authority_address: [Ministry, Capital]\n        letter: Please release them.\n"
    )


def cases_upload(client: FlaskClient, path: str, text: str) -> tuple[int, str]:
    return post(client, path, {"cases": (io.BytesIO(text.encode()), "cases.yaml")})


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


def with_texts(engine: Engine) -> None:
    seed(engine)
    case_text_changes(
        engine, "cases:\n" + a_case("bird", "Nassima al-Sada"), "w4r-2020", apply=True
    )


def stored_title(engine: Engine) -> str:
    with session_scope(engine) as session:
        content = session.scalars(select(Case.content).where(Case.slug == "bird")).one()
        return str(content["en"]["title"])


def edited(**overrides: str) -> dict[str, object]:
    values = {
        "title": "Free Nassima al-Sada now",
        "summary": "Held for writing.",
        "ask": "Release them.",
        "authority": "The Minister",
        "authority_address": "Ministry\nCapital",
        "letter": "Please release them.",
        "good_news": "",
    }
    return {**values, **overrides}


TEXTS = f"{BASE}/w4r-2020/cases/bird/texts"


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


def test_an_oversized_zip_is_refused_unread(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upload_module, "MAX_UPLOAD", 100)
    monkeypatch.setattr(workspace_campaigns, "MAX_UPLOAD", 100)
    client = signed_in(pg_engine, Role.ADMIN)
    status, page = upload(client, zipped(the_2020_folder()))
    assert status == 400 and "the upload is over" in page
    assert campaign_slugs(pg_engine) == [] and changes(pg_engine) == []


def test_the_form_does_not_overwrite_an_existing_campaign(pg_engine: Engine) -> None:
    seed(pg_engine)
    client = signed_in(pg_engine, Role.ADMIN)
    fields = form_around_today(slug="w4r-2020", name="Write for Rights 2020")
    status, page = post(client, f"{BASE}/new", fields)
    assert status == 400 and 'data-testid="error-slug"' in page
    with session_scope(pg_engine) as session:
        assert session.scalars(select(Campaign.timezone)).one() == "UTC"
    assert changes(pg_engine) == []
