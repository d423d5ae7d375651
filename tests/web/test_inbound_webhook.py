"""POST /webhooks/<provider>/inbound, as SendGrid posts it to /webhooks/sendgrid/inbound:
stored first, 2xx for odd content, 401 for bad auth, 404 for a provider not registered."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from replies_fixtures import (
    INBOUND_SECRET,
    Seeded,
    multipart,
    parse_fields,
    reply_address,
    seed,
    settings_for,
)
from sqlalchemy import Engine, func, select

from sender.core.config import Settings, reset_settings
from sender.core.db import session_scope
from sender.core.models import Action, Reply
from sender.core.vocabulary import ActionKind, ReplyStatus
from sender.web import create_app

URL = "/webhooks/sendgrid/inbound"


@pytest.fixture
def world(any_engine: Engine) -> tuple[Engine, Seeded, FlaskClient]:
    settings = settings_for(any_engine)
    seeded = seed(any_engine, settings)
    return any_engine, seeded, create_app(settings).test_client()


def auth(password: str = INBOUND_SECRET, user: str = "sendgrid") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def post(
    client: FlaskClient,
    fields: dict[str, Any],
    files: dict[str, tuple[str, bytes]] | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    body, content_type = multipart(fields, files)
    return client.post(
        URL, data=body, content_type=content_type, headers=auth() if headers is None else headers
    )


def replies(engine: Engine) -> list[Reply]:
    with session_scope(engine) as session:
        return list(session.scalars(select(Reply).order_by(Reply.id)))


def actions(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(session.scalar(select(func.count()).select_from(Action)) or 0)


def test_a_reply_is_stored_raw_then_parsed(world: tuple[Engine, Seeded, FlaskClient]) -> None:
    engine, seeded, client = world
    fields = parse_fields(
        sender="Bob <bob@example.org>", to=reply_address(seeded, "en"), text="Free Germain!"
    )
    response = post(client, fields, headers=auth(user="anyone"))
    assert response.status_code == 200
    (reply,) = replies(engine)
    assert reply.raw_form["fields"] == fields
    assert reply.status == ReplyStatus.MATCHED
    with session_scope(engine) as session:
        assert session.scalars(select(Action.kind)).all() == [ActionKind.REPLIED]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        auth(password="wrong"),
        auth(password=INBOUND_SECRET + "x"),
        {"Authorization": "Bearer " + INBOUND_SECRET},
    ],
)
def test_wrong_credentials_are_refused_and_nothing_stored(
    world: tuple[Engine, Seeded, FlaskClient], headers: dict[str, str]
) -> None:
    engine, seeded, client = world
    fields = parse_fields(sender="bob@example.org", to=reply_address(seeded, "en"), text="Hi")
    response = post(client, fields, headers=headers)
    assert response.status_code == 401
    assert replies(engine) == []
    assert actions(engine) == 0


def test_a_provider_the_registry_does_not_know_is_404_and_stores_nothing(
    world: tuple[Engine, Seeded, FlaskClient],
) -> None:
    engine, seeded, client = world
    fields = parse_fields(sender="bob@example.org", to=reply_address(seeded, "en"), text="Hi")
    body, content_type = multipart(fields)
    response = client.post(
        "/webhooks/mailgun/inbound", data=body, content_type=content_type, headers=auth()
    )
    assert response.status_code == 404
    assert replies(engine) == []


def test_missing_fields_are_stored_and_answered_2xx(
    world: tuple[Engine, Seeded, FlaskClient],
) -> None:
    engine, _, client = world
    response = post(client, {"text": "orphan text", "SPF": "pass"})
    assert response.status_code == 200
    (reply,) = replies(engine)
    assert reply.raw_form["fields"] == {"text": "orphan text", "SPF": "pass"}
    assert reply.status == ReplyStatus.REVIEW
    assert reply.problem == "missing From address; missing To address"


def test_unknown_charset_keeps_the_original_bytes(
    world: tuple[Engine, Seeded, FlaskClient],
) -> None:
    engine, seeded, client = world
    fields: dict[str, Any] = parse_fields(
        sender="bob@example.org",
        to=reply_address(seeded, "en"),
        text="",
        charsets={"text": "x-unknown", "from": "UTF-8", "to": "UTF-8"},
    )
    original = "Solidarité à Jani".encode("latin-1")
    fields["text"] = original
    response = post(client, fields)
    assert response.status_code == 200
    (reply,) = replies(engine)
    assert reply.status == ReplyStatus.REVIEW
    assert reply.problem is not None and "unknown charset 'x-unknown'" in reply.problem
    assert base64.b64decode(reply.raw_form["raw_fields"]["text"]) == original
    assert reply.supporter_id == seeded.supporter_ids["bob@example.org"]
    assert actions(engine) == 0


def test_declared_charsets_are_honoured(world: tuple[Engine, Seeded, FlaskClient]) -> None:
    engine, seeded, client = world
    fields: dict[str, Any] = parse_fields(
        sender="marie@example.fr",
        to=reply_address(seeded, "fr"),
        text="",
        charsets={"text": "iso-8859-1", "from": "UTF-8", "to": "UTF-8"},
    )
    fields["text"] = "Solidarité à Jani".encode("latin-1")
    assert post(client, fields).status_code == 200
    (reply,) = replies(engine)
    assert (reply.status, reply.body) == (ReplyStatus.MATCHED, "Solidarité à Jani")


def test_broken_mime_in_raw_mode_is_stored_for_review(
    world: tuple[Engine, Seeded, FlaskClient],
) -> None:
    engine, seeded, client = world
    broken = (
        f"From: bob@example.org\r\nTo: {reply_address(seeded, 'en')}\r\n"
        'Content-Type: multipart/mixed; boundary="gone"\r\n\r\n'
        "--elsewhere\r\nnot a part\r\n"
    ).encode()
    response = post(client, {"email": broken, "to": reply_address(seeded, "en")})
    assert response.status_code == 200
    (reply,) = replies(engine)
    assert reply.raw_email == broken
    assert "email" not in reply.raw_form["fields"]
    assert reply.status == ReplyStatus.REVIEW
    assert reply.problem is not None and "broken MIME" in reply.problem


def test_a_truncated_form_is_stored_for_review(
    world: tuple[Engine, Seeded, FlaskClient],
) -> None:
    engine, seeded, client = world
    body, content_type = multipart(
        parse_fields(sender="bob@example.org", to=reply_address(seeded, "en"), text="Hello")
    )
    cut = body[: body.rindex(b"--xYzZY")]  # the closing boundary never arrives
    response = client.post(URL, data=cut, content_type=content_type, headers=auth())
    assert response.status_code == 200
    (reply,) = replies(engine)
    assert reply.status == ReplyStatus.REVIEW
    assert reply.problem is not None
    assert reply.problem.startswith("multipart form cannot be read")
    assert reply.raw_form["fields"]["from"] == "bob@example.org"


def test_a_body_that_is_no_form_is_kept_for_review(
    world: tuple[Engine, Seeded, FlaskClient],
) -> None:
    engine, _, client = world
    body = b'{"from": "bob@example.org", "text": "hi"}'
    response = client.post(URL, data=body, content_type="application/json", headers=auth())
    assert response.status_code == 200
    (reply,) = replies(engine)
    assert reply.raw_email == body
    assert reply.status == ReplyStatus.REVIEW
    assert reply.problem is not None
    assert reply.problem.startswith("unexpected content type 'application/json'")


def test_a_25_mb_attachment_is_counted_not_kept(
    world: tuple[Engine, Seeded, FlaskClient],
) -> None:
    engine, seeded, client = world
    size = 25 * 1024 * 1024
    fields: dict[str, Any] = parse_fields(
        sender="bob@example.org", to=reply_address(seeded, "en"), text="Photos from our vigil"
    )
    fields["attachments"] = "1"
    fields["attachment-info"] = json.dumps(
        {"attachment1": {"filename": "vigil.jpg", "type": "image/jpeg"}}
    )
    response = post(client, fields, files={"attachment1": ("vigil.jpg", b"\xff" * size)})
    assert response.status_code == 200
    (reply,) = replies(engine)
    assert reply.raw_form["files"] == [
        {
            "field": "attachment1",
            "filename": "vigil.jpg",
            "content_type": "application/octet-stream",
            "size": size,
        }
    ]
    assert json.loads(reply.raw_form["fields"]["attachment-info"])["attachment1"]
    assert len(json.dumps(reply.raw_form)) < 10_000  # no attachment bytes in the JSON
    assert reply.status == ReplyStatus.MATCHED
    assert reply.problem == "attachment not kept: vigil.jpg (25.0 MB)"
    assert actions(engine) == 1


def test_a_database_outage_answers_5xx_so_sendgrid_retries(tmp_path: Path) -> None:
    unreachable = Settings(
        database_url=f"sqlite:///{tmp_path / 'missing-dir' / 'campaign.db'}",
        inbound_secret=INBOUND_SECRET,
        secret_key="test-secret",
    )
    client = create_app(unreachable).test_client()
    response = post(client, {"from": "bob@example.org", "text": "hi"})
    assert response.status_code == 503


def test_with_redis_the_parse_goes_to_a_worker(
    pg_engine: Engine, redis_url: str, env: pytest.MonkeyPatch
) -> None:
    settings = settings_for(pg_engine).model_copy(update={"redis_url": redis_url})
    seeded = seed(pg_engine, settings)
    client = create_app(settings).test_client()
    fields = parse_fields(sender="bob@example.org", to=reply_address(seeded, "en"), text="Hi!")
    assert post(client, fields).status_code == 200
    (reply,) = replies(pg_engine)
    assert reply.status == ReplyStatus.RECEIVED  # stored; parsing is the worker's job

    queued = [json.loads(item) for item in redis.Redis.from_url(redis_url).lrange("celery", 0, -1)]
    assert [(m["headers"]["task"], m["headers"]["argsrepr"]) for m in queued] == [
        ("sender.tasks.parse_reply", f"[{reply.id}]")
    ]
    # What the worker then runs, with the same configuration:
    for name, value in {
        "DATABASE_URL": settings.database_url,
        "SECRET_KEY": settings.secret_key,
        "INBOUND_DOMAIN": settings.inbound_domain,
    }.items():
        env.setenv(name, value)
    reset_settings()
    from sender.tasks import parse_reply

    assert parse_reply(reply.id) == ReplyStatus.MATCHED
    assert parse_reply(reply.id) == ReplyStatus.MATCHED  # a redelivery changes nothing
    assert actions(pg_engine) == 1


def test_guessing_the_inbound_secret_is_braked_with_a_5xx(
    world: tuple[Engine, Seeded, FlaskClient],
) -> None:
    """Attack: guess INBOUND_SECRET to post fake replies. SendGrid's own posts keep working."""
    engine, seeded, client = world
    fields = parse_fields(sender="bob@example.org", to=reply_address(seeded, "en"), text="STOP")
    client.environ_base["REMOTE_ADDR"] = "203.0.113.66"
    codes = [post(client, fields, headers=auth(f"guess-{i}")).status_code for i in range(11)]
    assert codes == [401] * 10 + [503]  # a 5xx: SendGrid would retry, never drop, real mail
    throttled = post(client, fields)  # even the right secret waits, from that address
    assert throttled.status_code == 503 and throttled.headers["Retry-After"] == "60"
    assert replies(engine) == []
    client.environ_base["REMOTE_ADDR"] = "198.51.100.20"  # SendGrid, elsewhere
    assert post(client, fields).status_code == 200
    assert len(replies(engine)) == 1
