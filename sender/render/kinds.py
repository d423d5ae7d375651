"""Email kinds as data: a template pair and the audience a wave of it gets by default.

The shipped kinds are listed in `templates/kinds.yaml`, next to their template
pairs; a campaign adds its own (or replaces a shipped kind's templates) in its
folder, and `Campaign.kinds` stores them as sender.campaign.kinds parsed them:

    {name: {"audience": rule, "description": text, "html": source, "text": source}}

The template sources live in the database so that a worker renders a campaign's
kind without the campaign folder. This module reads both; it lives with
rendering because the renderer, the launch checks and the planner's callers all
need the same answer to "which kinds does this campaign have".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from sender.core.errors import CampaignError, TemplateProblem
from sender.core.vocabulary import AudienceRule

KINDS_FILE = "kinds.yaml"
# A kind names its templates (<name>.html) and is stored in waves.kind (32 characters).
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
SUFFIXES = ("html", "txt")


@dataclass(frozen=True)
class KindInfo:
    name: str
    audience: AudienceRule  # the wave's audience when its plan entry names none
    description: str
    builtin: bool  # shipped with the templates (a campaign may still replace its templates)


def builtin_kinds(templates_dir: Path) -> Mapping[str, KindInfo]:
    """The kinds shipped in `templates_dir/kinds.yaml`; TemplateProblem when it is wrong."""
    path = templates_dir.resolve() / KINDS_FILE
    try:
        stamp = path.stat().st_mtime_ns
    except OSError as error:
        raise TemplateProblem(f"{path}: cannot read the kinds ({error.strerror})") from error
    return _builtin_kinds(path, stamp)


@lru_cache(maxsize=8)
def _builtin_kinds(path: Path, stamp: int) -> Mapping[str, KindInfo]:
    del stamp  # part of the cache key only: an edited file is read again
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise TemplateProblem(f"{path}: cannot read the kinds ({error})") from error
    if not isinstance(data, dict) or not data:
        raise TemplateProblem(f"{path}: expected a mapping of kind name to its audience")
    kinds: dict[str, KindInfo] = {}
    for name, entry in data.items():
        where = f"{path.name}: {name}"
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise TemplateProblem(f"{where}: a kind name is lower-case letters, digits and _")
        if not isinstance(entry, dict) or set(entry) - {"audience", "description"}:
            raise TemplateProblem(f"{where}: expected {{audience: RULE, description: TEXT}}")
        audience = audience_rule(entry.get("audience"), f"{where}.audience")
        kinds[name] = KindInfo(name, audience, str(entry.get("description", "")), builtin=True)
    return kinds  # a missing template pair is a launch check's problem (preview.template_problems)


def audience_rule(
    value: object, where: str, error: type[CampaignError] = TemplateProblem
) -> AudienceRule:
    """An audience rule by name; else `error` naming `where` and the rules there are."""
    if isinstance(value, str) and value in {str(rule) for rule in AudienceRule}:
        return AudienceRule(value)
    rules = ", ".join(rule.value for rule in AudienceRule)
    raise error(f"{where}: unknown rule {value!r} (one of {rules})")


def campaign_kinds(templates_dir: Path, stored: Mapping[str, Any] | None) -> dict[str, KindInfo]:
    """Every kind a campaign may send: the shipped ones, then its own (which win)."""
    kinds = dict(builtin_kinds(templates_dir))
    for name, entry in (stored or {}).items():
        if not isinstance(entry, Mapping):
            continue
        shipped = kinds.get(name)
        kinds[name] = KindInfo(
            name,
            audience_rule(entry.get("audience"), f"campaign kind {name}.audience"),
            str(entry.get("description") or (shipped.description if shipped else "")),
            builtin=shipped is not None,
        )
    return kinds


def template_sources(stored: Mapping[str, Any] | None) -> dict[str, str]:
    """A campaign's own templates by file name ({"thank_you.html": source, ...})."""
    sources: dict[str, str] = {}
    for name, entry in (stored or {}).items():
        if not isinstance(entry, Mapping):
            continue
        for suffix, field in (("html", "html"), ("txt", "text")):
            source = entry.get(field)
            if isinstance(source, str):
                sources[f"{name}.{suffix}"] = source
    return sources


def known_names(kinds: Mapping[str, KindInfo]) -> str:
    return ", ".join(sorted(kinds))
