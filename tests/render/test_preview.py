from __future__ import annotations

import email
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest
import render_fixtures as fx
from campaign_fixtures import declare_2020_languages, the_2020_campaign
from sqlalchemy import Engine

from sender.core import db
from sender.core.models import Case
from sender.core.vocabulary import WaveKind
from sender.render.preview import (
    check_all,
    html_warnings,
    preview,
    preview_warnings,
    screenshot,
)
from sender.render.renderer import Renderer


def add_case(
    engine: Engine, slug: str = "ana-rios", texts: dict[str, dict[str, str]] | None = None
) -> None:
    with db.session_scope(engine) as session:
        campaign = the_2020_campaign(session)
        session.add(
            Case(
                campaign_id=campaign.id,
                slug=slug,
                person="Ana Ríos",
                country="CO",
                action_url=None,
                image_url="https://act.example.org/img/ana.jpg",
                content=fx.TEXTS if texts is None else texts,
            )
        )


def test_preview_personalises_and_builds_the_mime_message() -> None:
    result = preview(Renderer(fx.settings()), WaveKind.CASE_EMAIL, fx.case(), "fr", fx.who())
    assert result.subject == "Maya, écrivez aujourd'hui pour Ana Ríos"
    assert "Bonjour Maya," in result.html and "Bonjour Maya," in result.text
    assert result.warnings == ()
    message = email.message_from_bytes(result.eml, policy=default)
    assert isinstance(message, EmailMessage)
    assert message["Subject"] == result.subject
    assert message["To"] == "Maya Okafor <maya@example.org>"
    assert message["Reply-To"].startswith("reply+0.7.fr.")  # no wave: wave 0
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Unsubscribe"].startswith("<https://act.example.org/unsubscribe/")
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content() == result.text
    assert html.get_content() == result.html


def test_preview_says_when_a_translation_is_missing(tmp_path: Path) -> None:
    templates = fx.copy_templates(tmp_path / "templates")
    po = templates / "locales/fr/LC_MESSAGES/messages.po"
    po.write_text(po.read_text().replace('msgstr "Se désabonner de ces e-mails"', 'msgstr ""'))
    renderer = Renderer(fx.settings(), templates_dir=templates)
    result = preview(renderer, WaveKind.CASE_EMAIL, fx.case(), "fr")
    assert result.warnings == (
        "missing translation: fr: no translation for 'Unsubscribe from these emails'; English used",
    )
    assert "Unsubscribe from these emails" in result.html and "Bonjour Alex," in result.html


def test_html_warnings_find_clipping_missing_alt_and_plain_http() -> None:
    html = (
        '<img src="https://x/a.png" width="1" height="1">'
        '<img src="https://x/b.png" alt="b">'
        '<a href="http://insecure.example.org/">x</a><a href="https://ok/">y</a>'
        '<a href="mailto:a@b">z</a>'
    )
    assert html_warnings(html) == [
        "line 1: image https://x/a.png has no alt text",
        "line 1: image https://x/b.png lacks width or height",
        "line 1: link http://insecure.example.org/ is not https",
    ]
    big = html_warnings("<p>" + "x" * 110_000 + "</p>")
    assert big == ["HTML is 107.4 KB: Gmail clips messages over 102 KB"]
    assert html_warnings("<p>fine</p>") == []


def test_check_all_passes_on_the_shipped_templates(sqlite_engine: Engine) -> None:
    add_case(sqlite_engine)
    assert check_all(sqlite_engine, fx.settings()) == []


def test_check_all_names_a_case_lacking_a_field(sqlite_engine: Engine) -> None:
    add_case(sqlite_engine)
    texts = {**fx.TEXTS, "ar": {k: v for k, v in fx.TEXTS["ar"].items() if k != "letter"}}
    add_case(sqlite_engine, "broken", texts)
    problems = check_all(sqlite_engine, fx.settings())
    assert {p.template for p in problems} == {f"{kind.value} × broken × ar" for kind in WaveKind}
    assert all("case broken: content.ar lacks field 'letter'" in p.message for p in problems)


def test_check_all_refuses_a_broken_template(sqlite_engine: Engine, tmp_path: Path) -> None:
    add_case(sqlite_engine)
    templates = fx.copy_templates(tmp_path / "templates")
    (templates / "last_chance.txt").write_text("{% if recipient.first_name %}hi{% endif %}\n")
    (templates / "case_email.html").unlink()
    problems = check_all(sqlite_engine, fx.settings(templates_dir=templates))
    assert [str(p) for p in problems] == [
        "last_chance.txt, line 1: recipient.first_name is used in an if condition; "
        "recipient fields are substitution tags and may only be printed",
        "case_email.html: template is missing",
    ]


@pytest.mark.browser
def test_screenshot_of_the_arabic_preview(tmp_path: Path) -> None:
    result = preview(Renderer(fx.settings()), WaveKind.CASE_EMAIL, fx.case(), "ar", fx.who())
    page = tmp_path / "ar.html"
    page.write_text(result.html, encoding="utf-8")
    png = screenshot(page, tmp_path / "ar.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def _declare(engine: Engine, languages: list[str]) -> None:
    declare_2020_languages(engine, languages)


def test_check_all_renders_each_campaign_in_its_declared_languages(
    sqlite_engine: Engine,
) -> None:
    _declare(sqlite_engine, ["de", "fa"])
    texts = {"de": {**fx.TEXTS_EN, "title": "Zwei"}, "fa": {**fx.TEXTS_EN, "letter": ""}}
    add_case(sqlite_engine, "zwei", texts)
    problems = check_all(sqlite_engine, fx.settings())
    # Only the declared languages are rendered: the Persian letter is empty, no es/fr/ar run.
    assert {p.template for p in problems} == {f"{kind.value} × zwei × fa" for kind in WaveKind}


def test_check_all_refuses_a_declared_language_without_a_catalogue(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    _declare(sqlite_engine, ["en", "pt_BR"])
    add_case(sqlite_engine, "ana", {"en": fx.TEXTS_EN, "pt_BR": fx.TEXTS_EN})
    problems = check_all(sqlite_engine, fx.settings())
    assert [str(p) for p in problems] == [
        "campaign w4r-2020: language 'pt_BR' has no catalogue:"
        " add locales/pt_BR/LC_MESSAGES/messages.po to the templates"
    ]
    # With the catalogue added to a copy of the templates (no code change): clean.
    templates = fx.copy_templates(tmp_path / "templates")
    source = templates / "locales" / "es" / "LC_MESSAGES" / "messages.po"
    target = templates / "locales" / "pt_BR" / "LC_MESSAGES" / "messages.po"
    target.parent.mkdir(parents=True)
    target.write_text(source.read_text(encoding="utf-8").replace("Language: es", "Language: pt_BR"))
    assert check_all(sqlite_engine, fx.settings(templates_dir=templates)) == []


def test_check_all_sees_a_case_edited_after_an_earlier_check(sqlite_engine: Engine) -> None:
    # The renderers are kept per process; a variant renders again once its case changes.
    add_case(sqlite_engine)
    assert check_all(sqlite_engine, fx.settings()) == []
    with db.session_scope(sqlite_engine) as session:
        case = session.query(Case).filter_by(slug="ana-rios").one()
        case.content = {
            **fx.TEXTS,
            "ar": {k: v for k, v in fx.TEXTS["ar"].items() if k != "letter"},
        }
    problems = check_all(sqlite_engine, fx.settings())
    assert {p.template for p in problems} == {f"{kind.value} × ana-rios × ar" for kind in WaveKind}


def test_preview_warnings_are_the_previews_own() -> None:
    renderer = Renderer(fx.settings())
    texts = {**fx.TEXTS, "en": {**fx.TEXTS["en"], "title": "See http://example.org/plain"}}
    for case in (fx.case(), fx.case(texts=texts)):
        for language in ("en", "ar"):
            shown = preview(renderer, WaveKind.CASE_EMAIL, case, language)
            warned = preview_warnings(renderer, WaveKind.CASE_EMAIL, case, language, None)
            assert warned == shown.warnings
