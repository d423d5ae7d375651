"""POST /webhooks/<provider>/inbound: store the email first, parse it after.

The provider is resolved through the registry (sender.track.providers); a
name it does not know, or a provider that posts no inbound email, is 404.
SendGrid's Inbound Parse posts to /webhooks/sendgrid/inbound.

SendGrid drops an email for good when it gets a 4xx, and retries for three
days on a 5xx. So with valid credentials the only non-2xx answer is a 5xx
when the email could not be stored; anything odd about its content is for
the review list, not for an error status.

The form is decoded here, streaming: text fields are decoded with the
charsets the provider names (raw bytes kept when that fails), attachments are
counted but not kept, and a raw-mode email field goes to `raw_email`; the
provider's `InboundForm` names those two fields.
"""

from __future__ import annotations

import base64
import codecs
import hmac
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from flask import Blueprint, Response, abort, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from sender.celery_app import PARSE_REPLY_TASK
from sender.core.clock import SystemClock
from sender.core.db import session_scope
from sender.core.errors import NotFound
from sender.core.models import Reply
from sender.ops import metrics
from sender.track import providers
from sender.track.inbound import parse_stored_reply
from sender.track.providers.base import InboundForm
from sender.web import context
from sender.web.auth import inbound_secret_limit

bp = Blueprint("inbound", __name__)
log = logging.getLogger(__name__)

_CHUNK = 64 * 1024


@dataclass
class _Part:
    name: str
    filename: str | None
    content_type: str | None
    size: int = 0
    chunks: list[bytes] = field(default_factory=list)


@dataclass(frozen=True)
class StoredForm:
    raw_form: dict[str, Any]
    raw_email: bytes | None


@bp.post("/webhooks/<provider_name>/inbound")
@inbound_secret_limit()  # wrong secrets per address; a throttled post gets a 503, never a 4xx
def receive(provider_name: str) -> Response:
    inbound = _inbound_form(provider_name)
    if not _authorised():
        metrics.count_refusal("inbound", "bad_auth")
        return Response(
            "authentication required\n",
            401,
            {"WWW-Authenticate": 'Basic realm="inbound"'},
            mimetype="text/plain",
        )
    form = read_form(inbound)
    try:
        reply_id = _store(form)
    except SQLAlchemyError:
        log.exception("inbound email could not be stored")
        # 5xx: the provider keeps the email and retries later.
        return Response("could not store the email\n", 503, mimetype="text/plain")
    _parse(reply_id)
    return Response("stored\n", 200, mimetype="text/plain")


def _inbound_form(provider_name: str) -> InboundForm:
    try:
        inbound = providers.get(provider_name).inbound
    except NotFound:
        abort(404)
    if inbound is None:
        abort(404)
    return inbound


def _authorised() -> bool:
    auth = request.authorization
    if auth is None or auth.type != "basic" or auth.password is None:
        return False
    secret = context.settings().inbound_secret
    # Any user name: the shared secret is the credential.
    return hmac.compare_digest(auth.password.encode(), secret.encode())


def read_form(inbound: InboundForm) -> StoredForm:
    """The request's fields as JSON-ready text, its attachments as metadata only."""
    if request.mimetype == "application/x-www-form-urlencoded":
        fields = {name: request.form.get(name, "") for name in request.form}
        return StoredForm({"fields": fields, "files": [], "undecoded": {}}, None)
    if request.mimetype != "multipart/form-data":
        # Not what a provider sends: keep the body as it came and let a person look.
        problem = f"unexpected content type {request.mimetype or 'none'!r}; raw body kept"
        raw_form = {"fields": {}, "files": [], "undecoded": {"form": problem}}
        return StoredForm(raw_form, request.get_data())
    boundary = request.mimetype_params.get("boundary", "")
    parts, form_error = _read_parts(boundary.encode(), _chunks())
    return _stored(inbound, parts, form_error)


def _chunks() -> Iterator[bytes]:
    stream = request.stream
    while chunk := stream.read(_CHUNK):
        yield chunk


def _read_parts(boundary: bytes, chunks: Iterator[bytes]) -> tuple[list[_Part], str | None]:
    parts: list[_Part] = []
    try:
        if not boundary:
            raise ValueError("multipart form without a boundary")
        decoder = MultipartDecoder(boundary)
        for chunk in chain(chunks, [None]):
            decoder.receive_data(chunk)
            event = decoder.next_event()
            while not isinstance(event, NeedData | Epilogue):
                if isinstance(event, Field | File):
                    parts.append(_new_part(event))
                elif isinstance(event, Data) and parts:
                    _add_data(parts[-1], event.data)
                event = decoder.next_event()
            if isinstance(event, Epilogue):
                return parts, None
    except ValueError as error:
        return parts, f"multipart form cannot be read: {error}"
    return parts, "multipart form ends before its closing boundary"


def _new_part(event: Field | File) -> _Part:
    filename = event.filename if isinstance(event, File) else None
    return _Part(event.name, filename, event.headers.get("content-type"))


def _add_data(part: _Part, data: bytes) -> None:
    part.size += len(data)
    if part.filename is None:  # attachments are counted, never held
        part.chunks.append(data)


def _stored(inbound: InboundForm, parts: list[_Part], form_error: str | None) -> StoredForm:
    raw = {p.name: b"".join(p.chunks) for p in parts if p.filename is None}
    raw_email = raw.pop(inbound.raw_email_field, None)
    charsets = _charsets(raw.get(inbound.charsets_field, b""))
    fields: dict[str, str] = {}
    undecoded: dict[str, str] = {}
    raw_fields: dict[str, str] = {}
    for name, data in raw.items():
        text, problem = _decode(data, charsets.get(name, "utf-8"))
        fields[name] = text
        if problem:
            undecoded[name] = problem
            raw_fields[name] = base64.b64encode(data).decode("ascii")
    if form_error:
        undecoded["form"] = form_error
    files = [
        {"field": p.name, "filename": p.filename, "content_type": p.content_type, "size": p.size}
        for p in parts
        if p.filename is not None
    ]
    raw_form = {"fields": fields, "files": files, "undecoded": undecoded, "raw_fields": raw_fields}
    return StoredForm(raw_form, raw_email)


def _charsets(data: bytes) -> dict[str, str]:
    try:
        value = json.loads(data.decode("utf-8", "replace") or "{}")
    except json.JSONDecodeError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _decode(data: bytes, charset: str) -> tuple[str, str | None]:
    try:
        codecs.lookup(charset)
    except LookupError:
        return data.decode("utf-8", "replace"), f"unknown charset {charset!r}; raw bytes kept"
    try:
        return data.decode(charset), None
    except UnicodeDecodeError as error:
        return data.decode(charset, "replace"), f"not valid {charset}: {error}; raw bytes kept"


def _store(form: StoredForm) -> int:
    with session_scope(context.engine()) as session:
        reply = Reply(raw_form=form.raw_form, raw_email=form.raw_email)
        session.add(reply)
        session.flush()
        return reply.id


def _parse(reply_id: int) -> None:
    """Hand the stored reply to a worker, or parse it here without Redis."""
    settings = context.settings()
    try:
        if settings.uses_redis:
            # ignore_result: with Redis down, subscribing for a result retries for ~20 s.
            context.celery().send_task(PARSE_REPLY_TASK, args=[reply_id], ignore_result=True)
        else:
            parse_stored_reply(context.engine(), settings, reply_id, SystemClock().now())
    except Exception:  # stored already; `campaign replies parse` retries
        log.exception("inbound reply %s stored but not parsed", reply_id)
