"""Click tracking as SendGrid applies it to the mail the local server accepted.

SendGrid rewrites an `href` only when it literally begins with `http://` or
`https://` in the body as sent, before substitution: a link that is entirely
a substitution tag (the project's `-action_url-`) is left alone (SendGrid
docs, "Click Tracking: HTML best practices"; noted in the project's SendGrid
facts). `tracking_settings.click_tracking.enable` in the request decides; when
the request says nothing, the account's setting does (`--click-tracking` on
this server, off unless given). `enable_text` extends it to the text part,
where every http(s) URL is rewritten (sendgrid/docs issue #5611 reports
exactly that behaviour for plain-text mail).

A rewritten link points at this server, `/wf/click/<recipient id>/<n>`.
Fetched, it posts a signed `click` event (the original `url`, the fetch's
`useragent`; shape from SendGrid's Event Webhook reference, "click") to the
events URL, then redirects to the original, as SendGrid's tracking host does.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sender.devtools.local_sendgrid.webhooks import Signer, _event, batches, post_signed
from sender.render.merge import personalise

CLICK_PREFIX = "/wf/click/"
_HREF = re.compile(r"""(href\s*=\s*)(["'])([^"']*)(\2)""", re.IGNORECASE)
_TEXT_URL = re.compile(r"""https?://[^\s<>"']+""")
_PART = {"html": "text/html", "text": "text/plain"}


@dataclass(frozen=True)
class ClickTracking:
    html: bool
    text: bool


@dataclass(frozen=True)
class Delivered:
    """One recipient's message as it reaches the mailbox: rewritten, then substituted."""

    html: str
    text: str
    links: tuple[str, ...]  # every href of the delivered HTML, in order


def click_tracking(body: dict[str, Any], account_default: bool) -> ClickTracking:
    """What the request's `tracking_settings` ask for, the account default filling gaps."""
    settings = (body.get("tracking_settings") or {}).get("click_tracking")
    if not isinstance(settings, dict) or "enable" not in settings:
        return ClickTracking(account_default, account_default)
    enabled = settings.get("enable") is True
    return ClickTracking(enabled, enabled and settings.get("enable_text") is True)


def trackable(href: str) -> bool:
    """Literally http(s), as sent: a substitution tag is never tracked."""
    return href.startswith(("http://", "https://"))


def part(body: dict[str, Any], kind: str) -> str:
    return next((c["value"] for c in body.get("content") or [] if c.get("type") == _PART[kind]), "")


def targets(body: dict[str, Any], tracking: ClickTracking) -> list[str]:
    """The links SendGrid would rewrite, numbered: HTML hrefs first, then text URLs."""
    found = [
        h for _, _, h, _ in _HREF.findall(part(body, "html")) if tracking.html and trackable(h)
    ]
    if tracking.text:
        found += _TEXT_URL.findall(part(body, "text"))
    return found


def delivered(
    recipient: dict[str, Any], body: dict[str, Any], server_url: str, account_default: bool
) -> Delivered:
    tracking = click_tracking(body, account_default)
    counter = iter(range(1_000_000))

    def click_url() -> str:
        return f"{server_url}{CLICK_PREFIX}{recipient['id']}/{next(counter)}"

    def href(match: re.Match[str]) -> str:
        prefix, quote, value, _ = match.groups()
        if tracking.html and trackable(value):
            value = click_url()
        return f"{prefix}{quote}{value}{quote}"

    html = _HREF.sub(href, part(body, "html"))
    text = part(body, "text")
    if tracking.text:
        text = _TEXT_URL.sub(lambda _: click_url(), text)
    subs = recipient["substitutions"]
    html, text = personalise(html, subs), personalise(text, subs)
    return Delivered(html, text, tuple(h for _, _, h, _ in _HREF.findall(html)))


@dataclass(frozen=True)
class Followed:
    status: int
    location: str | None = None
    posted: int | None = None  # the events URL's answer, when a click was posted


def follow(
    path: str,
    lookup: Callable[[int], tuple[dict[str, Any], dict[str, Any]] | None],
    account_default: bool,
    user_agent: str | None,
    events: tuple[str, Signer] | None,
) -> Followed:
    """A fetch of a rewritten link: post its `click`, redirect to the original."""
    try:
        recipient_id, number = (int(p) for p in path.removeprefix(CLICK_PREFIX).split("/"))
    except ValueError:
        return Followed(404)
    found = lookup(recipient_id)
    if found is None:
        return Followed(404)
    recipient, body = found
    links = targets(body, click_tracking(body, account_default))
    if not 0 <= number < len(links):
        return Followed(404)
    original = personalise(links[number], recipient["substitutions"])
    posted = None
    if events is not None:
        extra: dict[str, Any] = {"url": original}
        if user_agent:
            extra["useragent"] = user_agent
        event = _event(recipient, "click", int(time.time()), **extra)
        url, signer = events
        posted = post_signed(url, next(batches([event])), signer)
    return Followed(302, original, posted)
