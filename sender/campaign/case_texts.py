"""One case's texts in one language: read, previewed as the email, and corrected.

Staff fix a typo in the browser instead of editing cases.yaml; the texts are
checked exactly as the cases file checks them (sender.campaign.cases), and the
preview renders the real email through sender.render with the edited texts,
before anything is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType

from sqlalchemy import Engine

from sender.campaign.campaigns import require_open
from sender.campaign.cases import case_by_slug, check_case_text
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.errors import InvalidInput
from sender.core.models import Campaign
from sender.core.vocabulary import WaveKind
from sender.render.case_text import CASE_FIELDS, OPTIONAL_CASE_FIELDS, CaseText
from sender.render.identity import sender_identity
from sender.render.preview import Preview, preview
from sender.render.renderer import CaseContent, Renderer

TEXT_FIELDS = (*CASE_FIELDS, *OPTIONAL_CASE_FIELDS)


def form_text(fields: Mapping[str, str], where: str, lang: str) -> CaseText:
    """The edit form's fields as checked texts: the address is one line per line."""
    value: dict[str, object] = {
        name: fields.get(name, "").strip() for name in TEXT_FIELDS if name in fields
    }
    if "authority_address" in value:
        value["authority_address"] = [
            line.strip() for line in fields["authority_address"].splitlines() if line.strip()
        ]
    if not value.get("good_news"):
        value.pop("good_news", None)
    return check_case_text(value, where, lang)


def case_texts(
    engine: Engine, slug: str, lang: str, campaign_slug: str | None = None
) -> dict[str, str]:
    """The stored texts of one language, as the edit form shows them."""
    with session_scope(engine) as session:
        stored = dict((case_by_slug(session, slug, campaign_slug).content or {}).get(lang) or {})
    address = stored.get("authority_address") or []
    return {
        name: "\n".join(address) if name == "authority_address" else str(stored.get(name) or "")
        for name in TEXT_FIELDS
    }


def set_case_text(
    engine: Engine, slug: str, lang: str, text: CaseText, campaign_slug: str | None = None
) -> bool:
    """Store one language's texts; False when they were already so."""
    with session_scope(engine) as session:
        case = case_by_slug(session, slug, campaign_slug)
        campaign = require_open(session.get_one(Campaign, case.campaign_id))
        if lang not in (campaign.languages or ()) and lang not in (case.content or {}):
            raise InvalidInput(f"{lang!r} is not a language of the campaign {campaign.slug!r}")
        content = dict(case.content or {})
        if content.get(lang) == text.as_json():
            return False
        content[lang] = text.as_json()
        case.content = content  # a new dict: the JSON column sees the change
        return True


def preview_case_text(
    engine: Engine,
    settings: Settings,
    slug: str,
    lang: str,
    text: CaseText,
    campaign_slug: str | None = None,
) -> Preview:
    """The case email in `lang` as a supporter would get it with these texts."""
    with session_scope(engine) as session:
        row = case_by_slug(session, slug, campaign_slug)
        content = CaseContent.from_row(row)
        owner = session.get_one(Campaign, row.campaign_id)
        identity = sender_identity(settings, owner)
        kinds = dict(owner.kinds or {})
    edited = replace(
        content,
        content=MappingProxyType({**content.content, lang: MappingProxyType(text.as_json())}),
    )
    renderer = Renderer(settings, identity, kinds=kinds)
    return preview(renderer, WaveKind.CASE_EMAIL.value, edited, lang)
