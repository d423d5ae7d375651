"""One case's texts in one language: checked like the cases file, previewed, stored."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ops_fixtures import seed
from sqlalchemy import Engine, select

from sender.campaign.campaigns import CampaignClosed
from sender.campaign.case_texts import case_texts, form_text, preview_case_text, set_case_text
from sender.campaign.cases import case_text_changes
from sender.campaign.registry import close_campaign
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.errors import InvalidInput
from sender.core.models import Case

CASES = """cases:
  - slug: bird
    person: Nassima al-Sada
    country: SA
    status: active
    content:
      en:
        title: Free them
        summary: Held for writing.
        ask: Release them.
        authority: The Minister
        authority_address: [Ministry, Capital]
        letter: Please release them.
"""
FIELDS = {
    "title": "Free Nassima",
    "summary": "Held for writing.",
    "ask": "Release her.",
    "authority": "The Minister",
    "authority_address": "Ministry\n\n  Capital  \n",
    "letter": "Please release her.",
    "good_news": "",
}


@pytest.fixture
def engine(pg_engine: Engine) -> Engine:
    seed(pg_engine)
    case_text_changes(pg_engine, CASES, "w4r-2020", apply=True)
    return pg_engine


def content(engine: Engine) -> dict[str, object]:
    with session_scope(engine) as session:
        return dict(session.scalars(select(Case.content).where(Case.slug == "bird")).one())


def test_the_form_reads_the_address_a_line_at_a_time() -> None:
    text = form_text(FIELDS, "case 'bird'", "en")
    assert text.authority_address == ("Ministry", "Capital") and text.good_news is None
    with pytest.raises(InvalidInput, match="title"):
        form_text({**FIELDS, "title": " "}, "case 'bird'", "en")


def test_texts_are_stored_once_and_shown_back(engine: Engine) -> None:
    text = form_text(FIELDS, "case 'bird'", "en")
    assert set_case_text(engine, "bird", "en", text, "w4r-2020") is True
    assert set_case_text(engine, "bird", "en", text, "w4r-2020") is False
    shown = case_texts(engine, "bird", "en", "w4r-2020")
    assert shown["title"] == "Free Nassima" and shown["authority_address"] == "Ministry\nCapital"


def test_a_foreign_language_or_a_closed_campaign_changes_nothing(engine: Engine) -> None:
    before = content(engine)
    text = form_text(FIELDS, "case 'bird'", "de")
    with pytest.raises(InvalidInput, match="not a language"):
        set_case_text(engine, "bird", "de", text, "w4r-2020")
    close_campaign(engine, "w4r-2020", datetime.now(UTC))
    with pytest.raises(CampaignClosed, match="closed"):
        set_case_text(engine, "bird", "en", form_text(FIELDS, "c", "en"), "w4r-2020")
    assert content(engine) == before


def test_the_preview_is_the_email_with_the_edited_texts(engine: Engine) -> None:
    settings = Settings(database_url=engine.url.render_as_string(hide_password=False))
    email = preview_case_text(
        engine, settings, "bird", "en", form_text(FIELDS, "c", "en"), "w4r-2020"
    )
    assert "Free Nassima" in email.html and "Please release her." in email.html
    assert content(engine)["en"] == {  # nothing stored
        "title": "Free them",
        "summary": "Held for writing.",
        "ask": "Release them.",
        "authority": "The Minister",
        "authority_address": ["Ministry", "Capital"],
        "letter": "Please release them.",
    }
