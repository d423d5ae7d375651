"""One campaign's checks: its window, its sender domains, its waves and its cases.

The campaign is read once into frozen facts (`load_campaigns`); each check is a
function of those facts, the settings and `now`, so the tests feed each bad
configuration as data or as rows, and nothing here writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from sender.campaign.campaigns import all_campaigns
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.errors import TemplateProblem
from sender.core.models import Campaign, Case, Wave
from sender.core.vocabulary import CampaignStatus, WaveStatus
from sender.ops.doctor.findings import Finding, Status
from sender.ops.doctor.settings_checks import domain_of, is_example_domain
from sender.render.case_text import case_text

# A draft wave starting this soon should be launched by now.
DRAFT_HORIZON = timedelta(hours=24)
# Beat ticks every 30 s: a launched wave still unplanned this long after its start
# means no scheduler runs.
SCHEDULER_GRACE = timedelta(minutes=5)
UNFINISHED = (WaveStatus.DRAFT, WaveStatus.SCHEDULED, WaveStatus.SENDING, WaveStatus.PAUSED)
SCHEDULER_FIX = (
    "start the scheduler: `celery -A worker beat`, exactly once (without Redis: `campaign run`)"
)


@dataclass(frozen=True)
class WaveFacts:
    name: str
    status: str
    starts_at: datetime
    ends_at: datetime
    planned_at: datetime | None = None


@dataclass(frozen=True)
class CaseFacts:
    slug: str
    content: Mapping[str, Any]


@dataclass(frozen=True)
class CampaignFacts:
    slug: str
    status: str
    window_start: datetime
    window_end: datetime
    timezone: str
    from_email: str
    reply_domain: str | None  # None: the installation's INBOUND_DOMAIN
    languages: tuple[str, ...]
    waves: tuple[WaveFacts, ...] = ()
    cases: tuple[CaseFacts, ...] = ()


CampaignCheck = Callable[[CampaignFacts, Settings, datetime], Iterable[Finding]]


def load_campaigns(engine: Engine, slug: str | None) -> tuple[list[CampaignFacts], list[str]]:
    """The named campaign, or every open one; and every slug there is, to name them."""
    with session_scope(engine) as session:
        rows = all_campaigns(session)  # the one lookup of every campaign
        chosen = [
            row for row in rows if (row.slug == slug if slug else row.status == CampaignStatus.OPEN)
        ]
        return [_facts(session, row) for row in chosen], [row.slug for row in rows]


def _facts(session: Session, row: Campaign) -> CampaignFacts:
    waves = session.scalars(select(Wave).where(Wave.campaign_id == row.id).order_by(Wave.starts_at))
    cases = session.scalars(select(Case).where(Case.campaign_id == row.id).order_by(Case.slug))
    return CampaignFacts(
        slug=row.slug,
        status=row.status,
        window_start=row.window_start,
        window_end=row.window_end,
        timezone=row.timezone,
        from_email=row.from_email,
        reply_domain=row.reply_domain,
        languages=tuple(row.languages or ()),
        waves=tuple(
            WaveFacts(w.name, w.status, w.starts_at, w.ends_at, w.planned_at) for w in waves
        ),
        cases=tuple(CaseFacts(c.slug, dict(c.content or {})) for c in cases),
    )


# --- how times read -----------------------------------------------------------------


def _zone(campaign: CampaignFacts) -> ZoneInfo:
    try:
        return ZoneInfo(campaign.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _at(moment: datetime, campaign: CampaignFacts) -> str:
    zone = _zone(campaign)
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M} {zone.key}"


def span(delta: timedelta) -> str:
    """A duration as people say it: '3 days', '5 hours', '20 minutes'."""
    seconds = abs(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}" + ("s" if count != 1 else "")
    return "less than a minute"


# --- the checks -----------------------------------------------------------------------


def check_window(campaign: CampaignFacts, settings: Settings, now: datetime) -> Iterable[Finding]:
    name = f"{campaign.slug}: window"
    start, end = _at(campaign.window_start, campaign), _at(campaign.window_end, campaign)
    redo = "change window in campaign.yaml, then `campaign campaigns create DIR` again"
    if campaign.status == CampaignStatus.CLOSED:
        return [Finding(name, Status.OK, f"closed: read-only, nothing sends (ended {end})")]
    if now < campaign.window_start:
        detail = f"opens {start}, {span(campaign.window_start - now)} from now: "
        detail += "no wave sends before"
        return [Finding(name, Status.WARN, detail, f"if the date is wrong, {redo}")]
    if now >= campaign.window_end:
        detail = f"ended {end}, {span(now - campaign.window_end)} ago, but is still open: "
        detail += "none of its waves can send"
        fix = f"`campaign campaigns close {campaign.slug}` if it is over; else {redo}"
        return [Finding(name, Status.WARN, detail, fix)]
    detail = f"running until {end}: {span(campaign.window_end - now)} left"
    return [Finding(name, Status.OK, detail)]


def check_domains(campaign: CampaignFacts, settings: Settings, now: datetime) -> Iterable[Finding]:
    """Replies go to reply+TOKEN@<reply domain>: it should sit under the From domain."""
    name = f"{campaign.slug}: domains"
    from_domain = domain_of(campaign.from_email)
    reply = (campaign.reply_domain or settings.inbound_domain).lower().rstrip(".")
    source = "sender.reply_domain" if campaign.reply_domain else "INBOUND_DOMAIN"
    if is_example_domain(from_domain):
        detail = f"mail would come from {campaign.from_email}, an example address: "
        detail += "SendGrid refuses a sender it has not verified"
        fix = "set sender.from_email in campaign.yaml to an address of a domain "
        fix += "authenticated in SendGrid (Settings > Sender Authentication)"
        return [Finding(name, Status.FAIL, detail, fix)]
    if reply == from_domain or reply.endswith(f".{from_domain}"):
        detail = f"replies go to {reply}, under the From domain {from_domain}: "
        detail += "one organisation, so SPF and DKIM can align with From for DMARC"
        return [Finding(name, Status.OK, detail)]
    detail = (
        f"mail comes from {from_domain} but replies go to {reply} ({source}), "
        "another domain. Mailbox providers trust mail whose domains all belong to the "
        "sender: DMARC passes only when SPF or DKIM aligns with the From domain, and a "
        "reply address elsewhere looks like phishing"
    )
    fix = f"use a subdomain of {from_domain} (e.g. parse.{from_domain}) for Inbound Parse "
    fix += f"and set {source} to it; authenticate {from_domain} in SendGrid"
    return [Finding(name, Status.WARN, detail, fix)]


def _wave_problems(
    wave: WaveFacts, campaign: CampaignFacts, now: datetime
) -> Iterable[tuple[Status, str, str]]:
    start, end = _at(wave.starts_at, campaign), _at(wave.ends_at, campaign)
    launch = f"`campaign wave launch {wave.name}` (it checks the templates first)"
    replan = "give it new dates in plan.yaml and run `campaign plan apply`"
    if wave.status == WaveStatus.SCHEDULED and wave.planned_at is None:
        if now >= wave.ends_at:
            yield (
                Status.FAIL,
                f"wave {wave.name} is launched but its end ({end}) passed before it was "
                "planned: no scheduler is running, it will be marked missed",
                SCHEDULER_FIX,
            )
        elif now >= wave.starts_at + SCHEDULER_GRACE:
            yield (
                Status.FAIL,
                f"wave {wave.name} was due {start} and is still not planned: "
                "no scheduler is running",
                SCHEDULER_FIX,
            )
    if wave.status == WaveStatus.DRAFT:
        if now >= wave.ends_at:
            yield (
                Status.FAIL,
                f"draft wave {wave.name} ended {end} without being launched: it can never send",
                f"{replan}, or leave it out",
            )
        elif now >= wave.starts_at:
            yield (
                Status.FAIL,
                f"draft wave {wave.name} should have started {start} and is not launched; "
                f"it is missed at {end}",
                launch,
            )
        elif wave.starts_at - now <= DRAFT_HORIZON:
            yield (
                Status.WARN,
                f"draft wave {wave.name} starts {start}, {span(wave.starts_at - now)} from "
                "now, and is not launched",
                launch,
            )
    outside = wave.starts_at < campaign.window_start or wave.ends_at > campaign.window_end
    if wave.status in UNFINISHED and outside:
        window = f"{_at(campaign.window_start, campaign)} to {_at(campaign.window_end, campaign)}"
        yield (
            Status.FAIL,
            f"wave {wave.name} runs {start} to {end}, outside the campaign window "
            f"({window}): the campaign's dates and the plan disagree",
            "give it dates inside the window in plan.yaml and run `campaign plan apply`, "
            "or change window in campaign.yaml",
        )


def check_waves(campaign: CampaignFacts, settings: Settings, now: datetime) -> Iterable[Finding]:
    name = f"{campaign.slug}: waves"
    if not campaign.waves:
        fix = "declare them in plan.yaml and run `campaign plan apply DIR/plan.yaml`"
        return [Finding(name, Status.WARN, "no waves yet: nothing will be sent", fix)]
    found = [
        Finding(name, status, detail, fix)
        for wave in campaign.waves
        for status, detail, fix in _wave_problems(wave, campaign, now)
    ]
    count = len(campaign.waves)
    detail = f"{count} wave{'s' if count != 1 else ''}, none at risk of being missed"
    return found or [Finding(name, Status.OK, detail)]


def _case_gaps(case: CaseFacts, languages: Iterable[str]) -> tuple[list[str], list[str]]:
    """The declared languages the case has no text in, and what makes its text unusable."""
    missing: list[str] = []
    broken: list[str] = []
    for language in languages:
        try:
            _, fallbacks = case_text(case.content, language, case.slug)
        except TemplateProblem as problem:
            broken.append(str(problem))
            continue
        if fallbacks:
            missing.append(language)
    return missing, broken


def check_cases(campaign: CampaignFacts, settings: Settings, now: datetime) -> Iterable[Finding]:
    name = f"{campaign.slug}: cases"
    if not campaign.languages:
        fix = "list them under languages: in campaign.yaml, e.g. [en, es]"
        return [Finding(name, Status.FAIL, "the campaign declares no languages", fix)]
    if not campaign.cases:
        fix = "`campaign cases load DIR/cases.yaml`"
        return [Finding(name, Status.WARN, "no cases yet: no email can be written", fix)]
    found: list[Finding] = []
    load = "`campaign cases load DIR/cases.yaml`"
    for case in campaign.cases:
        missing, broken = _case_gaps(case, campaign.languages)
        if broken:
            fix = f"complete the case in cases.yaml and run {load}; "
            fix += "`campaign preview --all` lists every problem"
            found.append(Finding(name, Status.FAIL, broken[0], fix))
        if missing:
            listed = ", ".join(missing)
            detail = f"case {case.slug} has no text in {listed}: supporters reading "
            detail += f"{'it' if len(missing) == 1 else 'those'} get English"
            fix = f"add content.{missing[0]} (and the others) to it in cases.yaml, then {load}"
            found.append(Finding(name, Status.WARN, detail, fix))
    languages = ", ".join(campaign.languages)
    count = len(campaign.cases)
    detail = f"{count} case{'s' if count != 1 else ''}, each with text in every declared language "
    detail += f"({languages})"
    return found or [Finding(name, Status.OK, detail)]


CAMPAIGN_CHECKS: tuple[CampaignCheck, ...] = (check_window, check_domains, check_waves, check_cases)


def check_campaign(campaign: CampaignFacts, settings: Settings, now: datetime) -> list[Finding]:
    """Every campaign check; a closed campaign sends nothing, so only its window matters."""
    checks = CAMPAIGN_CHECKS if campaign.status == CampaignStatus.OPEN else (check_window,)
    return [finding for check in checks for finding in check(campaign, settings, now)]
