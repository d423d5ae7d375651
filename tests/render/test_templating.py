"""The Jinja2 environment: strict undefined, autoescape, the recipient-field guard,
right-to-left languages and the translation catalogues."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import render_fixtures as fx

from sender.core.errors import TemplateProblem
from sender.render.templating import (
    DEFAULT_TEMPLATES_DIR,
    SOURCE_LANGUAGE,
    Problem,
    Templates,
    line_breaks,
    load_catalogues,
)

PO_HEADER = """msgid ""
msgstr ""
"Language: {language}\\n"
"Content-Type: text/plain; charset=utf-8\\n"
"Plural-Forms: nplurals=2; plural=(n != 1);\\n"

"""


def make_templates(
    root: Path, files: dict[str, str], catalogues: dict[str, dict[str, str]] | None = None
) -> Templates:
    """A templates folder holding `files`, with a `.po` catalogue per language."""
    root.mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        (root / name).write_text(source, encoding="utf-8")
    for language, strings in (catalogues or {}).items():
        po = root / "locales" / language / "LC_MESSAGES" / "messages.po"
        po.parent.mkdir(parents=True)
        entries = "".join(f'msgid "{k}"\nmsgstr "{v}"\n\n' for k, v in strings.items())
        po.write_text(PO_HEADER.format(language=language) + entries, encoding="utf-8")
    return Templates(root)


# --- strict undefined ----------------------------------------------------------


def test_an_undefined_value_names_the_template_and_line(tmp_path: Path) -> None:
    templates = make_templates(tmp_path, {"note.txt": "Hello\n{{ case.deadline }}\n"})
    with pytest.raises(TemplateProblem, match=r"note\.txt, line 2: undefined value: .*deadline"):
        templates.render("en", "note.txt", {"case": {}})


def test_an_undefined_value_in_a_parent_names_the_parent(tmp_path: Path) -> None:
    templates = make_templates(
        tmp_path,
        {
            "base.html": "<p>{{ brand.postcode }}</p>\n{% block body %}{% endblock %}\n",
            "page.html": '{% extends "base.html" %}{% block body %}hi{% endblock %}',
        },
    )
    with pytest.raises(TemplateProblem, match=r"base\.html, line 1: undefined value: .*postcode"):
        templates.render("en", "page.html", {"brand": {}})


def test_a_syntax_error_names_the_template_and_line(tmp_path: Path) -> None:
    templates = make_templates(tmp_path, {"a.txt": "one\n{% if x %}\n", "b.txt": "fine\n"})
    with pytest.raises(TemplateProblem, match=r"a\.txt, line 2: .*"):
        templates.render("en", "a.txt", {"x": 1})
    assert templates.render("en", "b.txt", {}).text == "fine\n"  # the others still render


def test_a_missing_block_is_named(tmp_path: Path) -> None:
    templates = make_templates(tmp_path, {"a.txt": "{% block subject %}s{% endblock %}\n"})
    assert templates.render("en", "a.txt", {}, block="subject").text == "s"
    with pytest.raises(TemplateProblem, match=r"a\.txt: has no block 'preheader'"):
        templates.render("en", "a.txt", {}, block="preheader")


# --- autoescape ----------------------------------------------------------------


def test_html_templates_escape_values_and_text_templates_do_not(tmp_path: Path) -> None:
    templates = make_templates(tmp_path, {"a.html": "{{ v }}", "a.txt": "{{ v }}"})
    context = {"v": "<b>Tom & Jerry</b>"}
    assert templates.render("en", "a.html", context).text == "&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;"
    assert templates.render("en", "a.txt", context).text == "<b>Tom & Jerry</b>"


def test_line_breaks_escapes_each_line_and_keeps_the_breaks() -> None:
    assert line_breaks("Dear <you>,\nplease") == "Dear &lt;you&gt;,<br>\nplease"


# --- the recipient-field guard ---------------------------------------------------


@pytest.mark.parametrize(
    ("snippet", "why"),
    [
        ("{% if recipient.first_name %}x{% endif %}", "an if condition"),
        ("{% for c in recipient.full_name %}{{ c }}{% endfor %}", "a for loop"),
        ("{{ recipient.first_name|upper }}", "a filter"),
        ("{{ 'a' if recipient.reference == 'x' else 'b' }}", "an inline if condition"),
        ("{% set n = recipient.first_name %}", "an assignment"),
        ("{{ recipient.first_name is defined }}", "a test"),
        ("{{ recipient.first_name + '!' }}", "arithmetic"),
    ],
)
def test_a_recipient_field_in_control_flow_is_refused(
    tmp_path: Path, snippet: str, why: str
) -> None:
    templates = make_templates(tmp_path, {"a.html": f"<p>\n{snippet}\n", "b.html": "ok"})
    (problem,) = templates.problems("a.html")
    assert problem.template == "a.html" and problem.line == 2
    assert re.fullmatch(
        rf"recipient\.\w+ is used in {why}; recipient fields are substitution tags"
        " and may only be printed",
        problem.message,
    )
    with pytest.raises(TemplateProblem, match=rf"a\.html, line 2: recipient\.\w+ is used in {why}"):
        templates.render("en", "a.html", {"recipient": {}})
    assert templates.render("en", "b.html", {}).text == "ok"


def test_printing_a_recipient_field_even_inside_a_loop_is_allowed(tmp_path: Path) -> None:
    source = "{% for i in [1, 2] %}<p>{{ recipient.first_name }}</p>{% endfor %}"
    templates = make_templates(tmp_path, {"a.html": source})
    assert templates.problems("a.html") == ()
    rendered = templates.render("en", "a.html", {"recipient": {"first_name": "-first_name-"}})
    assert rendered.text == "<p>-first_name-</p><p>-first_name-</p>"


def test_an_unknown_or_bare_recipient_is_refused(tmp_path: Path) -> None:
    templates = make_templates(tmp_path, {"a.txt": "{{ recipient.password }}\n{{ recipient }}\n"})
    assert templates.problems("a.txt") == (
        Problem("a.txt", 1, "unknown recipient field 'password'"),
        Problem("a.txt", 2, "use recipient.<field>, not recipient"),
    )


def test_the_guard_follows_extends_and_includes(tmp_path: Path) -> None:
    templates = make_templates(
        tmp_path,
        {
            "base.html": "{% block b %}{% endblock %}{% include '_part.html' %}",
            "_part.html": "{% if recipient.first_name %}x{% endif %}",
            "page.html": '{% extends "base.html" %}{% block b %}hi{% endblock %}',
        },
    )
    assert [(p.template, p.line) for p in templates.problems("page.html")] == [("_part.html", 1)]


# --- right-to-left languages and catalogues -------------------------------------


def test_languages_are_english_and_every_catalogue(tmp_path: Path) -> None:
    templates = make_templates(tmp_path, {"a.txt": ""}, {"fr": {}, "ar": {}})
    assert templates.languages == ("ar", SOURCE_LANGUAGE, "fr")
    assert Templates(DEFAULT_TEMPLATES_DIR).languages == ("ar", "de", "en", "es", "fa", "fr")


def test_translations_come_from_the_catalogue_and_misses_are_noted(tmp_path: Path) -> None:
    templates = make_templates(
        tmp_path,
        {"a.txt": "{{ _('Hello') }} / {{ _('Goodbye') }}"},
        {"ar": {"Hello": "مرحبا"}},
    )
    arabic = templates.render("ar", "a.txt", {})
    assert arabic.text == "مرحبا / Goodbye" and arabic.missing == ("Goodbye",)
    english = templates.render("en", "a.txt", {})
    assert english.text == "Hello / Goodbye" and english.missing == ()  # English is the source
    assert templates.translate("ar", "Hello").text == "مرحبا"
    assert templates.translate("ar", "Goodbye").missing == ("Goodbye",)


def test_untranslated_and_fuzzy_entries_fall_back_to_english(tmp_path: Path) -> None:
    po = tmp_path / "locales" / "es" / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True)
    po.write_text(
        PO_HEADER.format(language="es")
        + 'msgid "Yes"\nmsgstr "Sí"\n\n'
        + 'msgid "No"\nmsgstr ""\n\n'
        + '#, fuzzy\nmsgid "Maybe"\nmsgstr "Quizá"\n',
        encoding="utf-8",
    )
    assert load_catalogues(tmp_path / "locales") == {"es": {"Yes": "Sí"}}


def test_a_broken_catalogue_is_named(tmp_path: Path) -> None:
    templates_dir = fx.copy_templates(tmp_path / "templates")
    po = templates_dir / "locales/fr/LC_MESSAGES/messages.po"
    po.write_text(po.read_text().replace('msgstr "', 'msgstr "%(oops)s ', 3))
    with pytest.raises(TemplateProblem, match=r"messages\.po, line \d+: "):
        Templates(templates_dir)


def test_a_missing_templates_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(TemplateProblem, match="does not exist"):
        Templates(tmp_path / "nowhere")
