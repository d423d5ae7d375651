"""The one reader of a case's text, and its one fallback rule."""

from __future__ import annotations

import pytest
import render_fixtures as fx

from sender.campaign.cases import parse_cases
from sender.core.errors import TemplateProblem
from sender.render.case_text import CASE_FIELDS, CaseText, case_text


def test_the_language_asked_for_is_read_when_the_case_has_it() -> None:
    text, fallbacks = case_text(fx.TEXTS, "fr", "ana-rios")
    assert text.title == "Libérez la défenseure de la rivière" and fallbacks == ()
    assert text.authority_address == ("Fiscalía General, Calle 1, Ciudad",)


@pytest.mark.parametrize("content", [{"en": fx.TEXTS_EN}, {"en": fx.TEXTS_EN, "es": {}}])
def test_a_language_the_case_lacks_falls_back_to_english_and_says_so(
    content: dict[str, dict[str, str]],
) -> None:
    text, fallbacks = case_text(content, "es", "en-only")
    assert text.title == fx.TEXTS_EN["title"]
    assert fallbacks == ("case en-only has no 'es' content; English used",)


def test_address_lines_are_stripped_and_blank_ones_dropped() -> None:
    content = {"en": {**fx.TEXTS_EN, "authority_address": [" Palace ", "", "Rabat  "]}}
    assert case_text(content, "en", "s")[0].authority_address == ("Palace", "Rabat")


@pytest.mark.parametrize("missing", CASE_FIELDS)
def test_a_language_lacking_a_field_is_refused_not_mixed(missing: str) -> None:
    texts = {**fx.TEXTS, "fr": {k: v for k, v in fx.TEXTS["fr"].items() if k != missing}}
    with pytest.raises(TemplateProblem, match=rf"case s: content\.fr lacks field '{missing}'"):
        case_text(texts, "fr", "s")


@pytest.mark.parametrize("content", [None, {}, {"fr": fx.TEXTS["fr"]}])
def test_a_case_without_english_to_fall_back_on_is_refused(
    content: dict[str, dict[str, str]] | None,
) -> None:
    with pytest.raises(TemplateProblem, match="case s: no content in 'es' nor in English"):
        case_text(content, "es", "s")


def test_what_the_cases_file_stores_reads_back_the_same() -> None:
    source = """
cases:
  - slug: s
    person: P
    country: TR
    status: active
    content:
      en:
        title: T
        summary: S
        ask: A
        authority: The Minister
        authority_address: [Ministry, Ankara]
        letter: L
"""
    (definition,) = parse_cases(source).cases
    stored = definition.row_values()["content"]
    assert case_text(stored, "en", "s") == (definition.content["en"], ())
    assert isinstance(definition.content["en"], CaseText)
