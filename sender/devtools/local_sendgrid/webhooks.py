"""What the local SendGrid posts back: signed event batches (inbound replies: inbound_mail).

Events are signed like SendGrid signs them (ECDSA P-256, SHA-256 over
timestamp + raw body; base64 DER signature; the public key shown as base64
DER SubjectPublicKeyInfo), so the receiving side can be tested with the
official `sendgrid.helpers.eventwebhook.EventWebhook` verifier.
"""

from __future__ import annotations

import base64
import json
import random
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
BATCH_BYTES = 768 * 1024
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Mobile",
)


class Signer:
    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key

    @classmethod
    def load_or_create(cls, path: Path | None) -> Signer:
        """The key in `path` (PEM), created there when missing; else a fresh key."""
        if path is not None and path.exists():
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(loaded, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{path} does not hold an EC private key")
            return cls(loaded)
        key = ec.generate_private_key(ec.SECP256R1())
        if path is not None:
            path.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        return cls(key)

    @property
    def public_key(self) -> str:
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def sign(self, timestamp: str, body: bytes) -> str:
        signature = self._key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(signature).decode()

    def headers(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        return {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: self.sign(stamp, body),
            TIMESTAMP_HEADER: stamp,
        }


@dataclass(frozen=True)
class Scenario:
    open_rate: float = 0.0
    machine_open_rate: float = 0.0
    click_rate: float = 0.0
    bounce_rate: float = 0.0
    spam_rate: float = 0.0
    unsubscribe_rate: float = 0.0
    # SendGrid drops a message before sending it, giving a reason: any text, e.g. one of
    # sender.track.providers.sendgrid.SENDGRID_DROP_REASONS or one it does not know.
    drop_rate: float = 0.0
    drop_reason: str = "Bounced Address"
    seed: int = 0
    # A planted better (or worse) subject: people who open a mail whose subject holds
    # one of these texts click at its rate instead of `click_rate` (a subject test's B).
    subject_click_rates: tuple[tuple[str, float], ...] = ()

    def click_rate_for(self, subject: str) -> float:
        return next((r for text, r in self.subject_click_rates if text in subject), self.click_rate)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Scenario:
        fields = cls.__dataclass_fields__
        unknown = set(data) - set(fields) - {"message_id"}
        if unknown:
            raise ValueError(f"unknown scenario keys: {', '.join(sorted(unknown))}")
        rates = {k: float(v) for k, v in data.items() if k.endswith("_rate") and k in fields}
        if any(not 0.0 <= r <= 1.0 for r in rates.values()):
            raise ValueError("scenario rates must lie between 0 and 1")
        # Any text: an unknown reason is what SendGrid may send one day.
        drop_reason = str(data.get("drop_reason", cls.drop_reason))
        planted = tuple(
            (str(text), float(rate))
            for text, rate in dict(data.get("subject_click_rates") or {}).items()
        )
        if any(not 0.0 <= r <= 1.0 for _, r in planted):
            raise ValueError("scenario rates must lie between 0 and 1")
        return cls(
            seed=int(data.get("seed", 0)),
            drop_reason=drop_reason,
            subject_click_rates=planted,
            **rates,
        )


def _event(recipient: dict[str, Any], kind: str, at: int, **extra: Any) -> dict[str, Any]:
    # Custom args first: SendGrid puts them at the top level, its own keys win.
    event: dict[str, Any] = dict(recipient["custom_args"])
    event.update(
        email=recipient["email"],
        timestamp=at,
        event=kind,
        sg_event_id=uuid.uuid4().hex,
        sg_message_id=recipient["sg_message_id"],
    )
    categories = list(recipient["categories"])
    if categories:  # like SendGrid: a string for one category, a list for several
        event["category"] = categories[0] if len(categories) == 1 else categories
    event.update(extra)
    return event


def events_for(
    recipient: dict[str, Any], scenario: Scenario, rng: random.Random
) -> list[dict[str, Any]]:
    """processed, then bounce or delivered, then the reader's reactions."""
    at = int(time.time())
    # Drawn only when asked for, so that seeded scenarios without drops stay as they were.
    if scenario.drop_rate and rng.random() < scenario.drop_rate:
        # A dropped message is never delivered; modelled here with the drop as its only
        # event (SendGrid's Event Webhook reference, "dropped": a `reason`, no `response`).
        return [_event(recipient, "dropped", at, reason=scenario.drop_reason)]
    out = [_event(recipient, "processed", at)]
    if rng.random() < scenario.bounce_rate:
        kind = rng.choice(("bounce", "blocked"))
        out.append(
            _event(
                recipient,
                "bounce",
                at + 1,
                type=kind,
                status="5.1.1",
                reason="mailbox unavailable",
                # Event Webhook reference, bounce: SendGrid's class of the refusal.
                bounce_classification="Invalid Address" if kind == "bounce" else "Reputation",
            )
        )
        return out
    out.append(_event(recipient, "delivered", at + 1, response="250 OK"))
    if rng.random() < scenario.machine_open_rate:
        out.append(_event(recipient, "open", at + 2, sg_machine_open=True, useragent="Mozilla/5.0"))
    human_open = rng.random() < scenario.open_rate
    if human_open:
        agent = rng.choice(USER_AGENTS)
        out.append(
            _event(
                recipient, "open", at + 60, sg_machine_open=False, useragent=agent, ip="203.0.113.7"
            )
        )
    clicks = scenario.click_rate_for(str(recipient.get("subject") or ""))
    if human_open and rng.random() < clicks and recipient.get("links"):
        url = rng.choice(recipient["links"])
        out.append(
            _event(recipient, "click", at + 90, url=url, useragent=USER_AGENTS[0], ip="203.0.113.7")
        )
    if rng.random() < scenario.spam_rate:
        out.append(_event(recipient, "spamreport", at + 120))
    elif rng.random() < scenario.unsubscribe_rate:
        out.append(_event(recipient, "unsubscribe", at + 120))
    return out


def batches(events: Iterable[object], limit: int = BATCH_BYTES) -> Iterator[bytes]:
    """JSON arrays of at most `limit` bytes (one event bigger than that goes alone)."""
    pending: list[bytes] = []
    size = 2
    for event in events:
        encoded = json.dumps(event, separators=(",", ":")).encode()
        if pending and size + len(encoded) + 1 > limit:
            yield b"[" + b",".join(pending) + b"]"
            pending, size = [], 2
        pending.append(encoded)
        size += len(encoded) + 1
    if pending:
        yield b"[" + b",".join(pending) + b"]"


def post_signed(url: str, body: bytes, signer: Signer, timeout: float = 30.0) -> int:
    answer = requests.post(url, data=body, headers=signer.headers(body), timeout=timeout)
    return answer.status_code
