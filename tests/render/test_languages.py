"""A language is data: a catalogue and the case's text make it, with no code change.

German and Persian ship as catalogues; a language added to a copy of the
templates at test time (Brazilian Portuguese, Hebrew) renders too, with its
`lang` and `dir` from the locale.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import render_fixtures as fx
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from sender.core.errors import TemplateProblem
from sender.core.vocabulary import WaveKind
from sender.render.renderer import Renderer
from sender.render.templating import DEFAULT_TEMPLATES_DIR, Templates

TEXTS = {
    **fx.TEXTS,
    "de": {**fx.TEXTS_EN, "ask": "Fordere ihre sofortige Freilassung."},
    "fa": {**fx.TEXTS_EN, "ask": "خواستار آزادی فوری او شوید."},
}
POT = DEFAULT_TEMPLATES_DIR / "locales" / "messages.pot"


def _html_attributes(html: str) -> tuple[str, str]:
    found = re.search(r'<html lang="([^"]+)" dir="([^"]+)"', html)
    assert found is not None
    return found.group(1), found.group(2)


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(fx.settings())


def test_the_shipped_catalogues_include_german_and_persian() -> None:
    assert Templates(DEFAULT_TEMPLATES_DIR).languages == ("ar", "de", "en", "es", "fa", "fr")


@pytest.mark.parametrize("language", ["de", "fa"])
def test_every_msgid_is_translated(language: str) -> None:
    with POT.open("rb") as handle:
        wanted = {m.id for m in read_po(handle) if m.id}
    po = DEFAULT_TEMPLATES_DIR / "locales" / language / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    done = {m.id for m in catalog if m.id and m.string and not m.fuzzy}
    assert wanted <= done
    for message in catalog:  # placeholders kept, as Babel checks them
        assert not list(message.check(catalog)), message.id


# The kinds that ask for a letter; a thank-you and good news do not repeat the ask.
ASKING = (WaveKind.CASE_EMAIL, WaveKind.ACTION_REMINDER, WaveKind.LAST_CHANCE)


@pytest.mark.parametrize("kind", list(WaveKind))
def test_german_renders_left_to_right_in_german(renderer: Renderer, kind: WaveKind) -> None:
    variant = renderer.variant(kind, fx.case(texts=TEXTS), "de")
    assert _html_attributes(variant.html) == ("de", "ltr")
    assert "text-align:right" not in variant.html
    assert "Diese E-Mails abbestellen" in variant.html and "Referenz:" in variant.text
    if kind in ASKING:
        assert "Fordere ihre sofortige Freilassung." in variant.html
    assert variant.fallbacks == ()


@pytest.mark.parametrize("kind", list(WaveKind))
def test_persian_renders_right_to_left_in_persian(renderer: Renderer, kind: WaveKind) -> None:
    variant = renderer.variant(kind, fx.case(texts=TEXTS), "fa")
    assert _html_attributes(variant.html) == ("fa", "rtl")
    assert '<body dir="rtl"' in variant.html and "text-align:right" in variant.html
    assert "text-align:left" not in variant.html
    assert "لغو اشتراک این ایمیل‌ها" in variant.html
    if kind in ASKING:
        assert "خواستار آزادی فوری او شوید." in variant.html
    assert variant.fallbacks == ()


def test_german_subjects_come_from_the_catalogue(renderer: Renderer) -> None:
    variant = renderer.variant(WaveKind.ACTION_REMINDER, fx.case(texts=TEXTS), "de")
    assert variant.subject == "Hast du schon für Ana Ríos geschrieben?"
    persian = renderer.variant(WaveKind.LAST_CHANCE, fx.case(texts=TEXTS), "fa")
    assert persian.subject == "آخرین فرصت برای نوشتن برای Ana Ríos"


def _add_catalogue(templates: Path, folder: str, strings: dict[str, str]) -> Path:
    """A new language's catalogue, made from the template as a translator would."""
    with POT.open("rb") as handle:
        template = read_po(handle)
    catalog = Catalog(locale=folder)
    for message in template:
        if message.id:
            catalog.add(message.id, strings.get(str(message.id), ""), locations=message.locations)
    po = templates / "locales" / folder / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True)
    with po.open("wb") as handle:
        write_po(handle, catalog)
    return po


def test_a_language_added_at_run_time_renders_with_no_code_change(tmp_path: Path) -> None:
    templates = fx.copy_templates(tmp_path / "templates")
    _add_catalogue(
        templates,
        "pt_BR",
        {
            "Unsubscribe from these emails": "Cancelar estes e-mails",
            "Dear %(name)s,": "Olá, %(name)s,",
        },
    )
    _add_catalogue(templates, "he", {"Unsubscribe from these emails": "ביטול ההרשמה"})
    renderer = Renderer(fx.settings(templates_dir=templates))
    assert {"pt_BR", "he"} <= set(renderer.templates.languages)
    texts = {
        "pt_BR": {**fx.TEXTS_EN, "title": "Libertem a defensora do rio"},
        "he": {**fx.TEXTS_EN, "title": "שחררו את מגינת הנהר"},
    }
    brazil = renderer.variant(WaveKind.CASE_EMAIL, fx.case(texts=texts), "pt_BR")
    assert _html_attributes(brazil.html) == ("pt-BR", "ltr")  # BCP 47 in HTML
    assert "Cancelar estes e-mails" in brazil.html and "Olá, -first_name-," in brazil.html
    assert "Libertem a defensora do rio" in brazil.html
    # Strings the new catalogue leaves out fall back to English, and are reported.
    assert "pt_BR: no translation for 'Reference: %(code)s'; English used" in brazil.fallbacks
    hebrew = renderer.variant(WaveKind.CASE_EMAIL, fx.case(texts=texts), "he")
    assert _html_attributes(hebrew.html) == ("he", "rtl")
    assert "ביטול ההרשמה" in hebrew.html and "שחררו את מגינת הנהר" in hebrew.html


@pytest.mark.parametrize(
    ("folder", "expected"),
    [
        ("xx", "folder 'xx' is not a language code Babel knows (e.g. de, fa, pt_BR)"),
        ("pt-BR", "name the folder 'pt_BR', not 'pt-BR'"),
        ("DE", "name the folder 'de', not 'DE'"),
    ],
)
def test_a_catalogue_folder_that_is_no_language_is_refused(
    tmp_path: Path, folder: str, expected: str
) -> None:
    templates = fx.copy_templates(tmp_path / "templates")
    po = templates / "locales" / folder / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True)
    po.write_text('msgid ""\nmsgstr ""\n', encoding="utf-8")
    with pytest.raises(TemplateProblem) as raised:
        Templates(templates)
    assert str(raised.value) == f"{po.resolve()}: {expected}"
    # The shipped templates are untouched by the refused copy.
    assert "xx" not in Templates(DEFAULT_TEMPLATES_DIR).languages
