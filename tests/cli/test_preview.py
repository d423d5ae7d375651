from __future__ import annotations

import email
from datetime import UTC, datetime
from email.policy import default
from pathlib import Path

import pytest
import render_fixtures as fx
from campaign_fixtures import campaign_yaml, the_2020_campaign
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from sender.campaign.folder import parse_campaign
from sender.campaign.registry import store_campaign
from sender.cli import app
from sender.core import db
from sender.core.config import get_settings, reset_settings
from sender.core.models import Campaign, Case, Supporter

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


@pytest.fixture
def database(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # An absolute URL: engines are cached per URL, and a relative one would be shared.
    env.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'preview.db'}")
    reset_settings()
    settings = get_settings()
    engine = db.get_engine(settings.database_url)
    db.upgrade(engine)
    with db.session_scope(engine) as session:
        campaign = the_2020_campaign(session)
        session.add(
            Case(
                campaign_id=campaign.id,
                slug="ana-rios",
                person="Ana Ríos",
                country="CO",
                action_url=None,
                image_url=None,
                content=fx.TEXTS,
            )
        )
        session.add(
            Supporter(
                email="zoe@example.org",
                email_hash="h1",
                first_name="Zoé <b>",
                last_name="Martin & fils",
                language="fr",
            )
        )


def test_preview_writes_html_text_and_eml(
    runner: CliRunner, database: None, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "preview",
            "--case",
            "ana-rios",
            "--lang",
            "fr",
            "--supporter",
            "zoe@example.org",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "subject:   Zoé <b>, écrivez aujourd'hui pour Ana Ríos" in result.output
    assert "preheader: Une lettre de votre part" in result.output
    assert "size:      HTML" in result.output
    html = (out / "ana-rios-fr-case_email.html").read_text()
    assert "Bonjour Zoé &lt;b&gt;," in html
    assert "Bonjour Zoé <b>," in (out / "ana-rios-fr-case_email.txt").read_text()
    message = email.message_from_bytes(
        (out / "ana-rios-fr-case_email.eml").read_bytes(), policy=default
    )
    assert message["To"] == '"Zoé <b> Martin & fils" <zoe@example.org>'


def _engine() -> Engine:
    return db.get_engine(get_settings().database_url)


def test_preview_renders_with_the_campaign_s_brand_and_sender(
    runner: CliRunner, database: None, tmp_path: Path
) -> None:
    with db.session_scope(_engine()) as session:
        campaign = session.scalars(select(Campaign)).one()
        campaign.brand = {**campaign.brand, "primary": "#123456", "org_name": "Section X"}
        campaign.from_email, campaign.from_name = "w4r@section.example", "Section X"
    out = tmp_path / "out"
    args = ["preview", "--case", "ana-rios", "--supporter", " ZOE@Example.org ", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    html = (out / "ana-rios-en-case_email.html").read_text()
    assert "#123456" in html and "Section X" in html and "#ffff00" not in html
    message = email.message_from_bytes(
        (out / "ana-rios-en-case_email.eml").read_bytes(), policy=default
    )
    assert message["From"] == "Section X <w4r@section.example>"
    assert message["To"] == '"Zoé <b> Martin & fils" <zoe@example.org>'  # the address normalised


def test_preview_finds_cases_of_the_campaign_only(runner: CliRunner, database: None) -> None:
    with db.session_scope(_engine()) as session:
        other, _ = store_campaign(session, parse_campaign(campaign_yaml("other", NOW)))
        session.add(Case(campaign_id=other.id, slug="elsewhere", person="E", country="FR"))
    result = runner.invoke(app, ["preview", "--case", "elsewhere", "--campaign", "w4r-2020"])
    assert result.exit_code == 2
    assert "no case with slug 'elsewhere' in campaign 'w4r-2020'" in result.output
    # Without --campaign, two open campaigns: the command names them instead of guessing.
    result = runner.invoke(app, ["preview", "--case", "elsewhere"])
    assert result.exit_code == 2
    assert "2 campaigns are open (w4r-2020, other)" in " ".join(result.output.split())


def test_preview_of_another_kind_with_the_sample_supporter(
    runner: CliRunner, database: None, tmp_path: Path
) -> None:
    result = runner.invoke(
        app,
        [
            "preview",
            "--case",
            "ana-rios",
            "--lang",
            "ar",
            "--kind",
            "last_chance",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "الفرصة الأخيرة للكتابة من أجل Ana Ríos" in result.output
    assert 'dir="rtl"' in (tmp_path / "ana-rios-ar-last_chance.html").read_text()


def test_preview_warns_about_missing_translations(
    runner: CliRunner, database: None, tmp_path: Path
) -> None:
    templates = fx.copy_templates(tmp_path / "templates")
    po = templates / "locales/es/LC_MESSAGES/messages.po"
    po.write_text(po.read_text().replace('msgstr "Referencia: %(code)s"', 'msgstr ""'))
    result = runner.invoke(
        app,
        [
            "preview",
            "--case",
            "ana-rios",
            "--lang",
            "es",
            "--templates-dir",
            str(templates),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (
        "warning: missing translation: es: no translation for 'Reference: %(code)s'"
        in result.output
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--case", "nobody"], "error: no case with slug 'nobody'"),
        (
            ["--case", "ana-rios", "--supporter", "ghost@example.org"],
            "error: no supporter with email",
        ),
        ([], "error: give --case SLUG (or --all)"),
    ],
)
def test_preview_bad_input_is_one_line(
    runner: CliRunner, database: None, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["preview", *args])
    assert result.exit_code == 2
    assert result.output.strip().startswith(message)
    assert len(result.output.strip().splitlines()) == 1


def test_preview_all_passes(runner: CliRunner, database: None) -> None:
    result = runner.invoke(app, ["preview", "--all"])
    assert result.exit_code == 0, result.output
    assert "every variant renders" in result.output


@pytest.mark.parametrize(
    ("template", "old", "new", "problem", "count"),
    [
        # A syntax error: one template, named with its line.
        (
            "action_reminder.html",
            "{{ case.ask }}",
            "{{ case.ask ",
            "action_reminder.html, line 7:",
            1,
        ),
        # An undefined value in the shared layout: 3 kinds x 4 languages, all named.
        (
            "layout.txt",
            "{{ brand.org_address }}",
            "{{ brand.phone }}",
            "layout.txt, line 6: undefined value:",
            12,
        ),
    ],
)
def test_preview_all_refuses_a_broken_template(
    runner: CliRunner,
    database: None,
    tmp_path: Path,
    template: str,
    old: str,
    new: str,
    problem: str,
    count: int,
) -> None:
    templates = fx.copy_templates(tmp_path / "templates")
    path = templates / template
    path.write_text(path.read_text().replace(old, new))
    result = runner.invoke(app, ["preview", "--all", "--templates-dir", str(templates)])
    assert result.exit_code == 1
    assert problem in result.output
    assert f"{count} problem(s): refusing" in result.output


@pytest.mark.browser
def test_preview_png(runner: CliRunner, database: None, tmp_path: Path) -> None:
    args = ["preview", "--case", "ana-rios", "--lang", "ar", "--png", "--out", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ana-rios-ar-case_email.png").read_bytes()[:4] == b"\x89PNG"
