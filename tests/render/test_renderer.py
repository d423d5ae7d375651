from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import render_fixtures as fx

from sender.core.errors import TemplateProblem
from sender.core.mail import Address
from sender.core.models import Case, Wave
from sender.core.tokens import MessageRef, ReplyRef
from sender.core.vocabulary import WaveKind
from sender.render.eml import build_eml
from sender.render.identity import SenderIdentity, sender_identity
from sender.render.merge import personalise
from sender.render.renderer import (
    CaseContent,
    RecipientData,
    Renderer,
    WaveContent,
    batch_args,
    kept_renderer,
)

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(fx.settings())


def test_variant_is_rendered_once_and_cached(renderer: Renderer) -> None:
    first = renderer.variant(WaveKind.CASE_EMAIL, fx.case(), "en")
    assert renderer.variant(WaveKind.CASE_EMAIL, fx.case(), "en") is first
    assert renderer.variant(WaveKind.CASE_EMAIL, fx.case(), "es") is not first


def test_a_case_or_subject_corrected_mid_wave_is_rendered_anew(renderer: Renderer) -> None:
    before = renderer.variant(WaveKind.CASE_EMAIL, fx.case(), "en")
    english = dict(fx.TEXTS["en"], ask="Ask the minister to drop every charge today.")
    corrected = fx.case(texts={**fx.TEXTS, "en": english})
    after = renderer.variant(WaveKind.CASE_EMAIL, corrected, "en")
    assert "drop every charge today" in after.html and "drop every charge" not in before.html
    assert renderer.variant(WaveKind.CASE_EMAIL, corrected, "en") is after  # cached again
    wave = WaveContent(3, "launch", WaveKind.CASE_EMAIL, {"en": "Ana needs you"})
    fixed = WaveContent(3, "launch", WaveKind.CASE_EMAIL, {"en": "Ana needs you today"})
    assert renderer.variant(WaveKind.CASE_EMAIL, corrected, "en", wave).subject == "Ana needs you"
    assert (
        renderer.variant(WaveKind.CASE_EMAIL, corrected, "en", fixed).subject
        == "Ana needs you today"
    )


@pytest.mark.parametrize("kind", list(WaveKind))
@pytest.mark.parametrize("language", ["en", "es", "fr", "ar"])
def test_every_kind_and_language_is_email_safe(
    renderer: Renderer, kind: WaveKind, language: str
) -> None:
    variant = renderer.variant(kind, fx.case(), language)
    html = variant.html
    assert "<script" not in html.lower() and "<link" not in html.lower()
    assert re.search(r"<style[^>]*>\s*@media", html)  # media queries survive inlining
    assert 'style="' in html and "<table" in html
    for img in re.findall(r"<img [^>]*>", html):
        assert 'alt="' in img and 'width="' in img and 'height="' in img
    for tag in ("-unsubscribe_url-", "-action_url-", "-first_name-", "-reference-"):
        assert tag in html
    assert "-unsubscribe_url_text-" in variant.text and "-action_url_text-" in variant.text
    assert "1 Easton Street" in html and "1 Easton Street" in variant.text
    assert variant.fallbacks == ()
    assert "{{" not in html and "{%" not in variant.text


def test_arabic_is_right_to_left_and_translated(renderer: Renderer) -> None:
    arabic = renderer.variant(WaveKind.CASE_EMAIL, fx.case(), "ar")
    english = renderer.variant(WaveKind.CASE_EMAIL, fx.case(), "en")
    assert 'dir="rtl"' in arabic.html and 'lang="ar"' in arabic.html
    assert "text-align:right" in arabic.html and "text-align:left" not in arabic.html
    assert 'dir="ltr"' in english.html and "text-align:left" in english.html
    assert "إلغاء الاشتراك" in arabic.html and "اكتب اليوم من أجل Ana Ríos" in arabic.subject
    assert "أطلقوا سراح المدافعة عن النهر" in arabic.html


def test_spanish_and_french_subjects_come_from_the_catalogue(renderer: Renderer) -> None:
    spanish = renderer.variant(WaveKind.ACTION_REMINDER, fx.case(), "es")
    french = renderer.variant(WaveKind.LAST_CHANCE, fx.case(), "fr")
    assert spanish.subject == "¿Ya has escrito por Ana Ríos?"
    assert french.subject == "Dernière chance d'écrire pour Ana Ríos"
    assert spanish.preheader == "Son cinco minutos, y cuentan."


def test_subject_holds_text_tags_and_fills_per_recipient(renderer: Renderer) -> None:
    variant = renderer.variant(WaveKind.CASE_EMAIL, fx.case(), "en")
    assert variant.subject == "-first_name_text-, write for Ana Ríos today"
    rec = renderer.recipient(variant, fx.who(first="Tom & <Jerry>"))
    assert (
        personalise(variant.subject, rec.substitutions) == "Tom & <Jerry>, write for Ana Ríos today"
    )


def test_wave_subject_and_preheader_override_with_merge_fields(renderer: Renderer) -> None:
    wave = WaveContent(
        3,
        "launch",
        WaveKind.CASE_EMAIL,
        {"fr": "{{ first_name }}, Ana a besoin de vous"},
        {"fr": "Réf. {{reference}}"},
    )
    french = renderer.variant(WaveKind.CASE_EMAIL, fx.case(), "fr", wave)
    assert french.subject == "-first_name_text-, Ana a besoin de vous"
    assert french.preheader == "Réf. -reference_text-"
    assert "Réf. -reference-" in french.html
    # Languages the wave does not override keep the catalogue default.
    english = renderer.variant(WaveKind.CASE_EMAIL, fx.case(), "en", wave)
    assert english.subject == "-first_name_text-, write for Ana Ríos today"


def test_wave_subject_with_unknown_field_is_refused(renderer: Renderer) -> None:
    wave = WaveContent(4, "bad", WaveKind.CASE_EMAIL, {"en": "Hi {{ shoe_size }}"})
    with pytest.raises(TemplateProblem, match="wave bad subject: unknown merge field 'shoe_size'"):
        renderer.variant(WaveKind.CASE_EMAIL, fx.case(), "en", wave)
    with pytest.raises(TemplateProblem, match="only merge fields"):
        renderer.variant(
            WaveKind.CASE_EMAIL,
            fx.case(),
            "en",
            WaveContent(5, "w", WaveKind.CASE_EMAIL, {"en": "{% if x %}"}),
        )


@pytest.mark.parametrize(
    "name",
    [
        "<script>alert(1)</script>",
        "Tom & Jerry",
        "D'Arcy \"Dee\" O'Neil",
        "Zoë 🌍✊",
        "فاطمة",
        "A" * 200,
    ],
)
def test_awkward_names_are_escaped_in_html_and_plain_in_text(renderer: Renderer, name: str) -> None:
    variant = renderer.variant(WaveKind.CASE_EMAIL, fx.case(), "en")
    rec = renderer.recipient(variant, fx.who(first=name, last=None))
    html = personalise(variant.html, rec.substitutions)
    text = personalise(variant.text, rec.substitutions)
    escaped = name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    escaped = escaped.replace('"', "&quot;").replace("'", "&#x27;")
    assert f"Dear {escaped}," in html
    assert "<script>" not in html
    assert f"Dear {name}," in text
    assert personalise(variant.subject, rec.substitutions).startswith(f"{name}, write for")
    assert rec.to.name == name
    # Nothing else was lost: the action and unsubscribe links are still complete.
    assert "https://act.example.org/a/" in html and "https://act.example.org/unsubscribe/" in html


def test_names_with_newlines_cannot_break_headers(renderer: Renderer) -> None:
    variant = renderer.variant(WaveKind.CASE_EMAIL, fx.case(), "en")
    rec = renderer.recipient(variant, fx.who(first="Eve\r\nBcc: x@evil.example", last=None))
    assert "\n" not in personalise(variant.subject, rec.substitutions)
    assert rec.to.name == "Eve Bcc: x@evil.example"


@pytest.mark.parametrize(
    ("language", "word"), [("en", "friend"), ("es", "amigo/a"), ("ar", "صديقنا العزيز")]
)
def test_missing_first_name_uses_the_language_fallback(
    renderer: Renderer, language: str, word: str
) -> None:
    variant = renderer.variant(WaveKind.CASE_EMAIL, fx.case(), language)
    rec = renderer.recipient(variant, fx.who(first="  ", last=None))
    assert rec.substitutions["-first_name_text-"] == word
    assert rec.to.name is None


def test_recipient_tokens_headers_and_custom_args(renderer: Renderer) -> None:
    variant = renderer.variant(WaveKind.CASE_EMAIL, fx.case(), "en")
    rec = renderer.recipient(variant, fx.who())
    assert rec.custom_args == {"supporter_id": "41", "message_id": "9001"}
    action = rec.substitutions["-action_url_text-"]
    unsubscribe = rec.substitutions["-unsubscribe_url_text-"]
    # Always first-party, even though the case has its own action_url.
    assert action.startswith("https://act.example.org/a/")
    ref = renderer.signer.read_action(action.rsplit("/", 1)[1])
    assert (ref.supporter_id, ref.message_id, ref.case_id, ref.wave_id) == (41, 9001, 7, 3)
    assert renderer.signer.read_unsubscribe(unsubscribe.rsplit("/", 1)[1]) == ref
    assert rec.headers["List-Unsubscribe"].startswith(
        f"<{unsubscribe}>, <mailto:unsubscribe@example.org?"
    )
    batch = renderer.batch(variant, [rec], "k-1", ("w4r",), batch_args(7, 3, send_key="k-1"))
    assert batch.headers_for(rec) == {
        "List-Unsubscribe": rec.headers["List-Unsubscribe"],
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert batch.custom_args_for(rec) == {
        "installation_id": renderer.settings.installation,
        "case_id": "7",
        "wave_id": "3",
        "send_key": "k-1",
        "supporter_id": "41",
        "message_id": "9001",
    }
    assert rec.substitutions["-reference-"] == rec.substitutions["-reference_text-"]
    assert rec.to.name == "Maya Okafor"


def test_preview_recipient_without_message_or_wave(renderer: Renderer) -> None:
    variant = renderer.variant(WaveKind.CASE_EMAIL, fx.case(), "en")
    who = RecipientData(41, "maya@example.org", "Maya", None, None, 7, None)
    rec = renderer.recipient(variant, who)
    assert rec.custom_args == {"supporter_id": "41"}
    assert batch_args(7, None, proof="1") == {"case_id": "7", "proof": "1"}
    token = rec.substitutions["-action_url_text-"].rsplit("/", 1)[1]
    assert renderer.signer.read_action(token) == MessageRef(41, None, 7, None)
    assert rec.substitutions["-reference_text-"].startswith("S")  # names the supporter
    assert rec.to.name == "Maya"


def test_base_url_needing_escapes_is_escaped_in_html_only() -> None:
    renderer = Renderer(fx.settings(public_base_url="https://act.example.org/w4r?o=1&l=en"))
    variant = renderer.variant(WaveKind.CASE_EMAIL, fx.case(), "en")
    rec = renderer.recipient(variant, fx.who())
    text_url = rec.substitutions["-action_url_text-"]
    assert text_url.startswith("https://act.example.org/w4r?o=1&l=en/a/")
    assert rec.substitutions["-action_url-"] == text_url.replace("&", "&amp;")
    unsubscribe = rec.substitutions["-unsubscribe_url_text-"]
    assert rec.substitutions["-unsubscribe_url-"] == unsubscribe.replace("&", "&amp;")
    assert rec.headers["List-Unsubscribe"].startswith(f"<{unsubscribe}>")
    html = personalise(variant.html, rec.substitutions)
    assert "o=1&amp;l=en/a/" in html and "o=1&l=en/a/" not in html


def test_plain_base_url_serves_both_parts(renderer: Renderer) -> None:
    variant = renderer.variant(WaveKind.CASE_EMAIL, fx.case(), "en")
    rec = renderer.recipient(variant, fx.who(first="Zoë", last="O'Hara & Co"))
    subs = rec.substitutions
    assert subs["-action_url-"] == subs["-action_url_text-"]
    assert subs["-unsubscribe_url-"] == subs["-unsubscribe_url_text-"]
    assert subs["-full_name-"] == "Zoë O&#x27;Hara &amp; Co"
    assert subs["-full_name_text-"] == "Zoë O'Hara & Co"
    assert subs["-first_name-"] == subs["-first_name_text-"] == "Zoë"


def test_reply_to_names_wave_case_and_language(renderer: Renderer) -> None:
    wave = WaveContent(12, "reminder", WaveKind.ACTION_REMINDER)
    variant = renderer.variant(WaveKind.ACTION_REMINDER, fx.case(), "fr", wave)
    local, domain = variant.reply_to.email.split("@")
    assert domain == "parse.example.org" and local == "reply+-reply_token-"
    ref = renderer.signer.read_reply(variant.reply_token)
    assert ref == ReplyRef(12, 7, "fr", None)


def test_every_recipient_gets_a_reply_to_naming_their_own_message(renderer: Renderer) -> None:
    """Issue 13: one shared Reply-To token let a forged From claim any case's reply."""
    wave = WaveContent(3, "first", WaveKind.CASE_EMAIL)
    variant = renderer.variant(WaveKind.CASE_EMAIL, fx.case(), "en", wave)
    rows = [fx.who(), replace(fx.who("Li"), supporter_id=42, message_id=9002)]
    recs = renderer.recipients(variant, rows, 7, 3)
    batch = renderer.batch(variant, recs, "k", ("w4r",))
    addresses = [personalise(batch.reply_to.email, r.substitutions) for r in recs]
    assert len(set(addresses)) == 2
    refs = [renderer.signer.read_reply(a.removeprefix("reply+").split("@")[0]) for a in addresses]
    assert refs == [ReplyRef(3, 7, "en", 9001), ReplyRef(3, 7, "en", 9002)]
    # What the outbox (and a preview) writes is what SendGrid sends: the filled address.
    assert build_eml(batch, recs[1], ())["Reply-To"] == addresses[1]
    # Previews and proofs have no message: the variant's token.
    preview = renderer.recipient(variant, replace(fx.who(), message_id=None))
    assert preview.substitutions["-reply_token-"] == variant.reply_token


def test_batch_shares_the_variant_body(renderer: Renderer) -> None:
    variant = renderer.variant(WaveKind.CASE_EMAIL, fx.case(), "en")
    recs = [renderer.recipient(variant, fx.who()), renderer.recipient(variant, fx.who("Li"))]
    batch = renderer.batch(variant, recs, send_key="k1", categories=["w4r", "case_email"])
    assert batch.html is variant.html and batch.subject == variant.subject
    assert batch.reply_to == variant.reply_to and batch.recipients == tuple(recs)
    assert batch.sender.email == "campaigns@example.org" and batch.categories == (
        "w4r",
        "case_email",
    )


def test_brand_sender_and_reply_domain_come_from_the_identity() -> None:
    identity = SenderIdentity(
        {**sender_identity(fx.settings()).brand, "primary": "#123456", "org_address": "5 Rue X"},
        Address("w4r@section.example", "Section X"),
        "replies.section.example",
    )
    branded = Renderer(fx.settings(), identity)
    variant = branded.variant(WaveKind.CASE_EMAIL, fx.case(), "en")
    assert "#123456" in variant.html and "5 Rue X" in variant.html
    assert "1 Easton Street" not in variant.html
    assert variant.reply_to.email.endswith("@replies.section.example")
    batch = branded.batch(variant, [branded.recipient(variant, fx.who())], "k", ())
    assert batch.sender == Address("w4r@section.example", "Section X")


def test_without_an_identity_the_settings_speak(renderer: Renderer) -> None:
    variant = renderer.variant(WaveKind.CASE_EMAIL, fx.case(), "en")
    batch = renderer.batch(variant, [renderer.recipient(variant, fx.who())], "k", ())
    assert batch.sender == Address("campaigns@example.org", "Write for Rights")
    assert variant.reply_to.email.endswith("@parse.example.org")


def test_case_lacking_a_field_is_named(renderer: Renderer) -> None:
    texts = {**fx.TEXTS, "fr": {k: v for k, v in fx.TEXTS["fr"].items() if k != "ask"}}
    broken = fx.case("broken-case", texts)
    with pytest.raises(TemplateProblem, match=r"case broken-case: content\.fr lacks field 'ask'"):
        renderer.variant(WaveKind.CASE_EMAIL, broken, "fr")
    assert "Ask the Attorney General" in renderer.variant(WaveKind.CASE_EMAIL, broken, "es").html


def test_case_without_a_language_falls_back_to_english_and_says_so(renderer: Renderer) -> None:
    only_english = fx.case("en-only", {"en": fx.TEXTS_EN})
    variant = renderer.variant(WaveKind.CASE_EMAIL, only_english, "es")
    assert "Free the river defender" in variant.html and "Hola, -first_name-:" in variant.html
    assert variant.fallbacks == ("case en-only has no 'es' content; English used",)


def test_missing_translation_falls_back_to_english_and_is_reported(tmp_path: Path) -> None:
    templates = fx.copy_templates(tmp_path / "templates")
    po = templates / "locales/es/LC_MESSAGES/messages.po"
    po.write_text(po.read_text().replace('msgstr "Enviar mi carta"', 'msgstr ""'))
    renderer = Renderer(fx.settings(), templates_dir=templates)
    variant = renderer.variant(WaveKind.ACTION_REMINDER, fx.case(), "es")
    assert "Send my letter" in variant.html
    assert "¿Ya has escrito? Gracias." in variant.html  # the other strings stay Spanish
    assert variant.fallbacks == ("es: no translation for 'Send my letter'; English used",)


def _broken(tmp_path: Path, name: str, old: str, new: str) -> Renderer:
    templates = fx.copy_templates(tmp_path / "templates")
    path = templates / name
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new, 1))
    return Renderer(fx.settings(), templates_dir=templates)


def test_syntax_error_names_template_and_line(tmp_path: Path) -> None:
    renderer = _broken(tmp_path, "case_email.html", "{% endblock %}", "{% endblok %}")
    with pytest.raises(TemplateProblem, match=r"case_email.html, line 16: .*endblok"):
        renderer.variant(WaveKind.CASE_EMAIL, fx.case(), "en")
    assert "Send my letter" in renderer.variant(WaveKind.ACTION_REMINDER, fx.case(), "en").html


def test_from_rows_copy_the_orm_values() -> None:
    row = Case(
        id=3,
        slug="s",
        person="P",
        country="TR",
        status="active",
        action_url=None,
        image_url=None,
        content={"en": fx.TEXTS_EN},
    )
    content = CaseContent.from_row(row)
    row.content["en"] = {}
    assert content.content["en"]["ask"] == fx.TEXTS_EN["ask"] and content.action_url is None
    now = datetime(2020, 12, 1, tzinfo=UTC)
    wave = Wave(
        id=9,
        name="w",
        kind="last_chance",
        audience="all_assigned",
        starts_at=now,
        ends_at=now,
        subjects={"en": "Hi {{ first_name }}"},
        preheaders={},
    )
    assert WaveContent.from_row(wave) == WaveContent(
        9, "w", WaveKind.LAST_CHANCE, {"en": "Hi {{ first_name }}"}, {}
    )


GOLDEN_CASES = [
    ("case_email", "en"),
    ("case_email", "ar"),
    ("action_reminder", "es"),
    ("last_chance", "fr"),
    ("thank_you", "es"),
    ("good_news", "ar"),  # a resolved case: the release
]


@pytest.mark.parametrize(("kind", "language"), GOLDEN_CASES)
def test_golden_output(renderer: Renderer, kind: str, language: str) -> None:
    """Pinned output; regenerate with UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_render.py."""
    case = fx.case()
    if kind == WaveKind.GOOD_NEWS:
        case = dataclasses.replace(case, status="resolved")
    variant = renderer.variant(kind, case, language)
    rec = renderer.recipient(variant, fx.who())
    rendered = {
        "html": personalise(variant.html, rec.substitutions),
        "txt": personalise(variant.text, rec.substitutions),
        "subject.txt": personalise(variant.subject, rec.substitutions)
        + "\n"
        + personalise(variant.preheader, rec.substitutions)
        + "\n",
    }
    for suffix, actual in rendered.items():
        path = GOLDEN / f"{kind}-{language}.{suffix}"
        if os.environ.get("UPDATE_GOLDEN"):
            path.write_text(actual, encoding="utf-8")
        assert path.exists(), f"{path} missing: run with UPDATE_GOLDEN=1"
        assert actual == path.read_text(encoding="utf-8"), f"{path} differs (UPDATE_GOLDEN=1)"


CASES_FILE = Path(__file__).parents[2] / "audiences" / "w4r-2020" / "cases.yaml"


def test_the_2020_cases_render_in_every_kind_and_language(renderer: Renderer) -> None:
    from sender.campaign.cases import read_cases
    from sender.render.preview import html_warnings

    definitions = read_cases(CASES_FILE).cases
    assert len(definitions) == 7
    for number, definition in enumerate(definitions, start=1):
        row = Case(id=number, slug=definition.slug, **definition.row_values())
        content = CaseContent.from_row(row)
        for language in ("en", "es", "fr", "ar"):
            for kind in WaveKind:
                variant = renderer.variant(kind, content, language)
                rec = renderer.recipient(variant, fx.who())
                html = personalise(variant.html, rec.substitutions)
                assert variant.fallbacks == (), (definition.slug, language, kind)
                assert html_warnings(html) == [], (definition.slug, language, kind)
                assert definition.person in variant.subject
                assert 'dir="rtl"' in html if language == "ar" else 'dir="ltr"' in html


def test_a_kept_renderer_is_made_once_per_inputs_and_anew_after_a_template_edit(
    tmp_path: Path,
) -> None:
    templates = fx.copy_templates(tmp_path / "templates")
    settings = fx.settings(templates_dir=templates)
    first = kept_renderer(settings)
    assert kept_renderer(settings) is first
    other_brand = {**sender_identity(settings).brand, "organisation": "Another"}
    identity = dataclasses.replace(sender_identity(settings), brand=other_brand)
    assert kept_renderer(settings, identity) is not first
    assert kept_renderer(fx.settings(templates_dir=templates, brand_ink="#111111")) is not first
    edited = templates / "case_email.txt"
    edited.write_text(edited.read_text() + "\n")
    stamp = edited.stat().st_mtime_ns + 1_000_000_000
    os.utime(edited, ns=(stamp, stamp))
    again = kept_renderer(settings)
    assert again is not first and kept_renderer(settings) is again
