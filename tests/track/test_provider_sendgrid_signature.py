"""Signature and timestamp checks, including SendGrid's published test vector."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from webhook_fixtures import Signer

from sender.core.config import Settings
from sender.core.errors import ConfigError
from sender.track.providers.base import SignatureRefused
from sender.track.providers.sendgrid_signature import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookVerifier,
    load_public_key,
    verifier_for,
    verifier_from,
)

HOUR = 3600

# Published in sendgrid/sendgrid-python, test/unit/test_eventwebhook.py.
SG_PUBLIC_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3G"
    "Rqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
)
SG_SIGNATURE = (
    "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+"
    "uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM="
)
SG_TIMESTAMP = "1600112502"
SG_PAYLOAD = (
    json.dumps(
        [
            {
                "email": "hello@world.com",
                "event": "dropped",
                "reason": "Bounced Address",
                "sg_event_id": "ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",
                "sg_message_id": (
                    "LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0"
                ),
                "smtp-id": "<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>",
                "timestamp": 1600112492,
            }
        ],
        sort_keys=True,
        separators=(",", ":"),
    )
    + "\r\n"
).encode()
SG_TIME = datetime.fromtimestamp(int(SG_TIMESTAMP), UTC)


def test_sendgrid_test_vector_is_accepted_without_age_check() -> None:
    verifier = WebhookVerifier(load_public_key(SG_PUBLIC_KEY), tolerance_seconds=None)
    verifier.verify(SG_PAYLOAD, SG_SIGNATURE, SG_TIMESTAMP, datetime.now(UTC))


def test_sendgrid_test_vector_tampered_twin_is_refused() -> None:
    verifier = WebhookVerifier(load_public_key(SG_PUBLIC_KEY), tolerance_seconds=None)
    twin = SG_PAYLOAD.replace(b"hello@world.com", b"hello@world.org")
    with pytest.raises(SignatureRefused, match="does not match"):
        verifier.verify(twin, SG_SIGNATURE, SG_TIMESTAMP, SG_TIME)
    with pytest.raises(SignatureRefused, match="does not match"):
        verifier.verify(SG_PAYLOAD, SG_SIGNATURE, "1600112503", SG_TIME)


def test_sendgrid_test_vector_is_stale_today() -> None:
    verifier = WebhookVerifier(load_public_key(SG_PUBLIC_KEY), tolerance_seconds=600)
    verifier.verify(SG_PAYLOAD, SG_SIGNATURE, SG_TIMESTAMP, SG_TIME + timedelta(seconds=600))
    with pytest.raises(SignatureRefused, match="replay"):
        verifier.verify(SG_PAYLOAD, SG_SIGNATURE, SG_TIMESTAMP, datetime.now(UTC))


def test_future_timestamp_is_refused() -> None:
    signer = Signer.generate()
    verifier = WebhookVerifier(load_public_key(signer.public_b64), 600)
    now = datetime.now(UTC)
    headers = signer.headers(b"[]", timestamp=int(now.timestamp()) + 601)
    with pytest.raises(SignatureRefused, match="future"):
        verifier.verify(
            b"[]",
            headers["X-Twilio-Email-Event-Webhook-Signature"],
            headers["X-Twilio-Email-Event-Webhook-Timestamp"],
            now,
        )


def _verify_at(verifier: WebhookVerifier, signer: Signer, body: bytes, age: int) -> None:
    """Verify `body` signed `age` seconds before now (negative: in the future)."""
    now = datetime.now(UTC)
    headers = signer.headers(body, timestamp=int(now.timestamp()) - age)
    verifier.verify(body, headers[SIGNATURE_HEADER], headers[TIMESTAMP_HEADER], now)


def _default_verifier(signer: Signer) -> WebhookVerifier:
    return verifier_for(Settings(sendgrid_webhook_public_key=signer.public_b64))


def test_default_tolerance_reaches_past_sendgrids_24_hour_retry_horizon() -> None:
    assert Settings().webhook_tolerance_seconds > 24 * HOUR
    assert _default_verifier(Signer.generate()).tolerance_seconds == (
        Settings().webhook_tolerance_seconds
    )


@pytest.mark.parametrize("age", [0, 11 * 60, HOUR, 23 * HOUR, 24 * HOUR + 30 * 60, -4 * 60])
def test_signatures_inside_the_retry_horizon_are_accepted_by_default(age: int) -> None:
    signer = Signer.generate()
    _verify_at(_default_verifier(signer), signer, b"[]", age)


@pytest.mark.parametrize("age", [25 * HOUR + 60, 30 * 24 * HOUR])
def test_signatures_past_the_retry_horizon_are_refused_by_default(age: int) -> None:
    signer = Signer.generate()
    with pytest.raises(SignatureRefused, match="refused as a replay"):
        _verify_at(_default_verifier(signer), signer, b"[]", age)


@pytest.mark.parametrize("ahead", [6 * 60, HOUR, 23 * HOUR])
def test_future_signatures_past_the_clock_skew_are_refused_by_default(ahead: int) -> None:
    signer = Signer.generate()
    with pytest.raises(SignatureRefused, match="future"):
        _verify_at(_default_verifier(signer), signer, b"[]", -ahead)


def test_tampered_body_with_an_old_timestamp_is_refused_and_its_twin_accepted() -> None:
    signer = Signer.generate()
    verifier = _default_verifier(signer)
    body = b'[{"email":"a@example.org","event":"unsubscribe","sg_event_id":"e1"}]'
    now = datetime.now(UTC)
    headers = signer.headers(body, timestamp=int(now.timestamp()) - 23 * HOUR)
    signature, stamp = headers[SIGNATURE_HEADER], headers[TIMESTAMP_HEADER]
    with pytest.raises(SignatureRefused, match="does not match"):
        verifier.verify(body.replace(b"a@", b"b@"), signature, stamp, now)
    with pytest.raises(SignatureRefused, match="does not match"):
        verifier.verify(body, signature, str(int(stamp) + 1), now)
    verifier.verify(body, signature, stamp, now)  # the genuine request still passes


@pytest.mark.parametrize("key", ["", "not-base64!", "aGVsbG8="])
def test_bad_configured_keys_are_config_errors(key: str) -> None:
    with pytest.raises(ConfigError):
        verifier_from(key, 600)


def test_rsa_key_is_refused() -> None:
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    der = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(ConfigError, match="elliptic"):
        load_public_key(base64.b64encode(der).decode())
