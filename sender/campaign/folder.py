"""A campaign folder: campaign.yaml, cases.yaml and plan.yaml, checked as a whole.

Everything a campaign is lives in its folder, so a national section runs its
own year with its own brand, sender and languages without touching code:

    DIR/campaign.yaml   who sends, when, in which languages (`campaign init` explains each field)
    DIR/cases.yaml      the people and groups supporters write for (sender.campaign.cases)
    DIR/plan.yaml       the timed waves (sender.campaign.plan_file)
    DIR/templates/      the campaign's own email kinds, if it declares any

Reading a folder touches no database: every file and field is checked first,
and an error names the file and the field, so a mistake never leaves half a
campaign created.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sender.campaign.cases import CaseFile, check_languages, parse_cases
from sender.campaign.kinds import parse_kinds
from sender.campaign.plan_file import (
    Plan,
    check_in_window,
    first_problem,
    parse_plan,
    parse_window,
)
from sender.campaign.plan_file import check_languages as check_languages_of_wave
from sender.core.errors import InvalidInput
from sender.core.languages import language_codes

CAMPAIGN_FILE = "campaign.yaml"
CASES_FILE = "cases.yaml"
PLAN_FILE = "plan.yaml"
BRAND_FIELDS = ("primary", "ink", "accent", "logo_url", "org_name", "org_address")


class _Window(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # A date means midnight in the campaign's timezone; `end` is the first
    # instant after the campaign (a date: the end of that day).
    start: datetime | date
    end: datetime | date
    timezone: str = "UTC"

    @field_validator("start", "end", mode="before")
    @classmethod
    def _a_date_stays_a_date(cls, value: object) -> object:
        # Quoted or not, 2026-12-01 is a day: without this, a quoted one would
        # be read as midnight, and an end date would lose its last day.
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            return date.fromisoformat(value.strip())
        return value


class _Sender(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_email: str
    from_name: str = Field(min_length=1, max_length=200)
    reply_domain: str | None = Field(default=None, max_length=253)


class _CampaignModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str = Field(min_length=1, max_length=200)
    window: _Window
    sender: _Sender
    brand: dict[str, str] = Field(default_factory=dict)
    languages: list[str] = Field(min_length=1)
    send_window: str = "09:00-11:00"
    frequency_cap_hours: int | None = Field(default=None, ge=0, le=24 * 60)
    kinds: dict[str, Any] = Field(default_factory=dict)

    @field_validator("brand")
    @classmethod
    def _brand_fields(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(BRAND_FIELDS))
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r} (known: {', '.join(BRAND_FIELDS)})")
        return value


@dataclass(frozen=True)
class CampaignSettings:
    """What campaign.yaml says, checked: the values of the `campaigns` row."""

    slug: str
    name: str
    window_start: datetime
    window_end: datetime
    timezone: str
    from_email: str
    from_name: str
    reply_domain: str | None
    brand: Mapping[str, str]
    languages: tuple[str, ...]
    local_window: tuple[time, time]
    frequency_cap_hours: int | None
    kinds: Mapping[str, Any] = field(default_factory=dict)

    def row_values(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "timezone": self.timezone,
            "from_email": self.from_email,
            "from_name": self.from_name,
            "reply_domain": self.reply_domain,
            "brand": dict(self.brand),
            "languages": list(self.languages),
            "local_window_start": self.local_window[0],
            "local_window_end": self.local_window[1],
            "frequency_cap_hours": self.frequency_cap_hours,
            "kinds": dict(self.kinds),
        }


@dataclass(frozen=True)
class CampaignFolder:
    path: Path
    settings: CampaignSettings
    cases: CaseFile
    plan: Plan | None  # a folder may declare its waves later


def read_folder(path: Path) -> CampaignFolder:
    """Read and check a whole campaign folder; raise InvalidInput naming file and field."""
    if not path.is_dir():
        raise InvalidInput(f"{path}: not a campaign folder (write one with `campaign init {path}`)")
    settings = parse_campaign(_read(path / CAMPAIGN_FILE), source=str(path / CAMPAIGN_FILE))
    settings = _with_kinds(settings, path)
    cases_source = str(path / CASES_FILE)
    cases = parse_cases(_read(path / CASES_FILE), source=cases_source)
    # Every case speaks every declared language: a supporter never gets half an email.
    cases = check_languages(cases, settings.languages, cases_source)
    plan = None
    if (path / PLAN_FILE).exists():
        plan_source = str(path / PLAN_FILE)
        plan = _parse_yaml_plan(_read(path / PLAN_FILE), plan_source)
        check_plan(plan, settings, plan_source)
    return CampaignFolder(path, settings, cases, plan)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise InvalidInput(f"{path}: missing (every campaign folder has one)") from error
    except OSError as error:
        raise InvalidInput(f"{path}: cannot read it ({error.strerror})") from error
    except UnicodeDecodeError as error:
        raise InvalidInput(f"{path}: not UTF-8 text ({error.reason})") from error


def _load_yaml(text: str, source: str) -> object:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise InvalidInput(f"{source}: not valid YAML ({error})".replace("\n", " ")) from error


def parse_campaign(text: str, source: str = CAMPAIGN_FILE) -> CampaignSettings:
    try:
        model = _CampaignModel.model_validate(_load_yaml(text, source))
    except ValidationError as error:
        raise InvalidInput(f"{source}: {first_problem(error)}") from error
    zone = _zone(model.window.timezone, source)
    start = _instant(model.window.start, zone, end_of_day=False)
    end = _instant(model.window.end, zone, end_of_day=True)
    if end <= start:
        raise InvalidInput(
            f"{source}: window.end ({end:%Y-%m-%d %H:%M} UTC) is not after"
            f" window.start ({start:%Y-%m-%d %H:%M} UTC)"
        )
    try:
        local_window = parse_window(model.send_window)
    except InvalidInput as error:
        raise InvalidInput(f"{source}: send_window: {error}") from error
    return CampaignSettings(
        slug=model.slug,
        name=model.name,
        window_start=start,
        window_end=end,
        timezone=model.window.timezone,
        from_email=_email(model.sender.from_email, f"{source}: sender.from_email"),
        from_name=model.sender.from_name,
        reply_domain=_domain(model.sender.reply_domain, f"{source}: sender.reply_domain"),
        brand=dict(model.brand),
        languages=_languages(model.languages, source),
        local_window=local_window,
        frequency_cap_hours=model.frequency_cap_hours,
        kinds=dict(model.kinds),
    )


def _zone(name: str, source: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise InvalidInput(
            f"{source}: window.timezone: unknown time zone {name!r} (e.g. Europe/London)"
        ) from error


def _instant(value: datetime | date, zone: ZoneInfo, *, end_of_day: bool) -> datetime:
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=zone)
        return aware.astimezone(UTC)
    day = value + timedelta(days=1) if end_of_day else value
    return datetime.combine(day, time(0, 0), tzinfo=zone).astimezone(UTC)


def _email(value: str, where: str) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise InvalidInput(f"{where}: {value!r} is not an email address ({error})") from error


def _domain(value: str | None, where: str) -> str | None:
    if value is None:
        return None
    try:
        return validate_email(f"reply@{value}", check_deliverability=False).domain
    except EmailNotValidError as error:
        raise InvalidInput(f"{where}: {value!r} is not a domain name") from error


def _languages(codes: Sequence[str], source: str) -> tuple[str, ...]:
    return tuple(language_codes(list(codes), f"{source}: languages"))


def _with_kinds(settings: CampaignSettings, folder: Path) -> CampaignSettings:
    """The campaign's own kinds, their templates read from the folder (sender.campaign.kinds)."""
    if not settings.kinds:
        return settings
    kinds = parse_kinds(settings.kinds, folder, source=str(folder / CAMPAIGN_FILE))
    return replace(settings, kinds=kinds)


def _parse_yaml_plan(text: str, source: str) -> Plan:
    return parse_plan(_load_yaml(text, source), source=source)


def check_plan(plan: Plan, settings: CampaignSettings, source: str) -> None:
    """The plan belongs to this campaign, fits its window and speaks only its languages.

    A language with no subject is allowed: its supporters fall back
    (sender.core.languages.message_language).
    """
    if plan.campaign is not None and plan.campaign != settings.slug:
        raise InvalidInput(
            f"{source}: campaign: {plan.campaign!r} is not this folder's campaign"
            f" {settings.slug!r} (campaign.yaml: slug)"
        )
    for index, spec in enumerate(plan.waves):
        where = f"{source}: waves[{index}] ({spec.name})"
        try:
            check_in_window(spec, settings.window_start, settings.window_end)
            check_languages_of_wave(spec, settings.languages, settings.slug)
        except InvalidInput as error:
            raise InvalidInput(f"{where}: {error}") from error
