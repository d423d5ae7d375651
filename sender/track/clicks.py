"""Machine clicks apart from people's clicks: the rules, as pure functions.

Corporate mail gateways (Microsoft Safe Links, Mimecast, Proofpoint,
Barracuda) fetch every link of a message seconds after delivery, before
anyone reads it. Each fetch of an email's link becomes a `LinkFetch` of the
signals a scanner gives away; `classify` gives its `ClickVerdict`. The rules,
their windows and their limits are in docs/TRACKING.md; the database side
(what a fetch records, and re-classifying a click when evidence follows) is
sender.track.link_clicks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sender.core.config import Settings
from sender.core.vocabulary import ClickClass, LinkTarget, MachineSign

# Product tokens no person's browser sends. Most gateways fetch with an
# ordinary browser user agent (Safe Links sends a desktop Chrome one), so this
# list only catches the honest ones and script libraries; timing and the
# honeypot catch the rest. Each entry is matched case-insensitively anywhere
# in the user agent, except the generic words, which must end a product name
# ("Googlebot/2.1", not the "CUBOT" phone brand).
SCANNER_AGENT_WORDS: tuple[str, ...] = (
    "barracuda",
    "mimecast",
    "proofpoint",
    "urldefense",
    "safelinks",
    "bingpreview",
    "headlesschrome",
    "phantomjs",
    "python-requests",
    "python-urllib",
    "aiohttp",
    "go-http-client",
    "okhttp",
    "libwww-perl",
    "curl/",
    "wget/",
    "java/",
)
_GENERIC = re.compile(r"[a-z0-9._-]*(?:bot|spider|crawler|scanner)/", re.IGNORECASE)


@dataclass(frozen=True)
class Windows:
    """How close in time (seconds in Settings) a fetch must be to count as a machine's."""

    delivery: timedelta  # after the message was sent or delivered
    burst: timedelta  # after another fetch of the same message

    @classmethod
    def from_settings(cls, settings: Settings) -> Windows:
        return cls(
            timedelta(seconds=settings.click_delivery_window_seconds),
            timedelta(seconds=settings.click_burst_window_seconds),
        )


@dataclass(frozen=True)
class EarlierFetch:
    """Another fetch of a link of the same message, as already classified."""

    target: LinkTarget
    fetched_at: datetime
    machine: bool


@dataclass(frozen=True)
class LinkFetch:
    """The signals of one fetch of an email's link; no address, nothing kept of the agent."""

    target: LinkTarget
    method: str
    user_agent: str | None
    fetched_at: datetime
    # When the message left and reached the mailbox, as far as known (sent_at,
    # the provider's `delivered` events); empty for previews and staff tests.
    delivered_at: tuple[datetime, ...] = ()
    earlier: tuple[EarlierFetch, ...] = ()


@dataclass(frozen=True)
class ClickVerdict:
    kind: ClickClass
    reason: MachineSign | None = None

    @property
    def machine(self) -> bool:
        return self.kind is ClickClass.MACHINE


HUMAN = ClickVerdict(ClickClass.HUMAN)


def machine(reason: MachineSign) -> ClickVerdict:
    return ClickVerdict(ClickClass.MACHINE, reason)


# The honeypot is the action link plus this path (templates/layout.html, web/links.py).
HONEYPOT_SUFFIX = "/x"


def is_honeypot_url(url: str | None, public_base_url: str) -> bool:
    """A fetch of the hidden link, e.g. reported by a provider's click tracking."""
    if not url:
        return False
    path = url.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    prefix = public_base_url.rstrip("/") + "/a/"
    if not path.startswith(prefix):
        return False
    token, _, tail = path[len(prefix) :].partition("/")
    return bool(token) and "/" + tail == HONEYPOT_SUFFIX


def is_scanner_agent(user_agent: str | None) -> bool:
    """A known scanner, a script library, or no user agent at all (browsers always send one)."""
    agent = (user_agent or "").strip().lower()
    if not agent:
        return True
    return any(word in agent for word in SCANNER_AGENT_WORDS) or bool(_GENERIC.search(agent))


def right_after_delivery(fetch: LinkFetch, window: timedelta) -> bool:
    """Fetched before, or within `window` of, the message leaving or being delivered."""
    return any(fetch.fetched_at - moment <= window for moment in fetch.delivered_at)


def in_burst(fetch: LinkFetch, window: timedelta) -> bool:
    """Another link of the message, or a machine's fetch of this one, seconds before.

    The same link fetched twice by people (a double click) is no burst.
    """
    return any(
        abs(fetch.fetched_at - other.fetched_at) <= window
        and (other.target is not fetch.target or other.machine)
        for other in fetch.earlier
    )


def classify(fetch: LinkFetch, windows: Windows) -> ClickVerdict:
    """The first rule that matches names the reason; no rule matching is a person."""
    if fetch.target is LinkTarget.HONEYPOT:
        return machine(MachineSign.HONEYPOT)
    if fetch.method.upper() == "HEAD":
        return machine(MachineSign.HEAD_REQUEST)
    if is_scanner_agent(fetch.user_agent):
        return machine(MachineSign.SCANNER_AGENT)
    if right_after_delivery(fetch, windows.delivery):
        return machine(MachineSign.RIGHT_AFTER_DELIVERY)
    if in_burst(fetch, windows.burst):
        return machine(MachineSign.BURST)
    return HUMAN


def taints(evidence_at: datetime, click_at: datetime, window: timedelta) -> bool:
    """Machine evidence at `evidence_at` unmasks a click taken for a person's at `click_at`."""
    return timedelta(0) <= evidence_at - click_at <= window
