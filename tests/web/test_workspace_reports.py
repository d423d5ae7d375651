"""The workspace's reports: every role reads, a campaign limit narrows, bad input is 400, CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pyotp
import pytest
from flask.testing import FlaskClient
from ops_fixtures import seed
from reports_fixtures import FORMULA, NEW, OLD, two_campaigns
from sqlalchemy import Engine
from web_fixtures import add_staff, audit_rows, enrol_staff, log_in, make_app, sign_in

from sender.report.totals import catch_up
from sender.staff.roles import Role

BASE = "/workspace/reports/"
PERSON = "ines@example.org"


def signed_in(engine: Engine, role: Role, campaigns: tuple[str, ...] = ()) -> FlaskClient:
    account = add_staff(engine, role, email=PERSON, campaigns=campaigns)
    client = make_app(engine).test_client()
    client.environ_base["REMOTE_ADDR"] = "198.51.100.40"
    code = pyotp.TOTP(enrol_staff(engine, account)).now() if role is Role.ADMIN else None
    assert sign_in(client, email=PERSON, code=code) == 302
    return client


def page(client: FlaskClient, query: str = "") -> tuple[int, str]:
    response = client.get(f"{BASE}?{query}")
    return response.status_code, response.get_data(as_text=True)


def csv_rows(client: FlaskClient, query: str) -> list[list[str]]:
    response = client.get(f"{BASE}report.csv?{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def refusals(engine: Engine) -> list[tuple[str, str, str]]:
    return [(r.action, r.outcome, r.target) for r in audit_rows(engine, "report")]


@pytest.mark.parametrize("role", [Role.VIEWER, Role.CAMPAIGNER, Role.ADMIN])
def test_every_role_reads_the_report_with_a_chart_and_no_controls(
    pg_engine: Engine, role: Role
) -> None:
    two_campaigns(pg_engine)
    status, html = page(signed_in(pg_engine, role), f"campaign={NEW}")
    assert status == 200
    assert f"Campaign results by case: {NEW}" in html
    assert "bird (Nassima)" in html and 'data-testid="report-table"' in html
    assert '<svg xmlns="http://www.w3.org/2000/svg" role="img"' in html
    assert "<title id=" in html and "<desc id=" in html and "bird (Nassima): 1,080" in html
    assert "Download CSV" in html
    assert 'method="post"' not in html.split("<main>", 1)[1]  # reading only: nothing to change
    assert refusals(pg_engine) == []


@pytest.mark.parametrize("by", ["case", "wave", "language", "day", "variant"])
def test_each_dimension_answers(pg_engine: Engine, by: str) -> None:
    two_campaigns(pg_engine)
    client = signed_in(pg_engine, Role.VIEWER)
    status, html = page(client, f"campaign={OLD}&by={by}")
    assert status == 200, html
    assert f'<option value="{by}" selected>' in html
    expected = "no wave of this campaign runs a subject test" if by == "variant" else "all"
    assert expected in html


def test_the_newest_open_campaign_is_shown_first(pg_engine: Engine) -> None:
    two_campaigns(pg_engine)
    status, html = page(signed_in(pg_engine, Role.VIEWER))
    assert status == 200
    assert f"Campaign results by case: {NEW}" in html


def test_an_unknown_dimension_or_campaign_is_400_and_names_the_choices(pg_engine: Engine) -> None:
    two_campaigns(pg_engine)
    client = signed_in(pg_engine, Role.VIEWER)
    status, html = page(client, "by=supporter")
    assert status == 400
    assert "by must be one of case, wave, language, day, variant" in html
    assert 'data-testid="report"' not in html
    status, html = page(client, "campaign=<b>nope</b>")
    assert status == 400
    assert "no campaign &#39;&lt;b&gt;nope&lt;/b&gt;&#39;" in html and "<b>nope" not in html
    assert 'data-testid="report"' not in html
    refused = client.get(f"{BASE}report.csv?campaign={NEW}&by=planet")
    assert refused.status_code == 400 and refused.mimetype == "text/plain"
    assert "by must be one of" in refused.get_data(as_text=True)
    assert refusals(pg_engine) == []  # bad input is not a refusal


def test_a_limited_account_sees_only_its_campaigns(pg_engine: Engine) -> None:
    two_campaigns(pg_engine)
    client = signed_in(pg_engine, Role.CAMPAIGNER, campaigns=(NEW,))
    status, html = page(client)
    assert status == 200
    assert f'value="{NEW}"' in html and OLD not in html
    for query in (f"campaign={OLD}", f"campaign={NEW}&compare={OLD}"):
        status, html = page(client, query)
        assert status == 403, query
        assert "may not act on this campaign" in html and "bird (Nassima)" not in html
    assert client.get(f"{BASE}report.csv?campaign={OLD}").status_code == 403
    assert refusals(pg_engine) == [("report.view", "refused", f"report {OLD}")] * 3
    # An unknown campaign is named without naming the campaigns it may not read.
    status, html = page(client, "campaign=w4r-1999")
    assert status == 400 and f"you can read are {NEW}" in html and OLD not in html


def test_campaigns_compared_side_by_side_in_the_page_and_the_csv(pg_engine: Engine) -> None:
    two_campaigns(pg_engine)
    client = signed_in(pg_engine, Role.VIEWER)
    query = f"campaign={NEW}&compare={OLD}&compare={NEW}"  # itself: left out
    status, html = page(client, query)
    assert status == 200
    assert f"{NEW}, {OLD} compared by case" in html and "sends, compared" in html
    assert f"bird · {NEW}" in html and f"bird · {OLD}" in html  # the chart's bar labels
    rows = csv_rows(client, query)
    assert rows[0] == ["case", "metric", NEW, OLD]
    assert ["bird", "sends", "1080", "360"] in rows
    assert ["bird", "acted", "270", "36"] in rows


@pytest.mark.parametrize(
    ("by", "problem"),
    [("day", "campaigns run on different days"), ("variant", "variants belong to one wave")],
)
def test_a_comparison_that_cannot_line_up_is_400(pg_engine: Engine, by: str, problem: str) -> None:
    two_campaigns(pg_engine)
    status, html = page(signed_in(pg_engine, Role.VIEWER), f"campaign={NEW}&compare={OLD}&by={by}")
    assert status == 400 and problem in html


def test_the_csv_is_the_table_and_formula_safe(pg_engine: Engine) -> None:
    two_campaigns(pg_engine)
    client = signed_in(pg_engine, Role.VIEWER)
    rows = csv_rows(client, f"campaign={NEW}&by=wave")
    assert rows[0][:4] == ["wave", "label", "sends", "deliveries"]
    labels = [row[1] for row in rows[1:]]
    assert "first" in labels and "'" + FORMULA in labels
    assert all(not cell.startswith(("=", "+", "@")) for row in rows for cell in row)
    assert rows[-1][:3] == ["all", "all", "1440"]


def test_the_dashboard_report_moved_here(pg_engine: Engine) -> None:
    two_campaigns(pg_engine)
    client = signed_in(pg_engine, Role.VIEWER)
    moved = client.get("/dashboard/report?by=wave")
    assert moved.status_code == 302 and moved.headers["Location"].endswith(f"{BASE}?by=wave")
    html = client.get("/dashboard/").get_data(as_text=True)
    assert f'<a href="{BASE}">Reports</a>' in html


def test_a_signed_out_visitor_is_sent_to_sign_in(pg_engine: Engine) -> None:
    two_campaigns(pg_engine)
    client = make_app(pg_engine).test_client()
    for path in (BASE, f"{BASE}report.csv?campaign={NEW}"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_report_reads_on_both_databases(any_engine: Engine) -> None:
    """Moved from the dashboard's report page: the setup login reads the ops seed."""
    seed(any_engine)
    catch_up(any_engine, datetime.now(UTC))  # the scheduler tick's roll-up of the seed's actions
    client = make_app(any_engine).test_client()
    assert log_in(client) == 302
    html = client.get(BASE).get_data(as_text=True)
    assert "Campaign results by case" in html and "bird" in html and "popi" in html
    assert client.get(f"{BASE}?by=wave").status_code == 200
    assert client.get(f"{BASE}?by=supporter").status_code == 400
