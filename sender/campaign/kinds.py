"""A campaign's own email kinds, from its folder, and the check that a wave's kind exists.

A campaign folder may declare kinds in `campaign.yaml`:

    kinds:
      thank_you_volunteers:            # a new kind: its audience is required
        audience: acted
        description: Thanks, from the volunteers' team
      case_email: {}                   # a shipped kind, with this campaign's own templates

with each kind's template pair in `DIR/templates/<kind>.html` and `<kind>.txt`.
A template extends the shared `layout.html` / `layout.txt` and may include the
shipped blocks (`_case_block.html`, `_button.html`), like the shipped kinds.

A campaign kind may reuse a shipped kind's name: its templates then replace the
shipped ones for this campaign only, and its audience (when given) becomes the
default audience of that kind's waves in this campaign. A kind may not be named
after a shared template (`layout`), so a campaign cannot replace the layout of
every kind by accident.

`parse_kinds` returns the value stored in `Campaign.kinds` (sender.render.kinds
reads it): {name: {"audience", "description", "html", "text"}}, template
sources included, so workers never need the folder. Everything is checked
before anything is stored: a missing template, an unknown audience rule or a
template that does not parse is an InvalidInput naming the file and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

from sender.core.errors import InvalidInput, TemplateProblem
from sender.core.models import Campaign
from sender.core.vocabulary import AudienceRule
from sender.render.kinds import (
    NAME_PATTERN,
    KindInfo,
    audience_rule,
    builtin_kinds,
    campaign_kinds,
    known_names,
)
from sender.render.templating import DEFAULT_TEMPLATES_DIR, Templates

TEMPLATES_FOLDER = "templates"
# A template's source is stored in the campaign row: keep rows (and mistakes) small.
MAX_TEMPLATE_BYTES = 200_000
_FIELDS = frozenset({"audience", "description"})


def parse_kinds(
    raw: object,
    folder: Path,
    source: str = "campaign.yaml",
    templates_dir: Path | None = None,
) -> dict[str, Any]:
    """The campaign's kinds as stored in `Campaign.kinds`; InvalidInput naming file and field.

    `raw` is the `kinds:` value of campaign.yaml (None or absent: no kinds of its
    own); `folder` is the campaign folder, whose `templates/` holds the pairs.
    """
    if raw is None:
        return {}
    templates_dir = templates_dir or DEFAULT_TEMPLATES_DIR
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{source}: kinds: expected a mapping of kind name to its settings")
    shipped = _shipped(templates_dir)
    reserved = _shared_templates(templates_dir) - set(shipped)
    kinds: dict[str, Any] = {}
    for name, entry in raw.items():
        where = f"{source}: kinds.{name}"
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise InvalidInput(
                f"{source}: kinds: {name!r} is not a kind name "
                "(lower-case letters, digits and _, at most 32, e.g. thank_you)"
            )
        if name in reserved:
            raise InvalidInput(f"{where}: {name} is a shared template, not a kind; rename it")
        kinds[name] = _kind(name, entry or {}, where, folder, shipped.get(name))
    _check_templates(kinds, source, templates_dir)
    return kinds


def _kind(
    name: str, entry: object, where: str, folder: Path, shipped: KindInfo | None
) -> dict[str, Any]:
    if not isinstance(entry, Mapping):
        raise InvalidInput(f"{where}: expected audience and description")
    unknown = sorted(str(key) for key in set(entry) - _FIELDS)
    if unknown:
        raise InvalidInput(f"{where}: unknown field {unknown[0]!r} (known: audience, description)")
    audience = entry.get("audience")
    if audience is None and shipped is None:
        rules = ", ".join(rule.value for rule in AudienceRule)
        raise InvalidInput(f"{where}.audience: a new kind needs its audience rule (one of {rules})")
    rule = (
        shipped.audience
        if audience is None and shipped
        else audience_rule(audience, f"{where}.audience", InvalidInput)
    )
    description = entry.get("description", shipped.description if shipped else "")
    if not isinstance(description, str):
        raise InvalidInput(f"{where}.description: expected one line of text")
    return {
        "audience": rule.value,
        "description": " ".join(description.split()),
        "html": _template(folder, f"{name}.html", where),
        "text": _template(folder, f"{name}.txt", where),
    }


def _template(folder: Path, file_name: str, where: str) -> str:
    relative = f"{TEMPLATES_FOLDER}/{file_name}"
    path = folder / TEMPLATES_FOLDER / file_name
    if not path.is_file():
        raise InvalidInput(f"{where}: {relative} is missing")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InvalidInput(f"{where}: cannot read {relative} ({error.strerror})") from error
    if len(data) > MAX_TEMPLATE_BYTES:
        raise InvalidInput(
            f"{where}: {relative} is {len(data) // 1000} KB; "
            f"a template may hold {MAX_TEMPLATE_BYTES // 1000} KB"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInput(f"{where}: {relative} is not UTF-8 ({error.reason})") from error
    if "\x00" in text:
        raise InvalidInput(f"{where}: {relative} holds NUL characters")
    return text


def _check_templates(kinds: Mapping[str, Any], source: str, templates_dir: Path) -> None:
    """Each template parses and prints recipient fields only as tags, before it is stored."""
    if not kinds:
        return
    sources = {
        f"{name}.{suffix}": kind[field]
        for name, kind in kinds.items()
        for suffix, field in (("html", "html"), ("txt", "text"))
    }
    templates = Templates(templates_dir, sources)
    for file_name in sorted(sources):
        problems = templates.problems(file_name)
        if problems:
            name = file_name.rsplit(".", 1)[0]
            listed = "; ".join(str(p) for p in problems)
            raise InvalidInput(f"{source}: kinds.{name}: {TEMPLATES_FOLDER}/{file_name}: {listed}")


def _shipped(templates_dir: Path) -> Mapping[str, KindInfo]:
    try:
        return builtin_kinds(templates_dir)
    except TemplateProblem as error:
        raise InvalidInput(str(error)) from error


def _shared_templates(templates_dir: Path) -> set[str]:
    """Top-level template names (without suffix) every kind may use: not kind names."""
    loader = jinja2.FileSystemLoader(str(templates_dir))
    return {
        name.rsplit(".", 1)[0]
        for name in loader.list_templates()
        if "/" not in name and name.endswith((".html", ".txt"))
    }


def kinds_of(campaign: Campaign, templates_dir: Path | None = None) -> dict[str, KindInfo]:
    """Every kind this campaign's waves may have: the shipped ones and its own."""
    try:
        return campaign_kinds(templates_dir or DEFAULT_TEMPLATES_DIR, campaign.kinds)
    except TemplateProblem as error:
        raise InvalidInput(f"campaign {campaign.slug}: {error}") from error


def check_kind(
    campaign: Campaign,
    kind: str,
    wave: str | None = None,
    templates_dir: Path | None = None,
) -> KindInfo:
    """The kind, if this campaign has it; else InvalidInput naming the wave and the kinds."""
    kinds = kinds_of(campaign, templates_dir)
    found = kinds.get(kind)
    if found is None:
        who = f"wave {wave!r}" if wave else "a wave"
        raise InvalidInput(
            f"{who}: campaign {campaign.slug} has no email kind {kind!r} "
            f"(known: {known_names(kinds)}); declare it in campaign.yaml `kinds:`"
        )
    return found
