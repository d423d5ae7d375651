"""Every variant of one wave, rendered for staff to look at before a launch or a proof.

The same variants a proof sends (sender.send.proofs): each active case in each
of the wave's subject languages, with the wave's subjects and preheaders.
One variant can be personalised "as seen by" a supporter found by email.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select

from sender.core.addresses import normalise_email
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.errors import CampaignError, InvalidInput, NotFound
from sender.core.models import Campaign, Supporter, Wave
from sender.render.identity import sender_identity
from sender.render.preview import Preview, preview, preview_warnings
from sender.render.renderer import (
    CaseContent,
    RecipientData,
    Renderer,
    WaveContent,
    kept_renderer,
)
from sender.send import store as repo


@dataclass(frozen=True)
class Cell:
    """One variant of the grid: its warnings, or the error that stops it rendering."""

    case: str
    language: str
    warnings: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class _Wave:
    renderer: Renderer
    kind: str
    content: WaveContent
    cases: tuple[CaseContent, ...]
    languages: tuple[str, ...]


def _load(engine: Engine, settings: Settings, wave_id: int) -> _Wave:
    with session_scope(engine) as session:
        wave = session.get(Wave, wave_id)
        if wave is None:
            raise NotFound(f"no wave with id {wave_id}")
        campaign = session.get_one(Campaign, wave.campaign_id)
        cases = tuple(CaseContent.from_row(c) for c in repo.active_cases(session, campaign.id))
        loaded = (
            sender_identity(settings, campaign),
            dict(campaign.kinds or {}),
            wave.kind,
            WaveContent.from_row(wave),
            tuple(sorted(wave.subjects or {"en": ""})),
        )
    identity, kinds, kind, content, languages = loaded
    return _Wave(kept_renderer(settings, identity, kinds), kind, content, cases, languages)


def grid(engine: Engine, settings: Settings, wave_id: int) -> tuple[Cell, ...]:
    loaded = _load(engine, settings, wave_id)
    return tuple(
        _cell(loaded, case, language) for case in loaded.cases for language in loaded.languages
    )


def _cell(loaded: _Wave, case: CaseContent, language: str) -> Cell:
    try:
        warnings = preview_warnings(loaded.renderer, loaded.kind, case, language, loaded.content)
    except CampaignError as error:
        return Cell(case.slug, language, error=str(error))
    return Cell(case.slug, language, warnings)


def variant(
    engine: Engine,
    settings: Settings,
    wave_id: int,
    case_slug: str,
    language: str,
    supporter_email: str | None = None,
) -> Preview:
    """One variant, for the sample supporter or the one with this email."""
    loaded = _load(engine, settings, wave_id)
    case = next((c for c in loaded.cases if c.slug == case_slug), None)
    if case is None or language not in loaded.languages:
        raise NotFound(f"the wave has no variant {case_slug}/{language}")
    who = _supporter(engine, supporter_email, case, loaded.content) if supporter_email else None
    return preview(loaded.renderer, loaded.kind, case, language, who, loaded.content)


def _supporter(engine: Engine, email: str, case: CaseContent, wave: WaveContent) -> RecipientData:
    address = normalise_email(email)
    with session_scope(engine) as session:
        person = session.scalar(select(Supporter).where(Supporter.email == address))
        if person is None or person.email is None:
            raise InvalidInput(f"no supporter with email {email!r}")
        return RecipientData(
            person.id, person.email, person.first_name, person.last_name, None, case.id, wave.id
        )
