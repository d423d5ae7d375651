"""The campaigns workspace: list, create from a form or a zip, close."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta

import pytest
from campaign_fixtures import W4R_2020
from flask.testing import FlaskClient
from ops_fixtures import seed
from sqlalchemy import Engine, func, select
from web_fixtures import audit_rows, csrf_token
from workspace_fixtures import BASE, PERSON, campaign_slugs, changes, post, signed_in

from sender.campaign import upload as upload_module
from sender.core.clock import SystemClock
from sender.core.db import session_scope
from sender.core.models import Campaign, Case
from sender.staff.roles import Role
from sender.web.workspace import campaigns as workspace_campaigns


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
