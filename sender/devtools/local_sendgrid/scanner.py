"""A simulated corporate mail gateway: every link of each delivered message, fetched at once.

Microsoft Safe Links, Mimecast, Proofpoint and Barracuda fetch the links of
an incoming message seconds after delivery, before anyone reads it, some with
HEAD, most with an ordinary browser's user agent (mautic/mautic#9798 and
#16263 describe the pattern). `scan` does the same to the mail this server
recorded: per recipient, every http(s) href of the HTML as delivered (after
click-tracking rewrites and substitution, so the hidden honeypot too), HEAD
with a scanner's agent, then GET with a browser's, never following redirects.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests

from sender.devtools.local_sendgrid.link_tracking import Delivered, delivered, trackable
from sender.devtools.local_sendgrid.store import Store
from sender.devtools.local_sendgrid.webhooks import USER_AGENTS

SCANNER_AGENT = "Mozilla/5.0 (compatible; Mimecast-URL-Protect/1.0)"
BROWSER_AGENT = USER_AGENTS[0]  # what Safe Links sends: a desktop Chrome
# (method, user agent) per link, in order.
PASSES: tuple[tuple[str, str], ...] = (("HEAD", SCANNER_AGENT), ("GET", BROWSER_AGENT))

Fetch = Callable[[str, str, str], int]


def http_fetch(method: str, url: str, agent: str) -> int:
    answer = requests.request(
        method, url, headers={"User-Agent": agent}, allow_redirects=False, timeout=10
    )
    return answer.status_code


@dataclass(frozen=True)
class Scanned:
    email: str
    fetches: int
    seconds: float  # from the start of the scan to this message's last fetch


def scan_one(
    email: str,
    message: Delivered,
    fetch: Fetch,
    started: float,
    passes: tuple[tuple[str, str], ...],
) -> Scanned:
    links = list(dict.fromkeys(link for link in message.links if trackable(link)))
    count = 0
    for link in links:
        for method, agent in passes:
            fetch(method, link, agent)
            count += 1
    return Scanned(email, count, time.monotonic() - started)


def scan(
    messages: Iterable[tuple[str, Delivered]],
    fetch: Fetch = http_fetch,
    passes: tuple[tuple[str, str], ...] = PASSES,
    workers: int = 8,
) -> list[Scanned]:
    """Fetch every link of every message, several messages at a time, like a gateway."""
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [
            pool.submit(scan_one, email, message, fetch, started, passes)
            for email, message in messages
        ]
        return [future.result() for future in futures]


def scan_request(
    store: Store, data: dict[str, Any], server_url: str, account_default: bool
) -> dict[str, Any]:
    """`POST /_admin/scan`: {"after_id": n, "emails": [...], "methods": ["HEAD", "GET"]}."""
    after = int(data.get("after_id", 0))
    wanted = {str(e).lower() for e in data.get("emails") or []}
    methods = [str(m).upper() for m in data.get("methods") or ("HEAD", "GET")]
    passes = tuple(p for p in PASSES if p[0] in methods)
    chosen: list[tuple[str, Delivered]] = []
    while page := store.recipients(limit=1000, after_id=after):
        after = page[-1]["id"]
        for recipient in page:
            if wanted and recipient["email"].lower() not in wanted:
                continue
            found = store.sent(recipient["id"])
            if found is not None:
                row, body = found
                chosen.append((row["email"], delivered(row, body, server_url, account_default)))
    results = scan(chosen, passes=passes)
    return {
        "messages": len(results),
        "fetches": sum(r.fetches for r in results),
        "seconds": round(max((r.seconds for r in results), default=0.0), 3),
    }
