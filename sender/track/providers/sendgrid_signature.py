"""Signed Event Webhook requests: ECDSA P-256 over `timestamp + raw body`.

SendGrid's own helper checks the signature but not the timestamp's age, so
the age check lives here. A timestamp older than the tolerance (by default
SendGrid's 24 h retry horizon plus a margin, `core.config`) or more than a
small clock skew in the future is refused. Inside the tolerance a replayed
batch is accepted and changes nothing, because events are deduplicated on
sg_event_id. Verification runs over the raw bytes, never over re-serialised
JSON.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from sender.core.config import WEBHOOK_TOLERANCE_SECONDS, Settings
from sender.core.errors import ConfigError
from sender.track.providers.base import RequestHeaders, SignatureRefused

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"

# A genuine timestamp is never in the future; this much covers SendGrid's clock
# running ahead of ours. Far less than the age tolerance: a signature dated
# ahead would otherwise stay replayable for longer than any retry needs.
CLOCK_SKEW_SECONDS = 300


@dataclass(frozen=True)
class WebhookVerifier:
    public_key: ec.EllipticCurvePublicKey
    # None disables the age check: only for replaying SendGrid's published test vector.
    tolerance_seconds: int | None = WEBHOOK_TOLERANCE_SECONDS
    max_future_seconds: int = CLOCK_SKEW_SECONDS

    def verify_request(self, headers: RequestHeaders, body: bytes, now: datetime) -> None:
        """The registry's hook: the signature and timestamp come in SendGrid's headers."""
        self.verify(body, headers.get(SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER), now)

    def verify(
        self, body: bytes, signature: str | None, timestamp: str | None, now: datetime
    ) -> None:
        """Return quietly when the request is genuine and fresh; raise SignatureRefused if not."""
        if not signature or not timestamp:
            raise SignatureRefused("missing signature or timestamp header")
        self._check_age(timestamp, now)
        try:
            decoded = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError) as error:
            raise SignatureRefused("signature is not base64") from error
        try:
            self.public_key.verify(
                decoded, timestamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256())
            )
        except (InvalidSignature, ValueError) as error:
            raise SignatureRefused("signature does not match the body and timestamp") from error

    def _check_age(self, timestamp: str, now: datetime) -> None:
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            raise SignatureRefused("timestamp header is not a number of seconds")
        if self.tolerance_seconds is None:
            return
        age = now.timestamp() - int(timestamp)
        if age > self.tolerance_seconds:
            raise SignatureRefused(f"timestamp is {int(age)} s old: refused as a replay")
        if -age > self.max_future_seconds:
            raise SignatureRefused(f"timestamp is {int(-age)} s in the future")


def load_public_key(encoded: str) -> ec.EllipticCurvePublicKey:
    """The key as shown in SendGrid's Mail Settings: base64 of a DER SubjectPublicKeyInfo."""
    try:
        key = load_der_public_key(base64.b64decode(encoded.strip(), validate=True))
    except (binascii.Error, ValueError, UnsupportedAlgorithm) as error:
        raise ConfigError(f"SENDGRID_WEBHOOK_PUBLIC_KEY is not base64 DER: {error}") from error
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ConfigError("SENDGRID_WEBHOOK_PUBLIC_KEY is not an elliptic-curve key")
    return key


def verifier_from(encoded_key: str | None, tolerance_seconds: int) -> WebhookVerifier:
    if not encoded_key:
        raise ConfigError("SENDGRID_WEBHOOK_PUBLIC_KEY is not set: event webhooks are refused")
    return WebhookVerifier(load_public_key(encoded_key), tolerance_seconds)


def verifier_for(settings: Settings) -> WebhookVerifier:
    return verifier_from(settings.sendgrid_webhook_public_key, settings.webhook_tolerance_seconds)
