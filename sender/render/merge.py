"""Merge fields: the per-recipient values a shared variant body leaves open.

A variant holds substitution tags (`-first_name-`); each recipient brings a
value per tag. SendGrid pastes values in raw, so every field has two tags:
one for the HTML part, whose value is HTML-escaped here, and one for the text
part and the subject, whose value goes in as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from html import escape

from markupsafe import Markup

from sender.core.speedups import CHECK_SYMBOLS, CROCKFORD


class MergeField(StrEnum):
    FIRST_NAME = "first_name"  # falls back to a per-language word such as "friend"
    FULL_NAME = "full_name"
    UNSUBSCRIBE_URL = "unsubscribe_url"
    ACTION_URL = "action_url"
    REFERENCE = "reference"


FIELDS: tuple[MergeField, ...] = tuple(MergeField)


def html_tag(field: MergeField) -> str:
    return f"-{field.value}-"


def text_tag(field: MergeField) -> str:
    return f"-{field.value}_text-"


HTML_TAGS: dict[MergeField, str] = {f: html_tag(f) for f in FIELDS}
TEXT_TAGS: dict[MergeField, str] = {f: text_tag(f) for f in FIELDS}
# In the Reply-To address only, never in a template: each recipient's own reply token.
# SendGrid applies substitutions to `reply_to` (tsg_mail_v3.yaml, personalizations
# `substitutions`), so one request still carries 1,000 different Reply-To addresses.
REPLY_TOKEN_TAG = "-reply_token-"  # noqa: S105 - a substitution tag, not a secret


class RecipientTags:
    """What templates see as `recipient`: each field yields its tag, nothing else.

    Templates cannot branch on a recipient (the value is not known when the
    variant renders); sender.render.templating rejects such templates before they run.
    """

    def __init__(self, tags: Mapping[MergeField, str]) -> None:
        for field, tag in tags.items():
            # Markup: a tag is plain ASCII and must reach the body unescaped.
            setattr(self, field.value, Markup(tag))  # noqa: S704 - our own ASCII tags


HTML_RECIPIENT = RecipientTags(HTML_TAGS)
TEXT_RECIPIENT = RecipientTags(TEXT_TAGS)


@dataclass(frozen=True)
class MergeValues:
    """One recipient's values, plain (unescaped)."""

    first_name: str
    full_name: str
    unsubscribe_url: str
    action_url: str
    reference: str

    def substitutions(self) -> dict[str, str]:
        """Tag -> value for HTML, text and subject, escaped where the part needs it."""
        return tag_values(
            self.first_name,
            self.full_name,
            self.unsubscribe_url,
            escape(self.unsubscribe_url),
            self.action_url,
            escape(self.action_url),
            self.reference,
        )


def tag_values(
    first_name: str,
    full_name: str,
    unsubscribe_url: str,
    unsubscribe_url_html: str,
    action_url: str,
    action_url_html: str,
    reference: str,
) -> dict[str, str]:
    """The substitutions dict, written out: it is built once per recipient per wave.

    URLs come with their HTML form so a caller that knows they hold nothing to
    escape (a configured base plus a URL-safe token) can skip the work; names
    are always escaped here. A reference code is letters and digits only.
    """
    # The check is inlined: this runs twice per email and most names hold none.
    return {
        "-first_name-": first_name if _ESCAPED.isdisjoint(first_name) else escape(first_name),
        "-full_name-": full_name if _ESCAPED.isdisjoint(full_name) else escape(full_name),
        "-unsubscribe_url-": unsubscribe_url_html,
        "-action_url-": action_url_html,
        "-reference-": reference,
        "-first_name_text-": first_name,
        "-full_name_text-": full_name,
        "-unsubscribe_url_text-": unsubscribe_url,
        "-action_url_text-": action_url,
        "-reference_text-": reference,
    }


_ESCAPED = frozenset("&<>\"'")  # exactly what html.escape changes


def personalise(text: str, substitutions: Mapping[str, str]) -> str:
    """Fill substitution tags the way SendGrid does.

    Each occurrence of a key is replaced by its value in one left-to-right
    pass, so a value that happens to contain another tag (a supporter named
    "-reference-") is never expanded again. Unknown tag-shaped text is left
    alone, as SendGrid leaves it.
    """
    if not substitutions:
        return text
    pieces = _pieces(text, tuple(substitutions))
    if len(pieces) == 1:
        return text
    filled = list(pieces)
    # Odd places hold the tags (the split pattern captures them).
    filled[1::2] = [substitutions[tag] for tag in pieces[1::2]]
    return "".join(filled)


# The same variant body is personalised for every recipient of a batch, so it
# is split at its tags once; Python caches a str's hash, so a hit is cheap.
_split_cache: dict[tuple[str, tuple[str, ...]], tuple[str, ...]] = {}
_patterns: dict[tuple[str, ...], re.Pattern[str]] = {}


def _pieces(text: str, keys: tuple[str, ...]) -> tuple[str, ...]:
    found = _split_cache.get((text, keys))
    if found is None:
        found = tuple(_pattern_for(keys).split(text))
        if len(_split_cache) >= 256:
            _split_cache.clear()
        _split_cache[(text, keys)] = found
    return found


def _pattern_for(keys: tuple[str, ...]) -> re.Pattern[str]:
    pattern = _patterns.get(keys)
    if pattern is None:
        # Longest first, so "-first_name_text-" wins over a key that prefixes it.
        ordered = sorted(keys, key=len, reverse=True)
        pattern = re.compile("(" + "|".join(re.escape(k) for k in ordered) + ")")
        if len(_patterns) >= 256:
            _patterns.clear()
        _patterns[keys] = pattern
    return pattern


def read_reference(code: str) -> tuple[str, int]:
    """("M", message id) or ("S", supporter id); ValueError when the code is wrong."""
    code = code.strip().upper().replace("-", "")
    if len(code) < 3 or code[0] not in "MS":
        raise ValueError(f"not a reference code: {code!r}")
    number = 0
    for symbol in code[1:-1]:
        digit = CROCKFORD.find(symbol)
        if digit < 0:
            raise ValueError(f"not a reference code: {code!r}")
        number = number * 32 + digit
    if CHECK_SYMBOLS[number % 37] != code[-1]:
        raise ValueError(f"reference code {code!r} fails its check symbol")
    return code[0], number
