"""Languages as data: codes Babel knows, their direction, and the one rule choosing a
message's language (and its unrolled form, which the planner's SQL is built from)."""

from __future__ import annotations

import pytest

from sender.core.errors import InvalidInput
from sender.core.languages import (
    FALLBACK_LANGUAGE,
    country_languages,
    direction,
    known_language,
    language_code,
    language_codes,
    language_rule,
    language_subtag,
    message_language,
    territories,
)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("de", "de"),
        ("DE", "de"),
        (" fa ", "fa"),
        ("pt-BR", "pt_BR"),
        ("pt_br", "pt_BR"),
        ("PT-br", "pt_BR"),
        ("zh-Hant", "zh_Hant"),
        ("ckb", "ckb"),
        ("xx", None),
        ("klingon", None),
        ("", None),
        ("../en", None),
        ("en;drop", None),
        ("en/../../etc", None),
        ("zh-Hant-TW", None),  # longer than the language columns hold
    ],
)
def test_codes_in_their_normal_form(raw: str, code: str | None) -> None:
    assert known_language(raw) == code


def test_a_bad_code_names_where_it_was() -> None:
    with pytest.raises(InvalidInput) as raised:
        language_code("xx", "campaign.yaml: languages[2]")
    assert str(raised.value).startswith("campaign.yaml: languages[2]: unknown language 'xx'")
    with pytest.raises(InvalidInput, match=r"languages\[0\]: a language code must be text"):
        language_code(7, "campaign.yaml: languages[0]")
    with pytest.raises(InvalidInput, match=r"'zh-Hant-TW' is longer than 8 .* e.g. 'zh'"):
        language_code("zh-Hant-TW", "plan.yaml")


def test_a_list_of_codes_refuses_one_language_twice() -> None:
    assert language_codes(["en", "pt-BR", "fa"], "languages") == ("en", "pt_BR", "fa")
    with pytest.raises(InvalidInput, match="languages: language 'de' is listed twice"):
        language_codes(["de", "DE"], "languages")


def test_the_bare_language_of_any_locale() -> None:
    assert [language_subtag(raw) for raw in ("zh-Hant-TW", "pt_BR", "fa", "nope")] == [
        "zh",
        "pt",
        "fa",
        None,
    ]


@pytest.mark.parametrize("code", ["ar", "fa", "he", "ur", "ckb", "fa_AF"])
def test_right_to_left_comes_from_the_locale(code: str) -> None:
    assert direction(code) == "rtl"


@pytest.mark.parametrize("code", ["en", "de", "es", "fr", "pt_BR", "zh_Hant", "unknown"])
def test_left_to_right_otherwise(code: str) -> None:
    assert direction(code) == "ltr"


def test_a_countrys_languages_come_from_cldr() -> None:
    assert country_languages("ch")[:1] == ("de",) and "fr" in country_languages("CH")
    assert country_languages("IR") == ("fa",)
    assert country_languages(None) == () == country_languages("AQ")


FOUR = ("en", "es", "fr", "ar")


@pytest.mark.parametrize(
    ("supporter", "country", "declared", "available", "expected"),
    [
        # the supporter's own language, declared and available
        ("fr", "US", FOUR, FOUR, "fr"),
        # not declared: a declared language of their country (Switzerland: de, fr, it)
        ("de", "CH", FOUR, FOUR, "fr"),
        # declared but the case has no text in it: their country's language again
        ("fr", "CA", FOUR, {"en", "es", "ar"}, "en"),
        # nothing of theirs nor their country's: the campaign's first language
        ("de", "DE", FOUR, FOUR, "en"),
        ("de", "DE", ("fa", "en"), {"fa", "en"}, "fa"),
        # the first language not available either: English, the last resort
        ("de", "DE", ("fa", "es", "en"), {"es", "en"}, "en"),
        # ... unless the case has no English: a language it speaks
        ("ja", "JP", ("fa", "de"), {"de"}, "de"),
        ("ja", "JP", ("fa", "de"), set(), FALLBACK_LANGUAGE),
        # a German campaign: German supporters read German, Iranians Persian
        ("de", "AT", ("de", "fa"), {"de", "fa"}, "de"),
        ("en", "IR", ("de", "fa"), {"de", "fa"}, "fa"),
        (None, "IR", ("de", "fa"), {"de", "fa"}, "fa"),
        (None, None, ("de", "fa"), {"de", "fa"}, "de"),
        # regional codes: the country picks the region, else the first form declared
        ("pt", "BR", ("en", "pt_PT", "pt_BR"), {"en", "pt_PT", "pt_BR"}, "pt_BR"),
        ("pt", "MZ", ("en", "pt_PT", "pt_BR"), {"en", "pt_PT", "pt_BR"}, "pt_PT"),
        ("es", "BR", ("en", "pt_BR"), {"en", "pt_BR"}, "pt_BR"),
        ("zh", "TW", ("en", "zh_Hant"), {"en", "zh_Hant"}, "zh_Hant"),
        ("pt_BR", "BR", ("en", "pt"), {"en", "pt"}, "pt"),
    ],
)
def test_message_language(
    supporter: str | None,
    country: str | None,
    declared: tuple[str, ...],
    available: set[str],
    expected: str,
) -> None:
    assert message_language(supporter, country, declared, available) == expected


RULES = [
    (FOUR, FOUR),
    (FOUR, {"en", "es"}),
    (("de", "fa"), {"de", "fa"}),
    (("de", "fa", "en"), {"de", "en"}),
    (("en", "pt_PT", "pt_BR", "fr_CA"), {"en", "pt_PT", "pt_BR", "fr_CA"}),
    (("fa",), set()),
    ((), {"en"}),
]
LANGUAGES = ["en", "es", "fr", "ar", "de", "fa", "pt", "zh", "nl", "it", "ru", "sw", "ja"]


@pytest.mark.parametrize(("declared", "available"), RULES)
def test_the_unrolled_rule_agrees_with_the_rule_everywhere(
    declared: tuple[str, ...], available: set[str]
) -> None:
    rule = language_rule(declared, available)
    for country in (None, "XK", *territories()):
        for language in LANGUAGES:
            assert rule.choose(language, country) == message_language(
                language, country, declared, available
            ), (language, country)


def test_the_unrolled_rule_is_small() -> None:
    rule = language_rule(FOUR, FOUR)
    assert rule.exact == FOUR and rule.fallback == "en" and rule.by_language == {}
    # Only countries whose answer differs from English are listed.
    assert rule.by_country["MA"] == "ar" and rule.by_country["CH"] == "fr"
    assert "US" not in rule.by_country and "DE" not in rule.by_country
