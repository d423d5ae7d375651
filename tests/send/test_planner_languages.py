"""The planner picks each message's language in SQL exactly as the one rule says
(sender.core.languages.message_language), for any language a campaign declares."""

from __future__ import annotations

from itertools import product

from campaign_fixtures import declare_2020_languages
from sending_fixtures import CASE_TEXT, DEC1, add_case, add_supporters, add_wave
from sqlalchemy import Engine, select

from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.languages import message_language
from sender.core.models import Message, Supporter, Wave
from sender.send.planner import plan_wave

SETTINGS = Settings(secret_key="test")
TEXT = CASE_TEXT["en"]


def _declare(engine: Engine, languages: list[str]) -> None:
    declare_2020_languages(engine, languages)


def _subjects(engine: Engine, wave_id: int, languages: list[str]) -> None:
    with session_scope(engine) as session:
        wave = session.get(Wave, wave_id)
        assert wave is not None
        wave.subjects = {language: f"Subject {language}" for language in languages}


def _planned(engine: Engine) -> dict[str, tuple[str, str | None, int, str]]:
    """email -> (supporter language, country, case id, message language)."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(Supporter.email, Supporter.language, Supporter.country, Message.case_id,
                   Message.language)
            .join(Message, Message.supporter_id == Supporter.id)
        )  # fmt: skip
        return {str(e): (lang, country, case, chosen) for e, lang, country, case, chosen in rows}


LANGUAGES = ["de", "fa", "en", "fr", "pt", "es", "ar", "ja", "zh"]
COUNTRIES = [None, "DE", "AT", "CH", "IR", "AF", "BR", "PT", "MZ", "FR", "US", "JP", "MA", "TW"]


def test_sql_and_the_rule_agree_for_every_language_country_and_case(any_engine: Engine) -> None:
    declared = ["de", "fa", "en", "pt_BR"]
    _declare(any_engine, declared)
    everything = dict.fromkeys(declared, TEXT)
    full = add_case(any_engine, SETTINGS, "full", everything)
    german = add_case(any_engine, SETTINGS, "german", {"de": TEXT, "en": TEXT})
    persian = add_case(any_engine, SETTINGS, "persian", {"fa": TEXT, "pt_BR": TEXT})
    cases = {full: set(everything), german: {"de", "en"}, persian: {"fa", "pt_BR"}}
    for (language, country), case_id in product(product(LANGUAGES, COUNTRIES), cases):
        email = f"{language}-{country}-{case_id}@example.org"
        add_supporters(any_engine, [case_id], [email], language=language, country=country)
    wave = add_wave(any_engine, SETTINGS)
    # The wave has no Persian subject: Persian is not available in it.
    _subjects(any_engine, wave, ["de", "en", "pt_BR"])
    result = plan_wave(any_engine, SETTINGS, wave, DEC1)
    planned = _planned(any_engine)
    assert result is not None and result.messages == len(planned) == 9 * 14 * 3
    wrong = {
        email: (chosen, expected)
        for email, (language, country, case_id, chosen) in planned.items()
        if chosen
        != (expected := message_language(language, country, declared, cases[case_id] - {"fa"}))
    }
    assert wrong == {}
    # Spot checks of what that means.
    assert planned[f"fa-IR-{full}@example.org"][3] == "de"  # no Persian subject: first language
    assert planned[f"pt-BR-{full}@example.org"][3] == "pt_BR"
    assert planned[f"fr-FR-{german}@example.org"][3] == "de"
    assert planned[f"ja-JP-{persian}@example.org"][3] == "pt_BR"  # the case has no English


def test_an_undeclared_language_gets_the_campaigns_fallback_and_the_supporter_is_unchanged(
    any_engine: Engine,
) -> None:
    _declare(any_engine, ["de", "fa"])
    case = add_case(any_engine, SETTINGS, "zwei", {"de": TEXT, "fa": TEXT})
    add_supporters(any_engine, [case], ["fr@example.org"], language="fr", country="FR")
    add_supporters(any_engine, [case], ["ir@example.org"], language="en", country="IR")
    add_supporters(any_engine, [case], ["de@example.org"], language="de", country="US")
    wave = add_wave(any_engine, SETTINGS)
    _subjects(any_engine, wave, ["de", "fa"])
    plan_wave(any_engine, SETTINGS, wave, DEC1)
    planned = _planned(any_engine)
    assert {email: row[3] for email, row in planned.items()} == {
        "fr@example.org": "de",
        "ir@example.org": "fa",
        "de@example.org": "de",
    }
    # Supporters are shared by every campaign: their own language is never rewritten.
    assert {email: row[0] for email, row in planned.items()} == {
        "fr@example.org": "fr",
        "ir@example.org": "en",
        "de@example.org": "de",
    }
