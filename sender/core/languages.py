"""Languages are data: any locale Babel (CLDR) knows, named by one normal form.

A campaign declares its languages (`campaigns.languages`); a case has text in
some of them; a supporter has one language of their own, shared by every
campaign. Nothing here lists languages: Babel says which codes exist, which
way their script runs and which languages a country speaks.

Normal form: Babel's identifier with underscores, as gettext names its
catalogue folders (`templates/locales/pt_BR/`): "pt-BR", "pt_br" and "PT_BR"
are all "pt_BR"; "de", "fa". A supporter's language is a bare language
subtag ("pt", not "pt_BR"): the country says the region.

`message_language` is the one rule choosing the language of a message;
`language_rule` is the same rule unrolled into a few lookups for a planner
that picks a million messages' languages in one SQL statement.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from babel import Locale, UnknownLocaleError
from babel.languages import get_official_languages

from sender.core.errors import InvalidInput

FALLBACK_LANGUAGE = "en"  # the last resort of every choice, and the templates' source language
# Length of every `language` column (supporters, messages, batches, reports).
MAX_CODE_LENGTH = 8

Direction = Literal["ltr", "rtl"]


@lru_cache(maxsize=1024)
def _parsed(raw: str) -> Locale | None:
    text = raw.strip().replace("-", "_")
    if not text or not all(part.isalnum() and part.isascii() for part in text.split("_")):
        return None
    try:
        return Locale.parse(text)
    except (ValueError, UnknownLocaleError):
        return None


def known_language(raw: str) -> str | None:
    """The normal form of a language code Babel knows ("pt-BR" -> "pt_BR"), else None."""
    locale = _parsed(raw)
    if locale is None:
        return None
    code = str(locale)
    return code if len(code) <= MAX_CODE_LENGTH else None


def language_subtag(raw: str) -> str | None:
    """The bare language of any locale code Babel knows ("zh-Hant-TW" -> "zh"), else None."""
    locale = _parsed(raw)
    return locale.language if locale is not None else None


def language_code(raw: object, where: str) -> str:
    """The normal form of `raw`, or InvalidInput naming `where` (file and field)."""
    if not isinstance(raw, str):
        raise InvalidInput(f"{where}: a language code must be text, got {raw!r}")
    code = known_language(raw)
    if code is None:
        locale = _parsed(raw)
        if locale is not None:
            raise InvalidInput(
                f"{where}: language {raw!r} is longer than {MAX_CODE_LENGTH} characters"
                f" ({locale}); use the language alone, e.g. {locale.language!r}"
            )
        raise InvalidInput(
            f"{where}: unknown language {raw!r} (a code Babel knows, e.g. 'de', 'fa', 'pt_BR')"
        )
    return code


def language_codes(raw: Sequence[object], where: str) -> tuple[str, ...]:
    """Several codes in normal form; two spellings of one language are refused."""
    codes: list[str] = []
    for index, item in enumerate(raw):
        code = language_code(item, f"{where}[{index}]")
        if code in codes:
            raise InvalidInput(f"{where}: language {code!r} is listed twice")
        codes.append(code)
    return tuple(codes)


def primary(code: str) -> str:
    """The language subtag: "pt_BR" -> "pt", "zh_Hant" -> "zh"."""
    return code.split("_", 1)[0]


@lru_cache(maxsize=256)
def direction(code: str) -> Direction:
    """Which way the language's script runs, from CLDR ("fa", "ar", "he": rtl)."""
    locale = _parsed(code)
    if locale is not None and locale.character_order == "right-to-left":
        return "rtl"
    return "ltr"


@lru_cache(maxsize=512)
def country_languages(country: str | None) -> tuple[str, ...]:
    """The country's official languages, official in law or in fact, most spoken first."""
    if not country:
        return ()
    return tuple(get_official_languages(country.upper(), de_facto=True))


def _pick(language: str, country: str | None, usable: Sequence[str]) -> str | None:
    """The usable code for `language`: itself, its form for the country, or a form of it."""
    if language in usable:
        return language
    if country and f"{language}_{country.upper()}" in usable:
        return f"{language}_{country.upper()}"
    base = primary(language)
    same = [code for code in usable if primary(code) == base]
    return same[0] if same else None


def message_language(
    supporter_language: str | None,
    country: str | None,
    declared: Sequence[str],
    available: Collection[str],
) -> str:
    """The language of one message; the one rule.

    `declared`: the campaign's languages, its fallback first; `available`: the
    languages the case (and wave) have text in. The supporter's own language
    if usable (declared and available), else a usable language of their
    country, else the campaign's first language if available, else English
    (or, when the case has no English text, the first usable language).
    """
    usable = [code for code in declared if code in available]
    if supporter_language:
        found = _pick(supporter_language, country, usable)
        if found is not None:
            return found
    for spoken in country_languages(country):
        found = _pick(spoken, country, usable)
        if found is not None:
            return found
    if declared and declared[0] in available:
        return declared[0]
    if FALLBACK_LANGUAGE in available or not usable:
        return FALLBACK_LANGUAGE
    return usable[0]  # English would have no case text here: any language the case speaks


@lru_cache(maxsize=1)
def territories() -> tuple[str, ...]:
    """Every two-letter country code CLDR names."""
    codes = (str(code) for code in Locale("en").territories)
    return tuple(sorted(code for code in codes if len(code) == 2 and code.isalpha()))


@dataclass(frozen=True)
class LanguageRule:
    """`message_language` for one (declared, available) pair, as lookups a planner can use.

    For a supporter language L and country C the rule's answer is: L itself when
    L is in `exact`; else `by_language[L][C]`, or `by_language[L][None]` when C
    is not listed; else `by_country[C]`; else `fallback`. Computed by running
    `message_language` itself over every country, so the two cannot disagree.
    """

    exact: tuple[str, ...]
    by_language: Mapping[str, Mapping[str | None, str]]
    by_country: Mapping[str, str]
    fallback: str

    def choose(self, supporter_language: str | None, country: str | None) -> str:
        """The answer as the planner's SQL computes it (tests hold it to the rule)."""
        country = country.upper() if country else None
        if supporter_language is not None:
            if supporter_language in self.exact:
                return supporter_language
            if supporter_language in self.by_language:
                choices = self.by_language[supporter_language]
                return choices.get(country, choices[None])
        return self.by_country.get(country or "", self.fallback)


def language_rule(declared: Sequence[str], available: Collection[str]) -> LanguageRule:
    """The rule for one campaign and one case's languages, unrolled."""
    declared, available = tuple(declared), frozenset(available)
    usable = tuple(code for code in declared if code in available)
    # A language nobody can read here: the answer depends on the country alone.
    stranger = "\x00"
    fallback = message_language(stranger, None, declared, available)
    by_country = {
        country: chosen
        for country in territories()
        if (chosen := message_language(stranger, country, declared, available)) != fallback
    }
    # Supporters hold bare language subtags: those of usable regional codes ("pt"
    # for "pt_BR") are answered per country.
    by_language: dict[str, dict[str | None, str]] = {}
    for language in sorted({primary(code) for code in usable} - set(usable)):
        default = message_language(language, None, declared, available)
        choices: dict[str | None, str] = {None: default}
        for country in territories():
            chosen = message_language(language, country, declared, available)
            if chosen != default:
                choices[country] = chosen
        by_language[language] = choices
    return LanguageRule(usable, by_language, by_country, fallback)
