"""Per-country defaults for supporters whose CRM record lacks a timezone or language.

A supporter's local send window is computed from their timezone, and the email
language from their language; CRM exports often carry only a country. Each
entry below gives the zone where most of the country's people live (for
countries spanning several zones) and the campaign language they most likely
read among those the templates exist in (en, es, fr, ar). Where none of the
country's main languages is supported we fall back to English, and a supporter
with no usable country gets English and UTC.

Country names as well as ISO codes are accepted ("United Kingdom", "Maroc",
"México"), resolved through Babel's CLDR territory names rather than a list
kept here.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError

from sender.core.vocabulary import Language


@dataclass(frozen=True)
class CountryDefaults:
    timezone: str
    language: Language


FALLBACK = CountryDefaults("UTC", Language.EN)

EN, ES, FR, AR = Language.EN, Language.ES, Language.FR, Language.AR

# ISO 3166-1 alpha-2 -> (most populous timezone, most likely supported language).
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
    "PK": CountryDefaults("Asia/Karachi", EN),  # Urdu unsupported; English is official
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
    "BE": CountryDefaults("Europe/Brussels", FR),  # Dutch unsupported; French is official
    "CH": CountryDefaults("Europe/Zurich", FR),  # German unsupported; French is official
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
    # Languages the templates do not carry: English
    "TR": CountryDefaults("Europe/Istanbul", EN),
    "DE": CountryDefaults("Europe/Berlin", EN),
    "AT": CountryDefaults("Europe/Vienna", EN),
    "NL": CountryDefaults("Europe/Amsterdam", EN),
    "IT": CountryDefaults("Europe/Rome", EN),
    "PT": CountryDefaults("Europe/Lisbon", EN),
    "BR": CountryDefaults("America/Sao_Paulo", EN),
    "SE": CountryDefaults("Europe/Stockholm", EN),
    "NO": CountryDefaults("Europe/Oslo", EN),
    "DK": CountryDefaults("Europe/Copenhagen", EN),
    "FI": CountryDefaults("Europe/Helsinki", EN),
    "PL": CountryDefaults("Europe/Warsaw", EN),
    "CZ": CountryDefaults("Europe/Prague", EN),
    "GR": CountryDefaults("Europe/Athens", EN),
    "HU": CountryDefaults("Europe/Budapest", EN),
    "RO": CountryDefaults("Europe/Bucharest", EN),
    "UA": CountryDefaults("Europe/Kyiv", EN),
    "RU": CountryDefaults("Europe/Moscow", EN),
    "IL": CountryDefaults("Asia/Jerusalem", EN),
    "IR": CountryDefaults("Asia/Tehran", EN),
    "CN": CountryDefaults("Asia/Shanghai", EN),
    "JP": CountryDefaults("Asia/Tokyo", EN),
    "KR": CountryDefaults("Asia/Seoul", EN),
    "TW": CountryDefaults("Asia/Taipei", EN),
    "TH": CountryDefaults("Asia/Bangkok", EN),
    "VN": CountryDefaults("Asia/Ho_Chi_Minh", EN),
    "ID": CountryDefaults("Asia/Jakarta", EN),
    "ET": CountryDefaults("Africa/Addis_Ababa", EN),
    "TZ": CountryDefaults("Africa/Dar_es_Salaam", EN),
    "MZ": CountryDefaults("Africa/Maputo", EN),
    "AO": CountryDefaults("Africa/Luanda", EN),
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


def defaults_for(country: str | None) -> CountryDefaults:
    """The country's default timezone and language; English/UTC when unknown."""
    if country is None:
        return FALLBACK
    return DEFAULTS.get(country.upper(), FALLBACK)


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
def _language_names() -> dict[str, Language]:
    """Supported languages by code and by their name in every supported language."""
    names: dict[str, Language] = {}
    for language in Language:
        names[language.value] = language
        for display in NAME_LOCALES:
            name = Locale(display).languages.get(language.value)
            if name:
                names[_fold(name)] = language
    return names


@lru_cache(maxsize=1024)
def supported_language(raw: str) -> Language | None:
    """A supported language from a code ('es', 'es-MX', 'fr_CA') or a name ('Español')."""
    folded = _fold(raw)
    if not folded:
        return None
    found = _language_names().get(folded)
    if found is not None:
        return found
    try:
        primary = Locale.parse(raw.strip().replace("-", "_")).language
    except (ValueError, UnknownLocaleError):
        return None
    return _language_names().get(primary)
