"""Legacy and malformed events, so tests can see what the webhook does with them.

`POST /_admin/simulate` takes `legacy_rate` (the share of events altered) and
`legacy_kinds` (which alterations, taken in turn; default: every legacy kind).
The shapes, and where each comes from:

- `no_id`: no `sg_event_id`. SendGrid's Event Webhook troubleshooting page says
  to deduplicate on it "where sg_event_id is present", and its own curl example
  posts events without one (older payloads).
- `long_id`: an `sg_event_id` of 160 characters. The same page documents it as a
  base64url string "up to 100 characters"; issue 12's review found ids can exceed
  100 and SendGrid states no upper bound, so the webhook must take any length.
- `string_timestamp`, `ms_timestamp`, `float_timestamp`: the reference documents
  `timestamp` as a unix time in seconds (an integer); integrations that re-post
  events send it as a string, in milliseconds or with a fraction.

Malformed kinds, which the webhook cannot store as events and keeps raw:
`no_type` (no `event`), `no_timestamp`, `bad_timestamp` ("yesterday"),
`not_an_object` (the event JSON-encoded again, as a string) and `nul_text` (a NUL
character in `reason`, which PostgreSQL's jsonb refuses).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

LEGACY_KINDS = ("no_id", "long_id", "string_timestamp", "ms_timestamp", "float_timestamp")
MALFORMED_KINDS = ("no_type", "no_timestamp", "bad_timestamp", "not_an_object", "nul_text")
LONG_ID_LENGTH = 160
_URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _without(event: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != key}


def _long_id(event: dict[str, Any]) -> str:
    # Stable per event: a retried copy of the same event keeps the same long id.
    seed = str(event.get("sg_event_id", ""))
    rng = random.Random(seed)
    return "".join(rng.choice(_URLSAFE) for _ in range(LONG_ID_LENGTH))


ALTERATIONS: Mapping[str, Callable[[dict[str, Any]], object]] = {
    "no_id": lambda e: _without(e, "sg_event_id"),
    "long_id": lambda e: {**e, "sg_event_id": _long_id(e)},
    "string_timestamp": lambda e: {**e, "timestamp": str(e["timestamp"])},
    "ms_timestamp": lambda e: {**e, "timestamp": int(e["timestamp"]) * 1000 + 123},
    "float_timestamp": lambda e: {**e, "timestamp": int(e["timestamp"]) + 0.25},
    "no_type": lambda e: _without(e, "event"),
    "no_timestamp": lambda e: _without(e, "timestamp"),
    "bad_timestamp": lambda e: {**e, "timestamp": "yesterday"},
    "not_an_object": lambda e: orjson.dumps(e).decode(),
    "nul_text": lambda e: {**e, "reason": "stray \u0000 byte"},
}


def alter(event: dict[str, Any], kind: str) -> object:
    """The event as an older or broken sender would post it."""
    return ALTERATIONS[kind](event)


@dataclass(frozen=True)
class LegacyMix:
    """Which share of simulated events is altered, and how (kinds taken in turn)."""

    rate: float = 0.0
    kinds: tuple[str, ...] = LEGACY_KINDS
    seed: int = 0

    @classmethod
    def pop_from(cls, data: dict[str, Any]) -> LegacyMix:
        """Takes this module's keys out of a simulate request (the rest is a Scenario)."""
        rate = float(data.pop("legacy_rate", 0.0))
        kinds = tuple(str(k) for k in data.pop("legacy_kinds", LEGACY_KINDS))
        if not 0.0 <= rate <= 1.0:
            raise ValueError("legacy_rate must lie between 0 and 1")
        unknown = sorted(set(kinds) - set(ALTERATIONS))
        if unknown or not kinds:
            known = ", ".join(ALTERATIONS)
            raise ValueError(f"legacy_kinds must be some of {known}; not {', '.join(unknown)}")
        return cls(rate, kinds, int(data.get("seed", 0)))

    def apply(
        self, events: Iterable[dict[str, Any]], count: Callable[[str], None] = lambda _: None
    ) -> Iterator[object]:
        if not self.rate:
            yield from events
            return
        # Its own generator: the scenario's draws stay as they were without a mix.
        rng = random.Random(f"legacy-{self.seed}")
        turn = 0
        for event in events:
            if rng.random() < self.rate:
                kind = self.kinds[turn % len(self.kinds)]
                turn += 1
                count(f"legacy_{kind}")
                yield alter(event, kind)
            else:
                yield event
