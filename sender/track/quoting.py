"""A reply's own words: quoted history cut from text and HTML replies alike.

The one home for stripping. An HTML-only reply is read with the stdlib
HTMLParser up to the first element a mail client uses to hold the quoted
message (below), then goes through the same text stripper as a text reply,
which cuts what is left of the history: the "On ... wrote:" line and the
"From: ... Sent: ..." header block, in the campaign's four languages.

Quote containers, as the clients write them:
- Gmail: `<div class="gmail_quote">` (the "On ... wrote:" line is inside it);
- Apple Mail, iOS Mail and Thunderbird: `<blockquote type="cite">`, Thunderbird's
  attribution in `<div class="moz-cite-prefix">`;
- Outlook on the web / Microsoft 365: `<div id="appendonsend">` then
  `<div id="divRplyFwdMsg">` (From/Sent/To/Subject), the old message after it;
  Outlook for Mac: `<div id="mail-editor-reference-message-container">`;
- Yahoo: `<div class="yahoo_quoted">`.
Outlook writes them again with an `x_` prefix when it quotes a quoted message.
Outlook for Windows marks nothing: its "From: ... Sent: ..." block is found in
the text. Everything after the first container is history: a reply written
between quoted paragraphs keeps only its first part (a known limit).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from mailparser_reply import EmailReplyParser
from mailparser_reply.constants import MAIL_LANGUAGES

# What mailparser_reply misses (a language it lacks, such as Arabic, or a
# pattern it gets wrong): a "... <address>:" line followed by quoted lines.
_QUOTE_HEADER = re.compile(r"^.*<[^<>@\s]+@[^<>\s]+>.*:\s*\n(?:\s*\n)*>", re.MULTILINE)
# The attribution line a client writes above the history, per language; cut only
# when nothing but blank lines follows it (the history itself went with its HTML
# container), so a sentence that happens to start with "On" is never lost.
_ATTRIBUTION = re.compile(
    r"^[ \t]*(?:"
    r"On\s.+\swrote:"  # en
    r"|El\s.+\sescribi[óo]:"  # es
    r"|Le\s.+\sa\s+[ée]crit\s*:"  # fr
    r"|في\s.+\sكتب\s.+:"  # ar
    r")[ \t]*\s*\Z",
    re.MULTILINE | re.IGNORECASE,
)
# Outlook's header block: a From line and, within the next two lines, a Sent/Date line.
_FROM_LABEL = r"(?:from|de|من)"
_SENT_LABEL = r"(?:sent|date|enviado(?: el)?|fecha|envoy[ée]|تم الإرسال|التاريخ|أرسل)"
_HEADER_BLOCK = re.compile(
    rf"^[ \t*]*{_FROM_LABEL}[ \t*]*:.*\n(?:.*\n){{0,2}}?[ \t*]*{_SENT_LABEL}[ \t*]*:",
    re.MULTILINE | re.IGNORECASE,
)


def strip_quoted(text: str, language: str) -> str:
    """The reply's own words: quoted history, signatures and disclaimers removed."""
    if not text.strip():
        return ""
    languages = [language] if language in MAIL_LANGUAGES else ["en"]
    message = EmailReplyParser(languages=languages).read(text)
    body = message.replies[0].body if message.replies else text.strip()
    # Also for listed languages: mail-parser-reply 1.36's Spanish "El ... escribió:"
    # pattern excludes itself with a look-ahead and never matches.
    cuts = [m.start() for m in (pattern.search(body) for pattern in _CUTS) if m]
    return str(body[: min(cuts)].strip() if cuts else body)


def strip_quoted_html(html: str, language: str) -> str:
    """The words of an HTML-only reply, its quoted history cut like a text reply's."""
    return strip_quoted(html_text(html), language)


def html_text(html: str) -> str:
    """Visible text of an HTML reply up to its first quote container."""
    parser = _TextBeforeQuote()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.pieces).splitlines())
    return "\n".join(lines).strip()


_CUTS = (_QUOTE_HEADER, _HEADER_BLOCK, _ATTRIBUTION)


class _TextBeforeQuote(HTMLParser):
    _HIDDEN = frozenset({"script", "style", "head", "title"})
    _BREAKS = frozenset({"br", "p", "div", "li", "tr", "blockquote", "h1", "h2", "h3", "hr"})
    _QUOTE_CLASSES = frozenset({"gmail_quote", "moz-cite-prefix", "yahoo_quoted"})
    _QUOTE_IDS = frozenset(
        {"appendonsend", "divrplyfwdmsg", "mail-editor-reference-message-container"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self._hidden = 0
        self._quoted = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._quoted or self._starts_quote(tag, dict(attrs)):
            self._quoted = True
            return
        if tag in self._HIDDEN:
            self._hidden += 1
        if tag in self._BREAKS:
            self.pieces.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden and not self._quoted:
            self.pieces.append(data)

    def _starts_quote(self, tag: str, attrs: dict[str, str | None]) -> bool:
        if tag == "blockquote" and (attrs.get("type") or "").lower() == "cite":
            return True
        classes = {_unprefixed(name) for name in (attrs.get("class") or "").split()}
        return bool(classes & self._QUOTE_CLASSES) or (
            _unprefixed(attrs.get("id") or "") in self._QUOTE_IDS
        )


def _unprefixed(name: str) -> str:
    # Outlook prefixes "x_" to the ids and classes of a message it quotes again.
    name = name.lower()
    while name.startswith("x_"):
        name = name[2:]
    return name
