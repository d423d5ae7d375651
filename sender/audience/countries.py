"""Per-country defaults for supporters whose CRM record lacks a timezone or language.

A supporter's local send window is computed from their timezone, and the email
language from their language; CRM exports often carry only a country. Each
entry below gives the zone where most of the country's people live (for
countries spanning several zones) and the language they most likely read
campaign mail in, whatever the campaigns declare: supporters are shared by
every campaign, and each campaign picks its own language for them at planning
time (`sender.core.languages.message_language`: a Swiss supporter stored as
"de" reads French in a campaign declaring en/es/fr/ar). A country missing here
gets its most spoken official language from CLDR and UTC; no usable country
gets English and UTC.

A CRM language ("Deutsch", "فارسی", "Português", "pt-BR") is any language
Babel knows, stored as its bare language subtag ("pt"): the country says
the region.

Country names as well as ISO codes are accepted ("United Kingdom", "Maroc",
"México"), resolved through Babel's CLDR territory names rather than a list
kept here.
"""

from __future__ import annotations

import pickle
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, localedata
from babel.localedata import locale_identifiers

from sender.core.languages import (
    FALLBACK_LANGUAGE,
    country_languages,
    known_language,
    language_subtag,
    primary,
)


@dataclass(frozen=True)
class CountryDefaults:
    timezone: str
    language: str  # a bare language subtag Babel knows


FALLBACK = CountryDefaults("UTC", FALLBACK_LANGUAGE)

EN, ES, FR, AR = "en", "es", "fr", "ar"

# ISO 3166-1 alpha-2 -> (most populous timezone, the language campaign mail most likely uses).
DEFAULTS: dict[str, CountryDefaults] = {
    # English-speaking
    "US": CountryDefaults("America/New_York", EN),
    "GB": CountryDefaults("Europe/London", EN),
    "IE": CountryDefaults("Europe/Dublin", EN),
    "CA": CountryDefaults("America/Toronto", EN),  # Quebec reads French; CRM data says so
    "AU": CountryDefaults("Australia/Sydney", EN),
    "NZ": CountryDefaults("Pacific/Auckland", EN),
    "ZA": CountryDefaults("Africa/Johannesburg", EN),
    "NG": CountryDefaults("Africa/Lagos", EN),
    "GH": CountryDefaults("Africa/Accra", EN),
    "KE": CountryDefaults("Africa/Nairobi", EN),
    "UG": CountryDefaults("Africa/Kampala", EN),
    "ZW": CountryDefaults("Africa/Harare", EN),
    "IN": CountryDefaults("Asia/Kolkata", EN),
    "PK": CountryDefaults("Asia/Karachi", EN),  # English is official and usual in NGO mail
    "BD": CountryDefaults("Asia/Dhaka", EN),
    "LK": CountryDefaults("Asia/Colombo", EN),
    "NP": CountryDefaults("Asia/Kathmandu", EN),
    "PH": CountryDefaults("Asia/Manila", EN),
    "SG": CountryDefaults("Asia/Singapore", EN),
    "MY": CountryDefaults("Asia/Kuala_Lumpur", EN),
    "HK": CountryDefaults("Asia/Hong_Kong", EN),
    # Spanish-speaking
    "ES": CountryDefaults("Europe/Madrid", ES),
    "MX": CountryDefaults("America/Mexico_City", ES),
    "AR": CountryDefaults("America/Argentina/Buenos_Aires", ES),
    "CO": CountryDefaults("America/Bogota", ES),
    "CL": CountryDefaults("America/Santiago", ES),
    "PE": CountryDefaults("America/Lima", ES),
    "VE": CountryDefaults("America/Caracas", ES),
    "EC": CountryDefaults("America/Guayaquil", ES),
    "BO": CountryDefaults("America/La_Paz", ES),
    "PY": CountryDefaults("America/Asuncion", ES),
    "UY": CountryDefaults("America/Montevideo", ES),
    "GT": CountryDefaults("America/Guatemala", ES),
    "HN": CountryDefaults("America/Tegucigalpa", ES),
    "SV": CountryDefaults("America/El_Salvador", ES),
    "NI": CountryDefaults("America/Managua", ES),
    "CR": CountryDefaults("America/Costa_Rica", ES),
    "PA": CountryDefaults("America/Panama", ES),
    "DO": CountryDefaults("America/Santo_Domingo", ES),
    "CU": CountryDefaults("America/Havana", ES),
    "PR": CountryDefaults("America/Puerto_Rico", ES),
    # French-speaking
    "FR": CountryDefaults("Europe/Paris", FR),
    "BE": CountryDefaults("Europe/Brussels", "nl"),  # a campaign without Dutch: French
    "CH": CountryDefaults("Europe/Zurich", "de"),  # a campaign without German: French
    "LU": CountryDefaults("Europe/Luxembourg", FR),
    "MC": CountryDefaults("Europe/Monaco", FR),
    "SN": CountryDefaults("Africa/Dakar", FR),
    "CI": CountryDefaults("Africa/Abidjan", FR),
    "ML": CountryDefaults("Africa/Bamako", FR),
    "BF": CountryDefaults("Africa/Ouagadougou", FR),
    "NE": CountryDefaults("Africa/Niamey", FR),
    "TG": CountryDefaults("Africa/Lome", FR),
    "BJ": CountryDefaults("Africa/Porto-Novo", FR),
    "CM": CountryDefaults("Africa/Douala", FR),
    "CD": CountryDefaults("Africa/Kinshasa", FR),
    "CG": CountryDefaults("Africa/Brazzaville", FR),
    "GA": CountryDefaults("Africa/Libreville", FR),
    "BI": CountryDefaults("Africa/Bujumbura", FR),
    "RW": CountryDefaults("Africa/Kigali", FR),
    "MG": CountryDefaults("Indian/Antananarivo", FR),
    "HT": CountryDefaults("America/Port-au-Prince", FR),
    # Maghreb: French is the usual language of NGO mail; Arabic readers say so in the CRM
    "MA": CountryDefaults("Africa/Casablanca", FR),
    "DZ": CountryDefaults("Africa/Algiers", FR),
    "TN": CountryDefaults("Africa/Tunis", FR),
    # Arabic-speaking
    "EG": CountryDefaults("Africa/Cairo", AR),
    "SA": CountryDefaults("Asia/Riyadh", AR),
    "AE": CountryDefaults("Asia/Dubai", AR),
    "JO": CountryDefaults("Asia/Amman", AR),
    "LB": CountryDefaults("Asia/Beirut", AR),
    "SY": CountryDefaults("Asia/Damascus", AR),
    "IQ": CountryDefaults("Asia/Baghdad", AR),
    "KW": CountryDefaults("Asia/Kuwait", AR),
    "QA": CountryDefaults("Asia/Qatar", AR),
    "BH": CountryDefaults("Asia/Bahrain", AR),
    "OM": CountryDefaults("Asia/Muscat", AR),
    "YE": CountryDefaults("Asia/Aden", AR),
    "LY": CountryDefaults("Africa/Tripoli", AR),
    "SD": CountryDefaults("Africa/Khartoum", AR),
    "PS": CountryDefaults("Asia/Gaza", AR),
    "MR": CountryDefaults("Africa/Nouakchott", AR),
    # Other languages
    "TR": CountryDefaults("Europe/Istanbul", "tr"),
    "DE": CountryDefaults("Europe/Berlin", "de"),
    "AT": CountryDefaults("Europe/Vienna", "de"),
    "NL": CountryDefaults("Europe/Amsterdam", "nl"),
    "IT": CountryDefaults("Europe/Rome", "it"),
    "PT": CountryDefaults("Europe/Lisbon", "pt"),
    "BR": CountryDefaults("America/Sao_Paulo", "pt"),
    "SE": CountryDefaults("Europe/Stockholm", "sv"),
    "NO": CountryDefaults("Europe/Oslo", "nb"),
    "DK": CountryDefaults("Europe/Copenhagen", "da"),
    "FI": CountryDefaults("Europe/Helsinki", "fi"),
    "PL": CountryDefaults("Europe/Warsaw", "pl"),
    "CZ": CountryDefaults("Europe/Prague", "cs"),
    "GR": CountryDefaults("Europe/Athens", "el"),
    "HU": CountryDefaults("Europe/Budapest", "hu"),
    "RO": CountryDefaults("Europe/Bucharest", "ro"),
    "UA": CountryDefaults("Europe/Kyiv", "uk"),
    "RU": CountryDefaults("Europe/Moscow", "ru"),
    "IL": CountryDefaults("Asia/Jerusalem", "he"),
    "IR": CountryDefaults("Asia/Tehran", "fa"),
    "CN": CountryDefaults("Asia/Shanghai", "zh"),
    "JP": CountryDefaults("Asia/Tokyo", "ja"),
    "KR": CountryDefaults("Asia/Seoul", "ko"),
    "TW": CountryDefaults("Asia/Taipei", "zh"),
    "TH": CountryDefaults("Asia/Bangkok", "th"),
    "VN": CountryDefaults("Asia/Ho_Chi_Minh", "vi"),
    "ID": CountryDefaults("Asia/Jakarta", "id"),
    "ET": CountryDefaults("Africa/Addis_Ababa", "am"),
    "TZ": CountryDefaults("Africa/Dar_es_Salaam", "sw"),
    "MZ": CountryDefaults("Africa/Maputo", "pt"),
    "AO": CountryDefaults("Africa/Luanda", "pt"),
}

NAME_LOCALES = ("en", "es", "fr", "ar")


def _fold(text: str) -> str:
    """Case- and accent-insensitive key: 'México' and 'mexico' meet."""
    decomposed = unicodedata.normalize("NFKD", text.strip().casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@lru_cache(maxsize=1)
def _territories() -> dict[str, str]:
    """Folded CLDR country names and codes -> ISO alpha-2 code."""
    names: dict[str, str] = {}
    for locale_name in NAME_LOCALES:
        for code, name in Locale(locale_name).territories.items():
            if len(code) == 2 and code.isalpha():
                names.setdefault(_fold(name), code)
                names[_fold(code)] = code
    return names


@lru_cache(maxsize=4096)
def country_code(raw: str) -> str | None:
    """ISO alpha-2 code for a code or country name in en/es/fr/ar, else None."""
    if not raw.strip():
        return None
    return _territories().get(_fold(raw))


@lru_cache(maxsize=512)
def defaults_for(country: str | None) -> CountryDefaults:
    """The country's default timezone and language; English/UTC when unknown.

    A country missing from the table reads its most spoken official language
    (CLDR) in UTC.
    """
    if country is None:
        return FALLBACK
    found = DEFAULTS.get(country.upper())
    if found is not None:
        return found
    spoken = [code for code in country_languages(country) if known_language(code)]
    return CountryDefaults("UTC", primary(spoken[0])) if spoken else FALLBACK


@lru_cache(maxsize=1024)
def valid_timezone(name: str) -> str | None:
    """The IANA zone name if zoneinfo knows it, else None."""
    name = name.strip()
    if not name or name.startswith(("/", ".")) or ".." in name:
        return None  # zoneinfo would treat these as file paths
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None
    return name


@lru_cache(maxsize=1)
def _language_codes() -> tuple[str, ...]:
    """Every bare language Babel has locale data for."""
    return tuple(sorted({primary(identifier) for identifier in locale_identifiers()}))


@lru_cache(maxsize=1)
def _language_names() -> dict[str, str]:
    """Languages by code and by their name in the name locales: "German", "Allemand"."""
    names: dict[str, str] = {}
    for display in NAME_LOCALES:
        shown = Locale(display).languages
        for code in _language_codes():
            if code in shown:
                names.setdefault(_fold(shown[code]), code)
    for code in _language_codes():
        names[code.casefold()] = code
    return names


@lru_cache(maxsize=1)
def _own_names() -> dict[str, str]:
    """Languages by their own name ("Deutsch", "فارسی", "Português").

    Read once, and only when a CRM value is neither a code nor a name in the
    name locales. Each name is one entry of its locale's data file: opening
    300 locales through `Locale` would keep ~130 MB of merged CLDR data for
    the whole import, so the files are read raw (Babel's own pickles) and
    dropped.
    """
    names: dict[str, str] = {}
    for code in _language_codes():
        path = Path(localedata._dirname) / f"{code}.dat"
        try:
            with path.open("rb") as handle:
                data = pickle.load(handle)  # noqa: S301 - Babel's own installed data
        except OSError:
            continue
        own = data.get("languages", {}).get(code) if isinstance(data, dict) else None
        if isinstance(own, str) and own:
            names.setdefault(_fold(own), code)
    return names


@lru_cache(maxsize=1024)
def supported_language(raw: str) -> str | None:
    """The language subtag of a code ('es', 'es-MX', 'fr_CA', 'pt-BR') or a name
    ('Español', 'Deutsch', 'فارسی') Babel knows, else None."""
    folded = _fold(raw)
    if not folded:
        return None
    found = _language_names().get(folded)
    if found is not None:
        return found
    code = language_subtag(raw)
    return code if code is not None else _own_names().get(folded)
