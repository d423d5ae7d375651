"""`campaign demo` end to end, small: every stage runs for real and leaves its files."""

from __future__ import annotations

import email
from pathlib import Path

import cli_tables as tables
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from sender.cli import app
from sender.cli.demo import SHORT_HEADERS
from sender.core import db
from sender.core.models import Action, Message, Reply, SubjectTest, Suppression
from sender.core.vocabulary import ActionKind, MessageStatus, ReplyStatus, SubjectState

DEMO_ENV = ("DATABASE_URL", "SENDGRID_API_KEY", "SENDGRID_API_HOST", "SENDGRID_WEBHOOK_PUBLIC_KEY",
            "PUBLIC_BASE_URL", "OUTBOX_DIR", "INBOUND_SECRET",
            "CLICK_DELIVERY_WINDOW_SECONDS", "CAMPAIGN_MODE")  # fmt: skip


@pytest.mark.slow
def test_demo_runs_the_whole_campaign(
    env: pytest.MonkeyPatch, runner: CliRunner, tmp_path: Path
) -> None:
    for key in DEMO_ENV:  # the demo points the process at its own world; restore it after
        env.setenv(key, "")
    # The demo sets its own mode: it runs from a shell where production is the default.
    env.setenv("CAMPAIGN_MODE", "production")
    out = tmp_path / "demo"

    result = runner.invoke(app, ["demo", "--dir", str(out), "--supporters", "400"])

    assert result.exit_code == 0, result.output
    assert "Where to look" in result.output
    assert "…" not in result.output  # CliRunner's console is 80 columns wide
    assert all(len(line) <= 80 for line in result.output.splitlines())
    at = result.output.index("Actions per case")
    shown = tables.headers(result.output[result.output.rindex("\nimported ", 0, at) : at], keep=2)
    assert shown == ["wave", "kind", "planned", "requests", "recipients", "events",
                         "replies", "letters"]  # fmt: skip
    # The case email ran as a subject test (A/B): its report per variant follows.
    assert "wave case-email by variant" in result.output
    assert "subject test of A, B on human_clicks, 20% test share" in result.output
    per_case = result.output[at : result.output.index("wave case-email by variant")]
    assert tables.headers(per_case) == ["case", *SHORT_HEADERS.values()]
    assert len(tables.row(per_case, "all")) == len(SHORT_HEADERS)
    for name in ("report.html", "actions-per-case.png", "rejected-rows.csv", "crm-export.csv"):
        assert (out / name).stat().st_size > 0, name
    previews = sorted(p.name for p in (out / "previews").glob("*.eml"))
    assert len(previews) == 4  # one case in en, es, fr, ar
    arabic = email.message_from_bytes(next((out / "previews").glob("*-ar.eml")).read_bytes())
    assert arabic["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    engine = db.get_engine(f"sqlite:///{out / 'campaign.db'}")
    with db.session_scope(engine) as session:
        sent_per_wave = dict(
            session.execute(
                select(Message.wave_id, func.count())
                .where(Message.status == MessageStatus.SENT)
                .group_by(Message.wave_id)
            ).all()
        )
        kinds = dict(session.execute(select(Action.kind, func.count()).group_by(Action.kind)).all())
        replies = dict(
            session.execute(select(Reply.status, func.count()).group_by(Reply.status)).all()
        )
        suppressed = session.scalar(select(func.count()).select_from(Suppression))
    assert len(sent_per_wave) == 3 and all(n > 0 for n in sent_per_wave.values())
    with db.session_scope(engine) as session:
        (test,) = session.scalars(select(SubjectTest))
        per_supporter = (
            session.execute(
                select(func.count())
                .select_from(Message)
                .where(Message.wave_id == test.wave_id)
                .group_by(Message.supporter_id)
            )
            .scalars()
            .all()
        )
    assert test.state == SubjectState.FINISHED and test.winner in {"A", "B"}
    assert set(per_supporter) == {1}  # the test share and the remainder: one mail each
    assert kinds.get(ActionKind.OPENED, 0) > 0 and kinds.get(ActionKind.CLICKED, 0) > 0
    assert kinds.get(ActionKind.OPENED_MACHINE, 0) > 0
    assert replies.get(ReplyStatus.MATCHED, 0) > 0
    assert replies.get(ReplyStatus.AUTO_REPLY, 0) > 0  # the out-of-office is kept, not counted
    assert suppressed and suppressed > 0  # bounces, complaints, STOP replies
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "Nassima" in report and "<script" not in report
