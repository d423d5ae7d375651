"""`campaign doctor`: what a new installation gets wrong, and how to fix each item.

Every check is a small function returning frozen Findings (OK, WARN or FAIL,
what was found, how to fix it); the checks are data: `SETTINGS_CHECKS` over
the settings (settings_checks.py), `CAMPAIGN_CHECKS` over one campaign read
into frozen facts (campaign_checks.py). Nothing is changed anywhere: the
database is only read, and the one call that leaves the machine is SendGrid's
`GET /v3/scopes`, which sends no mail.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from sender.core import db
from sender.core.config import Settings
from sender.ops.doctor.campaign_checks import CAMPAIGN_CHECKS, check_campaign, load_campaigns
from sender.ops.doctor.findings import Finding, Probe, Status, worst
from sender.ops.doctor.settings_checks import SETTINGS_CHECKS, database_finding

DEFAULT_PROBE = Probe()

__all__ = [
    "CAMPAIGN_CHECKS",
    "SETTINGS_CHECKS",
    "Finding",
    "Probe",
    "Status",
    "diagnose",
    "worst",
]


def _campaign_findings(
    engine: Engine, settings: Settings, now: datetime, slug: str | None
) -> list[Finding]:
    campaigns, slugs = load_campaigns(engine, slug)
    if campaigns:
        return [f for campaign in campaigns for f in check_campaign(campaign, settings, now)]
    known = ", ".join(slugs) or "none"
    create = "`campaign init DIR`, then `campaign campaigns create DIR`"
    if slug:
        detail = f"no campaign {slug!r} here (campaigns: {known})"
        return [Finding("campaign", Status.FAIL, detail, "check --campaign or CAMPAIGN")]
    detail = f"no open campaign (campaigns: {known}): nothing can be sent"
    return [Finding("campaign", Status.WARN, detail, create)]


def diagnose(
    settings: Settings,
    now: datetime,
    *,
    slug: str | None = None,
    probe: Probe = DEFAULT_PROBE,
    engine_for: Callable[[str], Engine] = db.get_engine,
) -> list[Finding]:
    """Every finding, installation first, then each campaign checked (the named one,
    else every open one)."""
    findings = [f for check in SETTINGS_CHECKS for f in check(settings, probe)]
    found, engine = database_finding(settings, engine_for)
    findings.append(found)
    if engine is not None:
        findings += _campaign_findings(engine, settings, now, slug)
    return findings
