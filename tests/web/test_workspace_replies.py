"""The replies workspace: the review list's actions, solidarity messages, and who may act."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

from audit_fixtures import audit_rows
from flask.testing import FlaskClient
from ops_fixtures import EMAILS, NOW, Seeded, seed
from sqlalchemy import Engine, func, select
from web_fixtures import add_staff, csrf_token, make_app, sign_in
from werkzeug.test import TestResponse

from sender.core.addresses import email_hash
from sender.core.db import session_scope
from sender.core.models import Action, Campaign, Case, Reply, Suppression
from sender.core.vocabulary import ReplyStatus
from sender.staff.roles import Role
from sender.track.replies import PER_PAGE

ROOT = "/workspace/replies"
REVIEW = f"{ROOT}/review"
CAMPAIGNER = "omar@example.org"


def client_for(engine: Engine, role: Role, campaigns: tuple[str, ...] = ()) -> FlaskClient:
    email = f"{role.value}@example.org"
    add_staff(engine, role, email=email, campaigns=campaigns)
    client = make_app(engine).test_client()
    assert sign_in(client, email=email) == 302
    return client


def post(client: FlaskClient, path: str, **data: str | list[str]) -> TestResponse:
    token = csrf_token(client, f"{ROOT}/solidarity" if "solidarity" in path else REVIEW)
    return client.post(path, data={"csrf_token": token, "campaign": "w4r-2020", **data})


def review_id(engine: Engine, status: str = ReplyStatus.REVIEW) -> int:
    with session_scope(engine) as session:
        found = session.scalar(select(Reply.id).where(Reply.status == status))
        assert found is not None
        return found


def snapshot(engine: Engine) -> list[tuple[Any, ...]]:
    """Every reply's decision and delivery, and the rows a decision would add."""
    with session_scope(engine) as session:
        replies = session.execute(
            select(
                Reply.id,
                Reply.status,
                Reply.supporter_id,
                Reply.case_id,
                Reply.reviewed_at,
                Reply.delivered_at,
            ).order_by(Reply.id)
        ).all()
        actions = session.scalar(select(func.count()).select_from(Action))
        suppressions = session.scalar(select(func.count()).select_from(Suppression))
    return [tuple(r) for r in replies] + [(actions, suppressions)]


def another_campaigns_reply(engine: Engine) -> int:
    with session_scope(engine) as session:
        other = Campaign(
            slug="w4r-2021",
            name="Write for Rights 2021",
            window_start=NOW,
            window_end=NOW,
            from_email="campaigns@example.org",
            from_name="Write for Rights",
        )
        session.add(other)
        session.flush()
        case = Case(campaign_id=other.id, slug="janna", person="Janna Jihad", country="PS")
        session.add(case)
        session.flush()
        reply = Reply(
            status=ReplyStatus.REVIEW,
            from_email="someone@example.net",
            body="For Janna",
            case_id=case.id,
            problem="reply token is not valid",
            received_at=NOW,
        )
        session.add(reply)
        session.flush()
        return reply.id


def test_the_review_list_groups_by_reason_with_its_checks(pg_engine: Engine) -> None:
    seed(pg_engine)
    client = client_for(pg_engine, Role.CAMPAIGNER)
    page = client.get(REVIEW)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "stranger@example.net" in html
    assert 'data-testid="reason-unmatched"' in html and "Free them now" in html
    assert 'data-testid="spf">not checked' in html
    assert html.count('<form method="post"') >= 3  # assign, dismiss, unsubscribe
    only = client.get(REVIEW, query_string={"reason": "parse problem"}).get_data(as_text=True)
    assert "stranger@example.net" not in only
    assert client.get(REVIEW, query_string={"reason": "bogus"}).status_code == 400


def test_assign_then_a_double_submit_is_refused(pg_engine: Engine) -> None:
    seeded = seed(pg_engine)
    client = client_for(pg_engine, Role.CAMPAIGNER)
    reply = review_id(pg_engine)
    done = post(client, f"{REVIEW}/{reply}/assign", email=EMAILS[2], case="popi")
    assert done.status_code == 303
    assert f"Reply #{reply} assigned" in client.get(REVIEW).get_data(as_text=True)
    with session_scope(pg_engine) as session:
        row = session.get(Reply, reply)
        assert row is not None and row.status == ReplyStatus.MATCHED
        assert row.case_id == seeded.case_ids[1] and row.reviewed_by == "campaigner@example.org"
    (entry,) = audit_rows(pg_engine, "reply.assign")
    assert (entry.outcome, entry.campaign_id, entry.target) == (
        "done",
        seeded.campaign_id,
        f"reply #{reply}",
    )
    before = snapshot(pg_engine)
    again = post(client, f"{REVIEW}/{reply}/assign", email=EMAILS[2], case="popi")
    assert again.status_code == 400 and "assigned already" in again.get_data(as_text=True)
    assert snapshot(pg_engine) == before


def test_an_unknown_address_is_refused_and_not_recorded(pg_engine: Engine) -> None:
    seed(pg_engine)
    client = client_for(pg_engine, Role.CAMPAIGNER)
    reply, before = review_id(pg_engine), snapshot(pg_engine)
    response = post(client, f"{REVIEW}/{reply}/assign", email="typo@example.org", case="bird")
    assert response.status_code == 400
    assert "no supporter has that address" in response.get_data(as_text=True)
    assert snapshot(pg_engine) == before
    (entry,) = audit_rows(pg_engine, "reply.assign")
    assert entry.outcome == "failed" and "typo@" not in str(entry)
    assert post(client, f"{REVIEW}/99999/assign", email=EMAILS[2]).status_code == 404


def test_dismiss_needs_a_reason_and_unsubscribe_needs_a_supporter(pg_engine: Engine) -> None:
    seed(pg_engine)
    client = client_for(pg_engine, Role.CAMPAIGNER)
    reply, before = review_id(pg_engine), snapshot(pg_engine)
    assert post(client, f"{REVIEW}/{reply}/dismiss", reason=" ").status_code == 400
    refused = post(client, f"{REVIEW}/{reply}/unsubscribe")
    assert refused.status_code == 400 and "from no supporter" in refused.get_data(as_text=True)
    assert snapshot(pg_engine) == before
    assert post(client, f"{REVIEW}/{reply}/dismiss", reason="spam").status_code == 303
    assert "stranger@example.net" not in client.get(REVIEW).get_data(as_text=True)
    assert [e.outcome for e in audit_rows(pg_engine, "reply.dismiss")] == ["failed", "done"]


def test_unsubscribing_a_supporters_stop_from_review(pg_engine: Engine) -> None:
    seed(pg_engine)
    with session_scope(pg_engine) as session:
        stop = Reply(status=ReplyStatus.REVIEW, from_email=EMAILS[3], body="STOP", received_at=NOW)
        session.add(stop)
        session.flush()
        stop_id = stop.id
    client = client_for(pg_engine, Role.CAMPAIGNER)
    assert post(client, f"{REVIEW}/{stop_id}/unsubscribe").status_code == 303
    with session_scope(pg_engine) as session:
        suppressed = session.scalar(
            select(Suppression.source).where(Suppression.email_hash == email_hash(EMAILS[3]))
        )
    assert suppressed == "review"
    (entry,) = audit_rows(pg_engine, "reply.unsubscribe")
    assert entry.outcome == "done" and EMAILS[3] not in str(entry)


def test_a_viewer_sees_nothing_and_may_post_nothing(pg_engine: Engine) -> None:
    seed(pg_engine)
    client = client_for(pg_engine, Role.VIEWER)
    reply, before = review_id(pg_engine), snapshot(pg_engine)
    page = client.get(REVIEW)
    assert page.status_code == 403 and "Assign" not in page.get_data(as_text=True)
    assert client.get(f"{ROOT}/solidarity").status_code == 403
    token = csrf_token(client, "/workspace/reports/")
    for action, data in (
        ("assign", {"email": EMAILS[2], "case": "bird"}),
        ("dismiss", {"reason": "spam"}),
        ("unsubscribe", {}),
    ):
        response = client.post(
            f"{REVIEW}/{reply}/{action}",
            data={"csrf_token": token, "campaign": "w4r-2020", **data},
        )
        assert response.status_code == 403
    marked = client.post(
        f"{ROOT}/solidarity/delivered",
        data={"csrf_token": token, "campaign": "w4r-2020", "case": "bird", "reply": "1"},
    )
    assert marked.status_code == 403
    assert snapshot(pg_engine) == before
    refused = {e.action for e in audit_rows(pg_engine) if e.outcome == "refused"}
    assert refused == {"reply.review", "reply.assign", "reply.dismiss", "reply.unsubscribe"} | {
        "reply.delivered"
    }


def test_a_campaign_limited_account_cannot_touch_another_campaigns_reply(
    pg_engine: Engine,
) -> None:
    seed(pg_engine)
    other = another_campaigns_reply(pg_engine)
    client = client_for(pg_engine, Role.CAMPAIGNER, campaigns=("w4r-2020",))
    assert "For Janna" not in client.get(REVIEW).get_data(as_text=True)
    assert client.get(REVIEW, query_string={"campaign": "w4r-2021"}).status_code == 403
    assert "For Janna" not in client.get(f"{ROOT}/review.csv").get_data(as_text=True)
    other_csv = client.get(f"{ROOT}/review.csv", query_string={"campaign": "w4r-2021"})
    assert other_csv.status_code == 403
    before = snapshot(pg_engine)
    response = post(client, f"{REVIEW}/{other}/dismiss", reason="not ours")
    assert response.status_code == 403
    assert snapshot(pg_engine) == before
    (entry,) = audit_rows(pg_engine, "reply.dismiss")
    assert entry.outcome == "refused"


def test_a_post_without_the_csrf_token_changes_nothing(pg_engine: Engine) -> None:
    seed(pg_engine)
    client = client_for(pg_engine, Role.CAMPAIGNER)
    reply, before = review_id(pg_engine), snapshot(pg_engine)
    response = client.post(f"{REVIEW}/{reply}/dismiss", data={"reason": "spam"})
    assert response.status_code == 400
    assert snapshot(pg_engine) == before


def seeded_message(engine: Engine) -> tuple[Seeded, int]:
    return seed(engine), review_id(engine, ReplyStatus.MATCHED)


def test_solidarity_messages_are_read_marked_delivered_once_and_exported(
    any_engine: Engine,
) -> None:
    _, matched = seeded_message(any_engine)
    client = client_for(any_engine, Role.CAMPAIGNER)
    page = client.get(f"{ROOT}/solidarity", query_string={"case": "bird"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Stay strong" in html and "Name1" in html
    assert EMAILS[1] not in html  # first names only
    assert f'aria-label="Select message #{matched}"' in html
    path = f"{ROOT}/solidarity/delivered"
    assert post(client, path, case="bird").status_code == 400  # nothing selected
    assert post(client, path, case="bird", reply="x").status_code == 400
    assert post(client, path, case="nobody", reply=str(matched)).status_code == 400
    done = post(client, path, case="bird", reply=str(matched), show="undelivered")
    assert done.status_code == 303 and "show=undelivered" in done.headers["Location"]
    before = snapshot(any_engine)
    again = post(client, path, case="bird", reply=str(matched))
    assert again.status_code == 400 and "marked delivered already" in again.get_data(as_text=True)
    assert snapshot(any_engine) == before
    undelivered = client.get(
        f"{ROOT}/solidarity", query_string={"case": "bird", "show": "undelivered"}
    )
    assert "Stay strong" not in undelivered.get_data(as_text=True)
    delivered = client.get(f"{ROOT}/solidarity", query_string={"case": "bird", "show": "delivered"})
    assert "by campaigner@example.org" in delivered.get_data(as_text=True)
    export = client.get(
        f"{ROOT}/solidarity", query_string={"case": "bird", "format": "csv", "show": "delivered"}
    )
    assert export.mimetype == "text/csv"
    assert "solidarity-bird.csv" in export.headers["Content-Disposition"]
    lines = export.get_data(as_text=True).splitlines()
    assert lines[0] == "reply_id,received_at,language,first_name,country,message"
    assert len(lines) == 2 and lines[1].endswith(",Name1,,Stay strong")
    assert client.get(f"{ROOT}/solidarity", query_string={"case": "nobody"}).status_code == 400
    assert client.get(f"{ROOT}/solidarity", query_string={"show": "some"}).status_code == 400
    (entry,) = [e for e in audit_rows(any_engine, "reply.delivered") if e.outcome == "done"]
    assert entry.detail == f"1 messages: #{matched}"


def test_a_case_with_many_messages_is_read_a_page_at_a_time_and_exported_whole(
    pg_engine: Engine,
) -> None:
    seeded, _ = seeded_message(pg_engine)
    with session_scope(pg_engine) as session:
        session.add_all(
            Reply(
                status=ReplyStatus.MATCHED,
                from_email=f"writer{n}@example.org",
                subject="Solidarity",
                body=f"Message number {n:03d}",
                case_id=seeded.case_ids[0],
                received_at=NOW + timedelta(minutes=n),
            )
            for n in range(1, PER_PAGE + 51)
        )
    client = client_for(pg_engine, Role.CAMPAIGNER)
    first = client.get(f"{ROOT}/solidarity", query_string={"case": "bird"})
    html = first.get_data(as_text=True)
    total = PER_PAGE + 51  # the seed's own message, then these, oldest first
    assert f"{total} messages for bird" in html and "Page 1 of 2" in html
    assert html.count('data-testid="message-') == PER_PAGE
    assert "Message number 099" in html and "Message number 100" not in html
    assert 'rel="next"' in html and 'rel="prev"' not in html
    second = client.get(f"{ROOT}/solidarity", query_string={"case": "bird", "page": "2"})
    html = second.get_data(as_text=True)
    assert html.count('data-testid="message-') == 51 and "Message number 150" in html
    assert 'rel="prev"' in html and 'rel="next"' not in html
    assert 'name="page" value="2"' in html  # marking delivered comes back to this page
    past = client.get(f"{ROOT}/solidarity", query_string={"case": "bird", "page": "9"})
    assert "Page 2 of 2" in past.get_data(as_text=True)  # past the end: the last page
    wrong = client.get(f"{ROOT}/solidarity", query_string={"case": "bird", "page": "two"})
    assert wrong.status_code == 400 and "is not a page number" in wrong.get_data(as_text=True)
    export = client.get(f"{ROOT}/solidarity", query_string={"case": "bird", "format": "csv"})
    assert len(export.get_data(as_text=True).splitlines()) == total + 1  # the header, then all


def test_the_old_addresses_lead_here(pg_engine: Engine) -> None:
    seed(pg_engine)
    client = client_for(pg_engine, Role.CAMPAIGNER)
    assert client.get("/dashboard/replies").headers["Location"] == REVIEW
    assert client.get("/dashboard/replies.csv").headers["Location"] == f"{ROOT}/review.csv"
    old = client.get("/workspace/supporters/solidarity", query_string={"case": "bird"})
    assert old.status_code == 302 and old.headers["Location"].startswith(f"{ROOT}/solidarity?")
    nav = client.get(REVIEW).get_data(as_text=True)
    assert f'href="{REVIEW}">Replies</a>' in nav


def test_the_review_csv_is_formula_safe(any_engine: Engine) -> None:
    seed(any_engine)
    client = client_for(any_engine, Role.CAMPAIGNER)
    response = client.get(f"{ROOT}/review.csv")
    assert response.headers["Content-Disposition"] == "attachment; filename=replies.csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert {r["status"] for r in rows} == {"review", "matched"}
    assert '\'=HYPERLINK("http://x")' in {r["subject"] for r in rows}
