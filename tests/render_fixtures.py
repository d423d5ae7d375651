"""Inline case data and helpers shared by the rendering tests."""

from __future__ import annotations

import shutil
from pathlib import Path

from sender.core.config import Settings
from sender.render.renderer import CaseContent, RecipientData
from sender.render.templating import DEFAULT_TEMPLATES_DIR

TEXTS_EN = {
    "title": "Free the river defender",
    "summary": "Ana Ríos was jailed after she spoke up for her village's water.",
    "ask": "Ask the Attorney General to release her today.",
    "authority": "Attorney General Pérez",
    "authority_address": "Fiscalía General, Calle 1, Ciudad",
    "letter": "Dear Attorney General,\nPlease release Ana Ríos at once.",
}
TEXTS = {
    "en": TEXTS_EN,
    "es": {**TEXTS_EN, "title": "Liberad a la defensora del río"},
    "fr": {**TEXTS_EN, "title": "Libérez la défenseure de la rivière"},
    "ar": {**TEXTS_EN, "title": "أطلقوا سراح المدافعة عن النهر"},
}


def settings(**changes: object) -> Settings:
    base = Settings(_env_file=None, secret_key="golden-secret", database_url="sqlite://")  # type: ignore[call-arg]
    return base.model_copy(update=changes) if changes else base


def case(slug: str = "ana-rios", texts: dict[str, dict[str, str]] | None = None) -> CaseContent:
    return CaseContent(
        id=7,
        slug=slug,
        person="Ana Ríos",
        country="CO",
        status="active",
        action_url="https://elsewhere.example.org/act",
        image_url="https://act.example.org/img/ana.jpg",
        content=TEXTS if texts is None else texts,
    )


def who(first: str | None = "Maya", last: str | None = "Okafor") -> RecipientData:
    return RecipientData(
        supporter_id=41,
        email="maya@example.org",
        first_name=first,
        last_name=last,
        message_id=9001,
        case_id=7,
        wave_id=3,
    )


def copy_templates(target: Path) -> Path:
    """A private, editable copy of the shipped templates."""
    shutil.copytree(DEFAULT_TEMPLATES_DIR, target)
    return target
