"""The local SendGrid's account-level behaviour, and the events it posts on request.

- A quota: after N more accepted recipients, every recipient accepted after them is
  dropped with "Recipient List over Package Quota" until the quota is lifted or the
  server reset. SendGrid still answers 202 (the request is valid); the drop comes as
  a `dropped` event, as the Event Webhook reference describes for this reason.
- Single events posted on demand (`POST /_admin/event`), in the shapes below, each
  written from SendGrid's Event Webhook reference (and the payloads in
  django-anymail's SendGrid tracking tests where they show one):
  `deferred`, `group_unsubscribe`, `group_resubscribe`, `bounce` (an asynchronous one,
  without our custom args), and `account_status_change`.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

QUOTA_REASON = "Recipient List over Package Quota"
EVENTS = ("deferred", "group_unsubscribe", "group_resubscribe", "bounce", "account_status_change")


class Quota:
    """Which recipient ids were accepted past the plan's quota (ids count from 1)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ranges: list[tuple[int, int | None]] = []  # dropped ids: (first, last or open)

    def limit(self, recipients: int | None, recorded: int) -> dict[str, Any]:
        """Allow `recipients` more (None: lift the quota); `recorded` is how many so far."""
        with self._lock:
            self._close(recorded)
            if recipients is not None:
                if recipients < 0:
                    raise ValueError("recipients must be 0 or more")
                self._ranges.append((recorded + recipients + 1, None))
        return self.as_json()

    def _close(self, recorded: int) -> None:
        if self._ranges and self._ranges[-1][1] is None:
            first, _ = self._ranges.pop()
            if recorded >= first:
                self._ranges.append((first, recorded))

    def reset(self) -> None:
        with self._lock:
            self._ranges.clear()

    def reason(self, recipient_id: int) -> str | None:
        with self._lock:
            ranges = list(self._ranges)
        for first, last in ranges:
            if recipient_id >= first and (last is None or recipient_id <= last):
                return QUOTA_REASON
        return None

    def mark(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Recorded recipients with `dropped` set where the quota dropped them."""
        if not self._ranges:
            return rows
        for row in rows:
            if not row.get("dropped"):
                row["dropped"] = self.reason(int(row["id"]))
        return rows

    def as_json(self) -> dict[str, Any]:
        with self._lock:
            return {"dropped_ranges": [list(r) for r in self._ranges]}


def build_event(data: Mapping[str, Any], recipient: Mapping[str, Any] | None) -> dict[str, Any]:
    """One event of kind `data["event"]`; `recipient` is the address's last recorded mail."""
    kind = str(data.get("event", ""))
    if kind not in EVENTS:
        raise ValueError(f"event must be one of {', '.join(EVENTS)}, not {kind!r}")
    at = int(data.get("timestamp") or time.time())
    if kind == "account_status_change":
        # Event Webhook reference, "Account change events": no recipient, only the
        # compliance action in `type` (compliance_suspend, compliance_deactivate,
        # compliance_ban, compliance_reactivate...).
        return {
            "event": kind,
            "sg_event_id": uuid.uuid4().hex,
            "timestamp": at,
            "type": str(data.get("type", "compliance_suspend")),
        }
    email = str(data["email"])
    if kind == "bounce":
        return _async_bounce(email, at, data, recipient)
    event = _about(email, at, kind, recipient)
    if kind == "deferred":
        # Event Webhook reference, "deferred": the receiving server's answer in
        # `response`, and how many times SendGrid has tried so far in `attempt`.
        event.update(
            response=str(data.get("response", "421 4.7.0 try again later")),
            attempt=str(data.get("attempt", "1")),
        )
    else:
        # Event Webhook reference, "group_unsubscribe" / "group_resubscribe": the
        # unsubscribe group in `asm_group_id` (an integer), with the browser's details.
        event.update(
            asm_group_id=int(data.get("asm_group_id", 1)),
            useragent="Mozilla/5.0 (X11; Linux x86_64)",
            ip="203.0.113.9",
        )
    return event


def _about(email: str, at: int, kind: str, recipient: Mapping[str, Any] | None) -> dict[str, Any]:
    # Custom args come back at the top level, as on every message event.
    event: dict[str, Any] = dict((recipient or {}).get("custom_args") or {})
    event.update(email=email, timestamp=at, event=kind, sg_event_id=uuid.uuid4().hex)
    if recipient is not None:
        event["sg_message_id"] = recipient["sg_message_id"]
    return event


def _async_bounce(
    email: str, at: int, data: Mapping[str, Any], recipient: Mapping[str, Any] | None
) -> dict[str, Any]:
    # A bounce the receiving domain sends back after accepting the mail: matched by
    # address and sg_message_id only, none of our custom args (the review of
    # SendGrid's payloads). `bounce_classification`, `reason`, `status` and `type` are
    # the Event Webhook reference's bounce fields.
    event: dict[str, Any] = {
        "email": email,
        "timestamp": at,
        "event": "bounce",
        "sg_event_id": uuid.uuid4().hex,
        "type": str(data.get("type", "bounce")),
        "status": str(data.get("status", "5.1.1")),
        "reason": str(data.get("reason", "550 5.1.1 mailbox does not exist")),
        "bounce_classification": str(data.get("bounce_classification", "Invalid Address")),
    }
    if recipient is not None:
        event["sg_message_id"] = recipient["sg_message_id"]
    return event
