"""GET /api/report: token or staff session, same JSON as the CLI."""

from __future__ import annotations

import json

from events_fixtures import ingest, seed, sg_event
from reports_fixtures import NEW, OLD, two_campaigns
from sqlalchemy import Engine
from typer.testing import CliRunner
from web_fixtures import add_staff, audit_rows, log_in, make_app, sign_in
from webhook_fixtures import Signer, app_for

from sender.cli import app as cli_app
from sender.core.config import DEV_STAFF_PASSWORD, Settings, reset_settings
from sender.staff.roles import Role
from sender.track.actions import process_pending_events

TOKEN = "r3port-t0ken"


def _app(engine: Engine) -> object:
    return app_for(engine, Signer.generate(), report_token=TOKEN)


def _data(engine: Engine) -> None:
    w = seed(engine)
    ingest(engine, [sg_event(w, 0, "click", 1, url="https://act.example.org/a/x")])
    process_pending_events(engine, 100, Settings(secret_key="t"))


def test_refused_without_credentials(sqlite_engine: Engine) -> None:
    client = _app(sqlite_engine).test_client()  # type: ignore[attr-defined]
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer "},
    ):
        response = client.get("/api/report", headers=headers)
        assert response.status_code == 401
        assert "report" not in response.get_json()


def test_no_token_configured_means_session_only(sqlite_engine: Engine) -> None:
    app = app_for(sqlite_engine, Signer.generate())
    client = app.test_client()
    assert client.get("/api/report", headers={"Authorization": "Bearer None"}).status_code == 401
    assert log_in(client, password=DEV_STAFF_PASSWORD, user="staff") == 302
    assert client.get("/api/report").status_code == 200
    # A cookie that only claims staff (no login time, no session version) is no session.
    forged = app.test_client()
    with forged.session_transaction() as session:
        session["staff"] = True
    assert forged.get("/api/report").status_code == 401


def test_token_gives_the_same_json_as_the_cli(
    sqlite_engine: Engine, env: object, runner: CliRunner
) -> None:
    _data(sqlite_engine)
    client = _app(sqlite_engine).test_client()  # type: ignore[attr-defined]
    response = client.get("/api/report?by=wave", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    (web,) = response.get_json()["campaigns"]  # one report per open campaign
    one = client.get(
        f"/api/report?by=wave&campaign={web['campaign']}",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ).get_json()
    env.setenv("DATABASE_URL", str(sqlite_engine.url))  # type: ignore[attr-defined]
    reset_settings()
    result = runner.invoke(cli_app, ["report", "--by", "wave", "--format", "json"])
    assert result.exit_code == 0, result.output
    cli = json.loads(result.output)
    for report in (web, cli, one):
        report.pop("generated_at")
    assert web == cli == one
    assert web["rows"][0]["counts"]["acted"] == 1


def test_bad_dimension_is_400(sqlite_engine: Engine) -> None:
    client = _app(sqlite_engine).test_client()  # type: ignore[attr-defined]
    response = client.get("/api/report?by=planet", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 400
    assert "case" in response.get_json()["error"]


def test_the_api_keeps_a_limited_account_to_its_campaigns(pg_engine: Engine) -> None:
    two_campaigns(pg_engine)
    add_staff(pg_engine, Role.VIEWER, email="ines@example.org", campaigns=(NEW,))
    client = make_app(pg_engine).test_client()
    assert sign_in(client, email="ines@example.org") == 302
    refused = client.get(f"/api/report?campaign={OLD}")
    assert refused.status_code == 403
    assert "may not act on this campaign" in refused.get_json()["error"]
    assert "rows" not in refused.get_json()
    every = client.get("/api/report").get_json()["campaigns"]
    assert [r["campaign"] for r in every] == [NEW]
    unknown = client.get("/api/report?campaign=w4r-1999")
    assert unknown.status_code == 400 and "no campaign 'w4r-1999'" in unknown.get_json()["error"]
    assert client.get(f"/api/report?campaign={NEW}").status_code == 200
    refused_rows = [(r.action, r.outcome, r.target) for r in audit_rows(pg_engine, "report")]
    assert refused_rows == [("report.view", "refused", f"report {OLD}")]
    # An account without a limit still reads every open campaign.
    other = make_app(pg_engine).test_client()
    add_staff(pg_engine, Role.VIEWER, email="free@example.org")
    assert sign_in(other, email="free@example.org") == 302
    every = other.get("/api/report").get_json()["campaigns"]
    assert sorted(r["campaign"] for r in every) == [OLD, NEW]


def test_the_token_reads_every_campaign_and_an_unknown_one_is_400(pg_engine: Engine) -> None:
    two_campaigns(pg_engine)
    client = _app(pg_engine).test_client()  # type: ignore[attr-defined]
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    every = client.get("/api/report", headers=bearer).get_json()["campaigns"]
    assert sorted(r["campaign"] for r in every) == [OLD, NEW]
    assert client.get(f"/api/report?campaign={OLD}", headers=bearer).status_code == 200
    unknown = client.get("/api/report?campaign=w4r-1999", headers=bearer)
    assert unknown.status_code == 400 and "no campaign 'w4r-1999'" in unknown.get_json()["error"]
