"""Builders for the `campaign doctor` tests: a well-configured installation, campaign rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.models import Campaign, Case, Wave
from sender.core.vocabulary import AudienceRule, WaveKind, WaveStatus
from sender.ops.doctor import Finding, Probe, Status, diagnose

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
PROBE = Probe(timeout_seconds=5)

# What a careful installation sets: long random secrets, its own domains, https.
GOOD: dict[str, Any] = {
    "secret_key": "m3Vq8ZpK1xT7bN0cR5wY2hJ9dGa4LfUe6sQ",
    "staff_password": "T9g!pX2vLq7Rz0Wm4Kc8Hb1Ns5Yd3Fj6Ue",
    "inbound_secret": "h4Ys8Pq1Vn6Zx3Lb9Tm2Rc7Kw0Gd5Jf8Sa",
    "public_base_url": "https://act.rights.ngo",
    "inbound_domain": "parse.rights.ngo",
    "unsubscribe_mailto": "unsubscribe@parse.rights.ngo",
    "from_email": "campaigns@rights.ngo",
    "sendgrid_api_key": None,
    "sendgrid_webhook_public_key": None,
}


def good_settings(**changes: Any) -> Settings:
    return Settings(_env_file=None, **{**GOOD, **changes})  # type: ignore[call-arg]


def database_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def text_in(*languages: str) -> dict[str, Any]:
    """A case's content with every field in each of `languages`."""
    return {
        language: {
            "title": f"Free Nassima ({language})",
            "summary": "Nassima was jailed for defending women's rights.",
            "ask": "Write to the king and ask for her release.",
            "authority": "The King",
            "authority_address": ["Royal Palace", "Rabat, Morocco"],
            "letter": "Please release Nassima at once.",
        }
        for language in languages
    }


def add_campaign(engine: Engine, slug: str = "w4r-2026", **changes: Any) -> int:
    """The one place these tests make a campaign row, as a campaign folder would.

    By default: open, running from 10 days before NOW to 20 days after, sending from
    rights.ngo in English and Spanish.
    """
    values: dict[str, Any] = {
        "slug": slug,
        "name": f"Write for Rights ({slug})",
        "window_start": NOW - timedelta(days=10),
        "window_end": NOW + timedelta(days=20),
        "timezone": "Europe/London",
        "from_email": "campaigns@rights.ngo",
        "from_name": "Write for Rights",
        "languages": ["en", "es"],
        **changes,
    }
    with session_scope(engine) as session:
        campaign = Campaign(**values)
        session.add(campaign)
        session.flush()
        return campaign.id


def add_wave(
    engine: Engine,
    campaign_id: int,
    name: str,
    status: WaveStatus,
    starts_at: datetime,
    ends_at: datetime,
    planned_at: datetime | None = None,
) -> None:
    with session_scope(engine) as session:
        session.add(
            Wave(
                campaign_id=campaign_id,
                name=name,
                kind=WaveKind.CASE_EMAIL,
                audience=AudienceRule.ALL_ASSIGNED,
                status=status,
                starts_at=starts_at,
                ends_at=ends_at,
                planned_at=planned_at,
                subjects={"en": "Write for Nassima"},
            )
        )


def add_case(engine: Engine, campaign_id: int, slug: str, content: dict[str, Any]) -> None:
    with session_scope(engine) as session:
        session.add(
            Case(
                campaign_id=campaign_id,
                slug=slug,
                person=slug.title(),
                country="MA",
                content=content,
            )
        )


def rows(engine: Engine) -> list[dict[str, Any]]:
    """Every campaign, wave and case as plain values: the doctor must leave them as they are."""
    out: list[dict[str, Any]] = []
    with session_scope(engine) as session:
        for model in (Campaign, Wave, Case):
            for row in session.scalars(select(model).order_by(model.id)):
                out.append({c.name: getattr(row, c.name) for c in model.__table__.columns})
    return out


def of(findings: list[Finding], check: str) -> list[Finding]:
    return [f for f in findings if f.check == check]


def one(findings: list[Finding], check: str, status: Status) -> Finding:
    """The single finding of `check`, which must have `status`."""
    found = of(findings, check)
    assert len(found) == 1, found
    assert found[0].status is status, found[0]
    return found[0]


def run(
    engine: Engine,
    settings: Settings | None = None,
    slug: str | None = None,
    probe: Probe = PROBE,
) -> list[Finding]:
    """The doctor over `engine`, with the good settings unless others are given."""
    chosen = (settings or good_settings()).model_copy(update={"database_url": database_url(engine)})
    return diagnose(chosen, NOW, slug=slug, probe=probe, engine_for=lambda url: engine)


def run_unchanged(engine: Engine, slug: str | None = None) -> list[Finding]:
    """The doctor, checking that it left every row as it was."""
    before = rows(engine)
    findings = run(engine, slug=slug)
    assert rows(engine) == before
    return findings
