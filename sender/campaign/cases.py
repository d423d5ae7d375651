"""Cases: the people and groups supporters write for, loaded from a YAML file.

The file (see `audiences/w4r-2020/cases.yaml`) is checked as a whole before the
database is touched, so a mistake in one case never leaves half a file loaded.
Loading is idempotent: a case is matched by its slug within the campaign,
updated when the file changed it, and never deleted when the file leaves it
out (messages and actions still point at it); such cases are reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from babel import Locale
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from sender.campaign.campaigns import require_open, resolve_campaign
from sender.core.db import session_scope
from sender.core.errors import InvalidInput, NotFound
from sender.core.languages import FALLBACK_LANGUAGE, known_language
from sender.core.models import Campaign, Case
from sender.core.vocabulary import CaseStatus
from sender.ops.counts import planned_of_case
from sender.render.case_text import CASE_FIELDS, OPTIONAL_CASE_FIELDS, CaseText

REQUIRED_FIELDS = ("slug", "person", "country", "status", "content")
OPTIONAL_FIELDS = ("action_url", "image_url", "excluded_countries")
# CLDR lists a few codes that are not countries a supporter can live in.
_NOT_COUNTRIES = frozenset({"ZZ", "EU", "EZ", "UN", "QO", "XA", "XB"})
COUNTRIES = frozenset(
    code
    for code in map(str, Locale("en").territories)
    if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES
)


@dataclass(frozen=True)
class CaseDefinition:
    slug: str
    person: str
    country: str
    status: CaseStatus
    action_url: str | None
    image_url: str | None
    excluded_countries: tuple[str, ...]
    content: Mapping[str, CaseText] = field(hash=False)

    def row_values(self) -> dict[str, Any]:
        """The `cases` columns this definition sets, in their stored form."""
        return {
            "person": self.person,
            "country": self.country,
            "status": str(self.status),
            "action_url": self.action_url,
            "image_url": self.image_url,
            "excluded_countries": list(self.excluded_countries),
            "content": {lang: text.as_json() for lang, text in self.content.items()},
        }


@dataclass(frozen=True)
class CaseFile:
    cases: tuple[CaseDefinition, ...]
    # Allowed but worth saying, e.g. a case with no French text.
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class LoadReport:
    created: tuple[str, ...]
    updated: tuple[str, ...]
    unchanged: tuple[str, ...]
    not_in_file: tuple[str, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class CaseSummary:
    slug: str
    person: str
    country: str
    status: str
    languages: tuple[str, ...]
    action_url: str | None
    excluded_countries: tuple[str, ...]


class _Problems:
    """Collects every problem in a file so that one run shows them all."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def error(self, where: str, message: str) -> None:
        self.errors.append(f"{where}: {message}")


def _text(value: Any, where: str, name: str, problems: _Problems) -> str:
    if not isinstance(value, str) or not value.strip():
        problems.error(where, f"`{name}` must be non-empty text")
        return ""
    return value.strip()


def _https_url(value: Any, where: str, name: str, problems: _Problems) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme != "https" or not parts.netloc:
        problems.error(where, f"`{name}` must be an https:// URL, got {value!r}")
        return None
    return str(value)


def _country(value: Any, where: str, name: str, problems: _Problems) -> str:
    if not isinstance(value, str) or value not in COUNTRIES:
        problems.error(where, f"`{name}` must be an ISO 3166-1 alpha-2 code, got {value!r}")
        return ""
    return value


def _content(value: Any, where: str, lang: str, problems: _Problems) -> CaseText | None:
    where = f"{where}, language {lang}"
    if not isinstance(value, dict):
        problems.error(where, "content must be a mapping of " + ", ".join(CASE_FIELDS))
        return None
    for name in CASE_FIELDS:
        if name not in value:
            problems.error(where, f"missing field `{name}`")
    for name in sorted(set(value) - set(CASE_FIELDS) - set(OPTIONAL_CASE_FIELDS)):
        problems.error(where, f"unknown field `{name}`")
    address = value.get("authority_address")
    if "authority_address" in value and (
        not isinstance(address, list)
        or not address
        or not all(isinstance(line, str) and line.strip() for line in address)
    ):
        problems.error(where, "`authority_address` must be a list of address lines")
        address = []
    texts = {
        name: _text(value.get(name), where, name, problems)
        for name in CASE_FIELDS
        if name != "authority_address" and name in value
    }
    good_news = (
        _text(value["good_news"], where, "good_news", problems) if "good_news" in value else None
    )
    if len(texts) < len(CASE_FIELDS) - 1:
        return None
    return CaseText(authority_address=tuple(address or ()), good_news=good_news or None, **texts)


def check_case_text(value: Mapping[str, Any], where: str, lang: str) -> CaseText:
    """One language's texts, checked as the cases file checks them; InvalidInput names fields."""
    problems = _Problems()
    text = _content(dict(value), where, lang, problems)
    if problems.errors or text is None:
        raise InvalidInput("; ".join(problems.errors) or f"{where}: incomplete texts")
    return text


def _contents(value: Any, where: str, problems: _Problems) -> dict[str, CaseText]:
    if not isinstance(value, dict):
        problems.error(where, "`content` must map language codes (en, de, fa, ...) to texts")
        return {}
    contents: dict[str, CaseText] = {}
    for lang, text in value.items():
        code = known_language(lang) if isinstance(lang, str) else None
        if code is None:
            problems.error(
                where,
                f"`content.{lang}`: unknown language {lang!r}"
                " (a code Babel knows, e.g. 'de', 'fa', 'pt_BR')",
            )
            continue
        if code in contents:
            problems.error(where, f"`content.{lang}`: language {code!r} is given twice")
            continue
        parsed = _content(text, where, code, problems)
        if parsed is not None:
            contents[code] = parsed
    return contents


def check_languages(
    case_file: CaseFile, declared: Sequence[str], source: str = "cases file"
) -> CaseFile:
    """The file against the campaign's languages: every case speaks every one of them.

    A campaign with no declared languages (a row made before they existed)
    needs English, the last fallback of every supporter. Raises InvalidInput
    naming each case and field; text in a language the campaign does not
    declare is kept and noted (a later `campaign.yaml` may add it).
    """
    needed = tuple(declared) or (FALLBACK_LANGUAGE,)
    errors: list[str] = []
    warnings = list(case_file.warnings)
    for definition in case_file.cases:
        where = f"case {definition.slug!r}"
        for lang in needed:
            if lang not in definition.content:
                errors.append(
                    f"{where}: missing `content.{lang}` (the campaign's languages: "
                    f"{', '.join(needed)})"
                )
        for lang in sorted(set(definition.content) - set(needed)):
            warnings.append(f"{where}: `content.{lang}` is not a language of the campaign; unused")
    if errors:
        raise InvalidInput(f"{source}: " + "; ".join(errors))
    return CaseFile(case_file.cases, tuple(warnings))


def _definition(raw: Any, index: int, problems: _Problems) -> CaseDefinition | None:
    if not isinstance(raw, dict):
        problems.error(f"case #{index + 1}", "must be a mapping")
        return None
    slug = raw.get("slug")
    where = f"case {slug!r}" if isinstance(slug, str) and slug else f"case #{index + 1}"
    for name in REQUIRED_FIELDS:
        if name not in raw:
            problems.error(where, f"missing field `{name}`")
    for name in sorted(set(raw) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS)):
        problems.error(where, f"unknown field `{name}`")
    status = raw.get("status")
    if "status" in raw and status not in {str(s) for s in CaseStatus}:
        problems.error(
            where, f"bad status {status!r} (one of: {', '.join(s.value for s in CaseStatus)})"
        )
    excluded = raw.get("excluded_countries") or []
    if not isinstance(excluded, list):
        problems.error(where, "`excluded_countries` must be a list of country codes")
        excluded = []
    errors_before = len(problems.errors)
    definition = CaseDefinition(
        slug=_text(slug, where, "slug", problems) if "slug" in raw else "",
        person=_text(raw.get("person"), where, "person", problems) if "person" in raw else "",
        country=_country(raw.get("country"), where, "country", problems)
        if "country" in raw
        else "",
        status=CaseStatus(status) if status in {str(s) for s in CaseStatus} else CaseStatus.ACTIVE,
        action_url=_https_url(raw.get("action_url"), where, "action_url", problems),
        image_url=_https_url(raw.get("image_url"), where, "image_url", problems),
        excluded_countries=tuple(
            _country(code, where, "excluded_countries", problems) for code in excluded
        ),
        content=_contents(raw.get("content"), where, problems) if "content" in raw else {},
    )
    complete = all(name in raw for name in REQUIRED_FIELDS)
    return definition if complete and len(problems.errors) == errors_before else None


def parse_cases(text: str, source: str = "cases file") -> CaseFile:
    """Check a cases file; raise InvalidInput naming every bad case and field."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise InvalidInput(f"{source} is not valid YAML: {error}".replace("\n", " ")) from error
    if not isinstance(document, dict) or not isinstance(document.get("cases"), list):
        raise InvalidInput(f"{source}: expected a top-level `cases:` list")
    problems = _Problems()
    definitions = [_definition(raw, i, problems) for i, raw in enumerate(document["cases"])]
    seen: set[str] = set()
    for definition in definitions:
        if definition is not None and definition.slug in seen:
            problems.error(f"case {definition.slug!r}", "slug used twice")
        if definition is not None:
            seen.add(definition.slug)
    if problems.errors:
        raise InvalidInput(f"{source}: " + "; ".join(problems.errors))
    return CaseFile(
        cases=tuple(d for d in definitions if d is not None), warnings=tuple(problems.warnings)
    )


def read_cases(path: Path) -> CaseFile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InvalidInput(f"cannot read cases file {path}: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise InvalidInput(f"cases file {path} is not UTF-8: {error}") from error
    return parse_cases(text, source=str(path))


def _changed(case: Case, values: dict[str, Any]) -> bool:
    return any(getattr(case, name) != value for name, value in values.items())


def load_cases(engine: Engine, path: Path, campaign_slug: str | None = None) -> LoadReport:
    """Create or update the file's cases in one transaction; report what changed."""
    case_file = read_cases(path)
    with session_scope(engine) as session:
        campaign = require_open(resolve_campaign(session, campaign_slug))
        case_file = check_languages(case_file, campaign.languages or (), str(path))
        return store_cases(session, campaign, case_file)


def case_text_changes(
    engine: Engine,
    text: str,
    campaign_slug: str | None = None,
    source: str = "cases file",
    *,
    apply: bool = False,
) -> LoadReport:
    """What a cases file changes, case by case; stored only with `apply`.

    The preview runs the same store and rolls it back, so what staff see before
    applying is what applying does.
    """
    case_file = parse_cases(text, source)
    with session_scope(engine) as session:
        campaign = require_open(resolve_campaign(session, campaign_slug))
        case_file = check_languages(case_file, campaign.languages or (), source)
        report = store_cases(session, campaign, case_file)
        if not apply:
            session.rollback()
        return report


def store_cases(session: Session, campaign: Campaign, case_file: CaseFile) -> LoadReport:
    """The file's cases into the campaign, inside the caller's transaction."""
    created: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    existing = {
        case.slug: case
        for case in session.scalars(select(Case).where(Case.campaign_id == campaign.id))
    }
    for definition in case_file.cases:
        values = definition.row_values()
        case = existing.get(definition.slug)
        if case is None:
            session.add(Case(campaign_id=campaign.id, slug=definition.slug, **values))
            created.append(definition.slug)
        elif _changed(case, values):
            for name, value in values.items():
                setattr(case, name, value)
            updated.append(definition.slug)
        else:
            unchanged.append(definition.slug)
    session.flush()
    in_file = {definition.slug for definition in case_file.cases}
    return LoadReport(
        created=tuple(created),
        updated=tuple(updated),
        unchanged=tuple(unchanged),
        not_in_file=tuple(sorted(set(existing) - in_file)),
        warnings=case_file.warnings,
    )


def _summary(case: Case) -> CaseSummary:
    return CaseSummary(
        slug=case.slug,
        person=case.person,
        country=case.country,
        status=case.status,
        languages=tuple(sorted(case.content)),
        action_url=case.action_url,
        excluded_countries=tuple(case.excluded_countries or ()),
    )


def list_cases(engine: Engine, campaign_slug: str | None = None) -> tuple[CaseSummary, ...]:
    with session_scope(engine) as session:
        campaign = resolve_campaign(session, campaign_slug)
        cases = session.scalars(
            select(Case).where(Case.campaign_id == campaign.id).order_by(Case.id)
        )
        return tuple(_summary(case) for case in cases)


def case_by_slug(session: Session, slug: str, campaign_slug: str | None = None) -> Case:
    """The one lookup of a case by slug: slugs are unique within a campaign only."""
    campaign = resolve_campaign(session, campaign_slug)
    case = session.scalar(select(Case).where(Case.campaign_id == campaign.id, Case.slug == slug))
    if case is None:
        raise NotFound(f"no case with slug {slug!r} in campaign {campaign.slug!r}")
    return case


def set_case_status(
    engine: Engine, slug: str, status: CaseStatus | str, campaign_slug: str | None = None
) -> CaseSummary:
    """Pause, resume or resolve a case: the kill switch, and the only way a status changes.

    Waves skip cases that are not active, except that `case_assigned` waves (good
    news) include resolved ones (docs/KINDS.md); a paused case's queued batches are
    held at once, since the pipeline re-checks the case right before sending.
    """
    if status not in {str(s) for s in CaseStatus}:
        raise InvalidInput(
            f"bad status {status!r} (one of: {', '.join(s.value for s in CaseStatus)})"
        )
    with session_scope(engine) as session:
        case = case_by_slug(session, slug, campaign_slug)
        require_open(session.get_one(Campaign, case.campaign_id))
        case.status = str(CaseStatus(status))
        return _summary(case)


def pending_messages(engine: Engine, slug: str, campaign_slug: str | None = None) -> int:
    """How many of the case's emails are planned and not yet sent: what a pause holds back."""
    with session_scope(engine) as session:
        return planned_of_case(session, case_by_slug(session, slug, campaign_slug).id)
