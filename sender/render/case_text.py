"""What a case says in one language, and the one rule for choosing that language.

The cases file (sender.campaign.cases) builds these texts and stores them in
`cases.content`; emails (sender.render.renderer) and the built-in action page
(sender.web.links) read them back with `case_text`, so a supporter reads the
same words, in the same language, in the email and on the page. The type
lives here, with its reader, so that rendering needs nothing from the
campaign package (which itself depends on rendering and sending).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sender.core.errors import TemplateProblem
from sender.render.templating import SOURCE_LANGUAGE

CASE_FIELDS = ("title", "summary", "ask", "authority", "authority_address", "letter")
# Optional: news to tell supporters, such as a release (the good_news kind prints it).
OPTIONAL_CASE_FIELDS = ("good_news",)


@dataclass(frozen=True)
class CaseText:
    """What one language says about a case."""

    title: str
    summary: str
    ask: str
    authority: str
    authority_address: tuple[str, ...]  # address lines
    letter: str
    good_news: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The stored form, one entry of `cases.content`."""
        extra = {} if self.good_news is None else {"good_news": self.good_news}
        return {
            "title": self.title,
            "summary": self.summary,
            "ask": self.ask,
            "authority": self.authority,
            "authority_address": list(self.authority_address),
            "letter": self.letter,
            **extra,
        }


def case_text(
    content: Mapping[str, Any] | None, language: str, slug: str
) -> tuple[CaseText, tuple[str, ...]]:
    """The case's text in `language`, or in English when it has none in it (noted).

    The only reader of `cases.content`. Raises TemplateProblem when the chosen
    language lacks a field, or when the case has no English either.
    """
    content = content or {}
    chosen = language
    fallbacks: tuple[str, ...] = ()
    if not content.get(language):
        chosen = SOURCE_LANGUAGE
        fallbacks = (f"case {slug} has no '{language}' content; English used",)
    texts = content.get(chosen)
    if not isinstance(texts, Mapping) or not texts:
        raise TemplateProblem(f"case {slug}: no content in '{language}' nor in English")
    found: dict[str, Any] = {}
    for name in CASE_FIELDS:
        value = _lines(texts.get(name)) if name == "authority_address" else _text(texts.get(name))
        if not value:
            raise TemplateProblem(f"case {slug}: content.{chosen} lacks field '{name}'")
        found[name] = value
    return CaseText(**found, good_news=_text(texts.get("good_news"))), fallbacks


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _lines(value: object) -> tuple[str, ...]:
    """Address lines: the cases file gives a list, older rows a single string."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(line, str) for line in value):
        return ()
    return tuple(line.strip() for line in value if line.strip())
