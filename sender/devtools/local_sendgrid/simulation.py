"""The events the local SendGrid posts for what it recorded: a scenario's, per recipient.

A recipient SendGrid dropped gets one `dropped` event; every other one gets
`webhooks.events_for` (processed, delivered or bounce, then the reader's reactions).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from sender.devtools.local_sendgrid.legacy_events import LegacyMix
from sender.devtools.local_sendgrid.webhooks import Scenario, batches, events_for


def dropped_event(recipient: dict[str, Any], reason: str) -> dict[str, Any]:
    """A `dropped` event as SendGrid posts it, custom args at the top level."""
    event: dict[str, Any] = dict(recipient["custom_args"])
    event.update(
        email=recipient["email"],
        timestamp=int(time.time()),
        event="dropped",
        sg_event_id=uuid.uuid4().hex,
        sg_message_id=recipient["sg_message_id"],
        reason=reason,
        status="5.0.0",
    )
    categories = list(recipient["categories"])
    if categories:  # like SendGrid: a string for one category, a list for several
        event["category"] = categories[0] if len(categories) == 1 else categories
    return event


def _recipient_events(
    recipient: dict[str, Any], scenario: Scenario, rng: random.Random
) -> list[dict[str, Any]]:
    """A recipient SendGrid dropped gets one `dropped` event and nothing else.

    Shape from SendGrid's Event Webhook reference (event "dropped", `reason`
    and `status` "5.0.0"); django-anymail's sendgrid tracking tests show the same.
    """
    reason = recipient.get("dropped")
    if reason:
        return [dropped_event(recipient, reason)]
    return events_for(recipient, scenario, rng)


def simulate(
    page: Callable[[int], list[dict[str, Any]]],
    post: Callable[[bytes], int],
    scenario: Scenario,
    after_id: int = 0,
    legacy: LegacyMix | None = None,
    count: Callable[[str], None] = lambda _: None,
) -> tuple[int, list[int]]:
    """Post events for every recorded recipient after `after_id`, in ~768 KB signed batches.

    `page(after)` gives the next recorded recipients (at most 1,000, numbered from 1 in
    acceptance order); `post` signs and sends one batch and returns its answer's status.
    """
    rng = random.Random(scenario.seed)
    statuses: list[int] = []
    posted = 0
    after = after_id

    def events() -> Iterator[dict[str, Any]]:
        nonlocal after, posted
        while True:
            found = page(after)
            if not found:
                return
            after = found[-1]["id"]
            for recipient in found:
                for event in _recipient_events(recipient, scenario, rng):
                    posted += 1
                    yield event

    mix = legacy or LegacyMix()
    for batch in batches(mix.apply(events(), count)):
        statuses.append(post(batch))
    return posted, statuses
