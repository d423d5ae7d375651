"""SendGrid v3 Mail Send through the official `sendgrid` library.

A translator only: one OutgoingBatch becomes one request, and the answer (or
the lack of one) becomes Accepted or one of the TransportError kinds. Retry
policy, backoff and rate limits belong to the pipeline, so nothing here
sleeps or loops.

What urllib lets us tell apart about a network failure:
- urllib wraps any OSError raised while connecting or writing the request in
  `URLError` (refused, DNS, connect timeout, reset while uploading). The
  server cannot have read a whole request, so it cannot have accepted the
  mail: RetryLater.
- Errors raised while waiting for or reading the answer come through raw
  (`TimeoutError`, `RemoteDisconnected`, `ConnectionResetError`,
  `IncompleteRead`). The whole request was written, so SendGrid may have
  queued the mail: OutcomeUnknown, and the pipeline reconciles before any
  resend.
"""

from __future__ import annotations

import http.client
import json
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.error import URLError

import orjson
from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient

from sender.core.mail import Address, OutgoingBatch, Recipient
from sender.send.transport.base import Accepted, NotAuthorised, OutcomeUnknown, Rejected, RetryLater

MAX_CATEGORIES = 10
MAX_CATEGORY_LENGTH = 255
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
REJECTED_STATUS = frozenset({400, 413})
UNAUTHORISED_STATUS = frozenset({401, 403})
# The API key permission Mail Send needs (SendGrid's API Key Permissions list).
MAIL_SEND_SCOPE = "mail.send"
# SendGrid's Mail Send limitations forbid `,` and `;` in `to.name` (such a
# recipient is parsed into a bogus address and dropped as "Invalid");
# `"` `<` `>` would end the quoted display name or start an address in the To
# header SendGrid builds from it.
UNSAFE_NAME_CHARACTERS = frozenset(',;"<>')
# SendGrid publishes no bound for `to.name`. 100 characters keeps the whole
# `"name" <address>` (address up to 320) inside RFC 5322's 998-character line
# and is longer than any name in the CRM export; the body keeps the full name.
MAX_NAME_LENGTH = 100
# Any Content-Type other than exactly "application/json" makes python-http-client
# send our body as it is instead of running json.dumps over the dict: orjson
# writes the 1,000-personalization body several times faster.
_JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


class Unreachable(RetryLater):
    """No answer from the host at all: refused, unknown name, timed out, cut off."""

    def __init__(self, host: str, reason: object) -> None:
        super().__init__(f"cannot reach {host}: {reason}")
        self.host = host
        self.reason = str(reason)


class _Payload(bytes):
    """The serialised body, short when formatted.

    python-http-client formats every payload into a debug message before
    calling the logger, debug on or off: `repr` of 450 KB was 2 ms a batch,
    and with debug on it would write every address into the log.
    """

    __slots__ = ()

    def __format__(self, spec: str) -> str:
        return f"<{len(self):,} bytes of JSON>"


@dataclass(frozen=True)
class _Serialised:
    """A body python-http-client sends as it is: it asks it for `encode("utf-8")`."""

    payload: _Payload

    def encode(self, encoding: str) -> bytes:
        return self.payload


@dataclass(frozen=True)
class TrackingSettings:
    """What SendGrid may track and rewrite, sent on every request.

    Explicit so that the account's dashboard settings cannot change what a
    campaign does: our own /a/ link records clicks (SendGrid's rewrite would
    count them twice), and we send RFC 8058 one-click unsubscribe ourselves
    (SendGrid's would add a second footer and List-Unsubscribe).
    """

    open_tracking: bool = True

    def as_json(self) -> dict[str, Any]:
        return {
            "click_tracking": {"enable": False, "enable_text": False},
            "open_tracking": {"enable": self.open_tracking},
            "subscription_tracking": {"enable": False},
        }


def _name_character(char: str) -> str:
    if char in UNSAFE_NAME_CHARACTERS or unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
        return " "
    return char


def safe_name(name: str) -> str:
    """`name` as SendGrid's `to.name` takes it: the forbidden characters and
    control characters become spaces, runs of spaces one, at most
    MAX_NAME_LENGTH characters. "Smith, Jr.; PhD" becomes "Smith Jr. PhD".
    """
    cleaned = " ".join("".join(_name_character(c) for c in name).split())
    return cleaned[:MAX_NAME_LENGTH].rstrip()


def _address(address: Address) -> dict[str, str]:
    out = {"email": address.email}
    name = safe_name(address.name) if address.name else ""
    if name:
        out["name"] = name
    return out


def _personalization(recipient: Recipient, subject: str) -> dict[str, Any]:
    item: dict[str, Any] = {"to": [_address(recipient.to)], "subject": subject}
    if recipient.substitutions:
        item["substitutions"] = recipient.substitutions
    if recipient.custom_args:
        item["custom_args"] = recipient.custom_args
    if recipient.headers:
        item["headers"] = recipient.headers
    return item


def mail_body(
    batch: OutgoingBatch,
    *,
    sandbox: bool = False,
    tracking: TrackingSettings = TrackingSettings(),  # frozen: one shared default is safe
) -> dict[str, Any]:
    """The v3 mail/send JSON body: one personalization per recipient, in order.

    The subject travels in every personalization because SendGrid applies
    substitutions to a personalization's subject, not to a shared one.
    """
    subject = batch.subject
    # The recipient's own dicts go in as they are: the body is serialised at once
    # and nothing changes them, so copying each (3,000 per batch) bought nothing.
    personalizations = [_personalization(recipient, subject) for recipient in batch.recipients]
    body: dict[str, Any] = {
        "personalizations": personalizations,
        "from": _address(batch.sender),
        "reply_to": _address(batch.reply_to),
        "subject": batch.subject,
        "content": [
            {"type": "text/plain", "value": batch.text},
            {"type": "text/html", "value": batch.html},
        ],
    }
    if batch.custom_args:
        body["custom_args"] = batch.custom_args
    if batch.headers:
        body["headers"] = batch.headers
    categories = ascii_categories(batch.categories)
    if categories:
        body["categories"] = list(categories)
    body["tracking_settings"] = tracking.as_json()
    if sandbox:  # SendGrid validates and answers 200 but delivers nothing
        body["mail_settings"] = {"sandbox_mode": {"enable": True}}
    return body


def ascii_categories(categories: tuple[str, ...]) -> tuple[str, ...]:
    """Categories as SendGrid takes them: US-ASCII, unique, none empty, in order.

    Accents are folded ("déjà" becomes "deja") rather than refused: a category
    groups statistics, and a campaign slug typed with an accent should still group.
    """
    folded = (
        unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode().strip()
        for c in categories
    )
    return tuple(dict.fromkeys(c for c in folded if c))


def check_categories(categories: tuple[str, ...]) -> None:
    """Refuse locally what SendGrid would refuse with a 400 anyway."""
    if len(categories) > MAX_CATEGORIES:
        raise Rejected(
            f"{len(categories)} categories; SendGrid takes at most {MAX_CATEGORIES}",
            status_code=400,
        )
    for category in categories:
        if len(category) > MAX_CATEGORY_LENGTH:
            raise Rejected(
                f"category {category[:40]!r}… is {len(category)} characters; "
                f"at most {MAX_CATEGORY_LENGTH}",
                status_code=400,
            )


def provider_messages(body: bytes | str | None) -> str:
    """The `errors[].message` texts of a SendGrid error body, or the raw text."""
    if not body:
        return "no error body"
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        errors = json.loads(text).get("errors", [])
        parts = [
            f"{e.get('field')}: {e.get('message')}" if e.get("field") else str(e.get("message"))
            for e in errors
        ]
    except (ValueError, AttributeError):
        return text[:500]
    return "; ".join(parts) or text[:500]


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if headers is None:
        return None
    value = headers.get(name)
    return None if value is None else str(value)


def wait_from_reset(reset: str | None, now: float) -> float | None:
    """Seconds until X-RateLimit-Reset (a unix time), never negative."""
    if reset is None:
        return None
    try:
        return max(0.0, float(reset) - now)
    except ValueError:
        return None


def error_for_status(
    status: int, body: bytes | str | None, headers: Mapping[str, str] | None, now: float
) -> Exception:
    """The TransportError kind that an HTTP error answer means."""
    detail = f"SendGrid answered {status}: {provider_messages(body)}"
    if status == 429:
        wait = wait_from_reset(_header(headers, "X-RateLimit-Reset"), now)
        return RetryLater(detail, wait_seconds=wait, status_code=status)
    if status in RETRYABLE_STATUS:
        return RetryLater(detail, status_code=status)
    if status in REJECTED_STATUS:
        return Rejected(detail, status_code=status)
    if status in UNAUTHORISED_STATUS:
        return NotAuthorised(detail, status_code=status)
    if status >= 500:
        return RetryLater(detail, status_code=status)
    return Rejected(detail, status_code=status)


class SendGridTransport:
    name = "sendgrid"

    def __init__(
        self,
        api_key: str,
        *,
        host: str = "https://api.sendgrid.com",
        timeout_seconds: float = 30.0,
        now: Callable[[], float] = time.time,
        sandbox: bool = False,
        open_tracking: bool = True,
    ) -> None:
        self._client = SendGridAPIClient(api_key, host=host.rstrip("/"))
        self._host = host
        self._timeout = timeout_seconds
        self._now = now
        self._sandbox = sandbox
        self._tracking = TrackingSettings(open_tracking=open_tracking)

    def scopes(self) -> frozenset[str]:
        """The key's permissions, from SendGrid's `GET /v3/scopes` (`{"scopes": [...]}`).

        Sends no mail, so an installation can check its key (it needs `mail.send`)
        before a wave depends on it. A GET changes nothing at SendGrid, so unlike a
        send, a lost answer is simply Unreachable. HTTP errors are translated as
        for a send: 401/403 NotAuthorised, 429/5xx RetryLater.
        """
        try:
            response = self._client.client.scopes.get(timeout=self._timeout)
        except HTTPError as err:
            raise error_for_status(err.status_code, err.body, err.headers, self._now()) from err
        except URLError as err:
            raise Unreachable(self._host, err.reason) from err
        except (OSError, http.client.HTTPException) as err:
            raise Unreachable(self._host, f"{type(err).__name__}: {err}") from err
        try:
            scopes = json.loads(response.body or b"{}").get("scopes")
        except (ValueError, AttributeError):
            scopes = None
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise Rejected(
                f"{self._host} answered {response.status_code} without a scopes list",
                status_code=int(response.status_code),
            )
        return frozenset(scopes)

    def send(self, batch: OutgoingBatch) -> Accepted:
        check_categories(ascii_categories(batch.categories))
        json_body = mail_body(batch, sandbox=self._sandbox, tracking=self._tracking)
        body = _Serialised(_Payload(orjson.dumps(json_body)))
        where = f"{self._host} (batch {batch.send_key}, {len(batch.recipients)} recipients)"
        try:
            response = self._client.client.mail.send.post(
                request_body=body, request_headers=_JSON_HEADERS, timeout=self._timeout
            )
        except HTTPError as err:
            raise error_for_status(err.status_code, err.body, err.headers, self._now()) from err
        except URLError as err:
            raise RetryLater(f"could not hand the request to {where}: {err.reason}") from err
        except (OSError, http.client.HTTPException) as err:  # after URLError: raised on read
            raise OutcomeUnknown(
                f"request sent to {where} but no answer came back ({type(err).__name__}: "
                f"{err}); the mail may have been accepted"
            ) from err
        status = int(response.status_code)
        if status in (200, 202):  # 200 is sandbox mode: validated, counts as taken
            message_id = _header(response.headers, "X-Message-Id")
            return Accepted(provider_message_id=message_id, status_code=status)
        raise error_for_status(status, response.body, response.headers, self._now())
