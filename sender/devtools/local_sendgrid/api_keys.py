"""API keys and their scopes, checked the way SendGrid checks them.

SendGrid gives every key a set of scopes (permissions). `GET /v3/scopes`
returns the calling key's scopes as `{"scopes": [...]}` (API Key Permissions
reference); a key SendGrid does not know gets 401, a known key calling an
endpoint its scopes do not cover gets 403. The server's `--api-key` is a full
access key; `--key KEY=SCOPE,SCOPE` (or `POST /_admin/keys`) adds restricted
ones, such as a key without `mail.send`, which `campaign doctor` must refuse.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

MAIL_SEND = "mail.send"
# A representative part of what a full access key lists: the scopes this
# project's calls need and some of the rest, so a client that looks for one
# scope among many is exercised.
FULL_ACCESS = frozenset(
    {
        MAIL_SEND,
        "mail.batch.create",
        "mail.batch.read",
        "mail.batch.update",
        "mail.batch.delete",
        "user.scheduled_sends.create",
        "user.scheduled_sends.read",
        "user.scheduled_sends.update",
        "user.scheduled_sends.delete",
        "user.webhooks.event.settings.read",
        "user.webhooks.event.settings.update",
        "user.webhooks.parse.settings.read",
        "user.webhooks.parse.settings.update",
        "tracking_settings.read",
        "suppression.read",
        "stats.read",
        "api_keys.read",
    }
)
# SendGrid's 401 and 403 messages (its v3 error shape: errors[].message, field null).
NO_AUTHORIZATION = "authorization required"
BAD_KEY = "The provided authorization grant is invalid, expired, or revoked"
FORBIDDEN = "access forbidden"


def parse_key_flag(text: str) -> tuple[str, frozenset[str]]:
    """`KEY=scope,scope` → (KEY, scopes); `KEY=` is a key with no scope at all."""
    key, sep, scopes = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--key {text!r} is not KEY=SCOPE,SCOPE")
    return key.strip(), frozenset(s.strip() for s in scopes.split(",") if s.strip())


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str


@dataclass
class KeyRing:
    """The keys the server knows; the started ones come back on reset."""

    started: Mapping[str, frozenset[str]]
    _keys: dict[str, frozenset[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._keys = dict(self.started)

    def add(self, key: str, scopes: Iterable[str]) -> frozenset[str]:
        if not key:
            raise ValueError("a key is needed")
        given = frozenset(str(s) for s in scopes)
        with self._lock:
            self._keys[key] = given
        return given

    def scopes(self, authorization: str | None) -> frozenset[str] | Refusal:
        """The calling key's scopes, or the 401 SendGrid answers."""
        if not authorization:
            return Refusal(401, NO_AUTHORIZATION)
        scheme, _, key = authorization.partition(" ")
        with self._lock:
            found = self._keys.get(key) if scheme == "Bearer" else None
        return Refusal(401, BAD_KEY) if found is None else found

    def allow(self, authorization: str | None, scope: str) -> Refusal | None:
        """None when the key may call an endpoint that needs `scope`."""
        found = self.scopes(authorization)
        if isinstance(found, Refusal):
            return found
        return None if scope in found else Refusal(403, FORBIDDEN)


def keys_for(api_key: str, extra: Iterable[str] = ()) -> KeyRing:
    """The full access `--api-key` plus each `--key KEY=SCOPES`."""
    keys = {api_key: FULL_ACCESS}
    keys.update(parse_key_flag(flag) for flag in extra)
    return KeyRing(keys)
