"""Helpers for event webhook tests: a signing key, signed requests, sample events."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select

from sender.core.config import Settings
from sender.core.models import Event
from sender.track.providers.sendgrid_signature import SIGNATURE_HEADER, TIMESTAMP_HEADER
from sender.web import create_app

URL = "/webhooks/sendgrid/events"


@dataclass(frozen=True)
class Signer:
    private_key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls) -> Signer:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @property
    def public_b64(self) -> str:
        der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def headers(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self.private_key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            SIGNATURE_HEADER: base64.b64encode(signature).decode(),
            TIMESTAMP_HEADER: stamp,
            "Content-Type": "application/json",
        }


def event(n: int, kind: str = "delivered", **extra: Any) -> dict[str, Any]:
    return {
        "email": f"person{n}@example.org",
        "timestamp": 1_606_000_000 + n,
        "event": kind,
        "sg_event_id": f"evt-{kind}-{n}",
        "sg_message_id": f"msg{n}.filter",
        **extra,
    }


def body_of(events: Any) -> bytes:
    return json.dumps(events).encode()


def stored_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(Event)) or 0)


def url_of(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def app_for(engine: Engine, signer: Signer, **overrides: Any) -> Flask:
    values: dict[str, Any] = {"redis_url": None, **overrides}
    settings = Settings(
        database_url=url_of(engine),
        secret_key="test-secret",
        sendgrid_webhook_public_key=signer.public_b64,
        **values,
    )
    app = create_app(settings)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def signer() -> Signer:
    return Signer.generate()


@pytest.fixture
def client(any_engine: Engine, signer: Signer) -> Iterator[FlaskClient]:
    with app_for(any_engine, signer).test_client() as test_client:
        yield test_client
