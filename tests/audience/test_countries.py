"""Per-country defaults, country names and language names."""

from __future__ import annotations

import pytest

from sender.audience.countries import (
    DEFAULTS,
    FALLBACK,
    country_code,
    defaults_for,
    supported_language,
    valid_timezone,
)
from sender.core.languages import known_language

DEMO_LOCALES = [
    "US",
    "GB",
    "IE",
    "CA",
    "AU",
    "ES",
    "MX",
    "AR",
    "CO",
    "CL",
    "PE",
    "FR",
    "BE",
    "CH",
    "SN",
    "MA",
    "DZ",
    "TN",
    "EG",
    "SA",
    "AE",
    "JO",
    "LB",
    "PK",
    "TR",
    "BI",
    "DE",
    "NL",
    "IT",
    "PT",
    "BR",
]


def test_table_covers_the_demo_and_sixty_countries() -> None:
    assert len(DEFAULTS) >= 60
    assert set(DEMO_LOCALES) <= set(DEFAULTS)


@pytest.mark.parametrize("code", sorted(DEFAULTS))
def test_every_default_is_a_real_zone_and_a_known_bare_language(code: str) -> None:
    defaults = DEFAULTS[code]
    assert valid_timezone(defaults.timezone) == defaults.timezone
    assert known_language(defaults.language) == defaults.language
    assert "_" not in defaults.language  # supporters hold bare languages; the country says where
    assert country_code(code) == code  # every key is an ISO code Babel knows


@pytest.mark.parametrize(
    ("country", "timezone", "language"),
    [
        ("MX", "America/Mexico_City", "es"),
        ("SN", "Africa/Dakar", "fr"),
        ("EG", "Africa/Cairo", "ar"),
        ("BI", "Africa/Bujumbura", "fr"),
        ("DE", "Europe/Berlin", "de"),
        ("IR", "Asia/Tehran", "fa"),
        ("CH", "Europe/Zurich", "de"),
        ("MA", "Africa/Casablanca", "fr"),  # the table's choice over CLDR's first (Arabic)
        ("us", "America/New_York", "en"),
        ("IS", "UTC", "is"),  # not in the table: CLDR's official language, UTC
    ],
)
def test_defaults(country: str, timezone: str, language: str) -> None:
    assert defaults_for(country).timezone == timezone
    assert defaults_for(country).language == language


def test_unknown_or_missing_country_falls_back_to_english_utc() -> None:
    assert defaults_for(None) == FALLBACK == defaults_for("ZZ")
    assert (FALLBACK.timezone, FALLBACK.language) == ("UTC", "en")
    assert defaults_for("AQ") == FALLBACK  # a territory with no official language


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("GB", "GB"),
        (" gb ", "GB"),
        ("United Kingdom", "GB"),
        ("Royaume-Uni", "GB"),
        ("México", "MX"),
        ("mexico", "MX"),
        ("Maroc", "MA"),
        ("مصر", "EG"),
        ("Narnia", None),
        ("", None),
    ],
)
def test_country_codes_and_names(raw: str, code: str | None) -> None:
    assert country_code(raw) == code


@pytest.mark.parametrize(
    ("raw", "language"),
    [
        ("es", "es"),
        ("ES", "es"),
        ("es-MX", "es"),
        ("fr_CA", "fr"),
        ("Français", "fr"),
        ("Spanish", "es"),
        ("العربية", "ar"),
        ("de", "de"),
        ("Deutsch", "de"),
        ("Allemand", "de"),
        ("فارسی", "fa"),
        ("Persian", "fa"),
        ("Português", "pt"),
        ("pt-BR", "pt"),
        ("zh-Hant-TW", "zh"),
        ("  kiswahili ", "sw"),
        ("klingon", None),
        ("tlh", None),
        ("xx", None),
        ("en; DROP TABLE", None),
        ("", None),
    ],
)
def test_supported_languages(raw: str, language: str | None) -> None:
    assert supported_language(raw) == language


@pytest.mark.parametrize(
    "name", ["Mars/Olympus", "../../etc/passwd", "/etc/localtime", "", "Europe"]
)
def test_invalid_timezones(name: str) -> None:
    assert valid_timezone(name) is None
