"""Action links, the built-in action page and RFC 8058 one-click unsubscribe."""

from __future__ import annotations

import base64
import json

import pytest
from flask.testing import FlaskClient
from replies_fixtures import SECRET, Seeded, message_ref, seed, settings_for
from sqlalchemy import Engine, func, select

from sender.core.db import session_scope
from sender.core.models import Action, Case, Message, Supporter, Suppression
from sender.core.tokens import MessageRef, TokenSigner
from sender.core.vocabulary import ActionKind, MessageStatus, SupporterStatus
from sender.web import create_app

SIGNER = TokenSigner(SECRET)
BOB = "bob@example.org"
SALMA = "salma@example.net"


@pytest.fixture
def world(any_engine: Engine) -> tuple[Engine, Seeded, FlaskClient]:
    settings = settings_for(any_engine)
    seeded = seed(any_engine, settings)
    return any_engine, seeded, create_app(settings).test_client()


def actions(engine: Engine) -> list[tuple[int | None, str, str | None]]:
    with session_scope(engine) as session:
        rows = session.execute(select(Action.supporter_id, Action.kind, Action.dedupe_key))
        return [tuple(row) for row in rows]  # type: ignore[misc]


def suppressions(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(session.scalar(select(func.count()).select_from(Suppression)) or 0)


def retarget(token: str, supporter_id: int) -> str:
    """The same token with its payload edited to name another supporter."""
    payload, signature = token.split(".")
    values = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    values[0] = supporter_id
    edited = base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode())
    return edited.decode().rstrip("=") + "." + signature


def test_action_link_counts_one_click_per_message_and_redirects(
    world: tuple[Engine, Seeded, FlaskClient],
) -> None:
    engine, seeded, client = world
    token = SIGNER.action(message_ref(seeded, BOB))
    for _ in range(3):  # a person clicking again (the mail was sent long ago): still one
        response = client.get(f"/a/{token}")
        assert response.status_code == 302
        assert response.headers["Location"] == "https://act.example.org/jani"
        assert response.headers["Referrer-Policy"] == "no-referrer"
    message_id = seeded.message_ids[BOB]
    assert actions(engine) == [
        (seeded.supporter_ids[BOB], ActionKind.CLICKED, f"link:{message_id}:clicked")
    ]


def test_a_link_checkers_head_request_is_a_machine_click(
    world: tuple[Engine, Seeded, FlaskClient],
) -> None:
    engine, seeded, client = world
    response = client.head(f"/a/{SIGNER.action(message_ref(seeded, BOB))}")
    assert response.status_code == 302
    [(supporter, kind, key)] = actions(engine)
    assert (supporter, kind) == (seeded.supporter_ids[BOB], ActionKind.CLICKED_MACHINE)
    assert (key or "").startswith(f"link:{seeded.message_ids[BOB]}:clicked_machine:")


@pytest.mark.parametrize("where", ["signature", "payload", "truncated", "garbage"])
def test_tampered_action_tokens_get_a_neutral_400(
    world: tuple[Engine, Seeded, FlaskClient], where: str
) -> None:
    engine, seeded, client = world
    token = SIGNER.action(message_ref(seeded, BOB))
    bad = {
        "signature": token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        "payload": retarget(token, seeded.supporter_ids[SALMA]),
        "truncated": token[: len(token) // 2],
        "garbage": "not-a-token",
    }[where]
    response = client.get(f"/a/{bad}")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "This link does not work" in page
    assert "Germain" not in page and "Jani" not in page and "bob" not in page
    assert "Location" not in response.headers
    assert client.post(f"/a/{bad}/sent").status_code == 400
    assert actions(engine) == []


def test_a_genuine_token_for_someone_elses_message_is_refused(
    world: tuple[Engine, Seeded, FlaskClient],
) -> None:
    engine, seeded, client = world
    mixed = MessageRef(
        seeded.supporter_ids[SALMA], seeded.message_ids[BOB], seeded.case_id, seeded.wave_id
    )
    assert client.get(f"/a/{SIGNER.action(mixed)}").status_code == 400
    assert actions(engine) == []


def test_built_in_action_page_speaks_the_supporters_language(
    world: tuple[Engine, Seeded, FlaskClient],
) -> None:
    engine, seeded, client = world
    token = SIGNER.action(message_ref(seeded, SALMA, seeded.plain_case_id))
    response = client.get(f"/a/{token}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in page
    assert "أطلقوا سراح جيرمان روكوكي" in page
    assert "رئيس بوروندي" in page and "جيتيغا، بوروندي" in page
    assert "لقد أرسلت رسالتي" in page
    assert f'action="/a/{token}/sent"' in page
    assert "Set-Cookie" not in response.headers
    assert [kind for _, kind, _ in actions(engine)] == [ActionKind.CLICKED]


def test_letter_is_escaped_on_the_english_page(
    world: tuple[Engine, Seeded, FlaskClient],
) -> None:
    _, seeded, client = world
    ref = MessageRef(seeded.supporter_ids[BOB], None, seeded.plain_case_id, None)
    page = client.get(f"/a/{SIGNER.action(ref)}").get_data(as_text=True)
    assert "Dear President, &lt;please&gt; free Germain Rukuki." in page
    assert "<please>" not in page
    assert "Presidential Palace" in page and "I have sent my letter" in page


def test_a_preview_token_shows_pages_but_unsubscribes_and_records_nothing(
    world: tuple[Engine, Seeded, FlaskClient],
) -> None:
    """Attack: a token without a message id (a staff preview of Bob) used to act as Bob."""
    engine, seeded, client = world
    ref = MessageRef(seeded.supporter_ids[BOB], None, seeded.plain_case_id, None)
    action, unsubscribe = SIGNER.action(ref), SIGNER.unsubscribe(ref)
    assert client.get(f"/a/{action}").status_code == 200  # the page staff preview
    assert client.get(f"/unsubscribe/{unsubscribe}").status_code == 200
    assert client.post(f"/a/{action}/sent").status_code == 400
    one_click = {"List-Unsubscribe": "One-Click"}
    assert client.post(f"/unsubscribe/{unsubscribe}", data=one_click).status_code == 400
    assert client.post(f"/unsubscribe/{unsubscribe}").status_code == 400
    assert actions(engine) == [] and suppressions(engine) == 0
    with session_scope(engine) as session:
        bob = session.get(Supporter, seeded.supporter_ids[BOB])
        assert bob is not None and bob.status == SupporterStatus.SUBSCRIBED


def test_letter_sent_is_recorded_once_and_thanked(
    world: tuple[Engine, Seeded, FlaskClient],
) -> None:
    engine, seeded, client = world
    token = SIGNER.action(message_ref(seeded, SALMA, seeded.plain_case_id))
    for _ in range(2):
        response = client.post(f"/a/{token}/sent")
        assert response.status_code == 200
        assert "شكرًا لك" in response.get_data(as_text=True)
    message_id = seeded.message_ids[SALMA]
    assert actions(engine) == [
        (seeded.supporter_ids[SALMA], ActionKind.LETTER_SENT, f"link:{message_id}:letter_sent")
    ]


def test_unsubscribe_page_confirms_before_acting(
    world: tuple[Engine, Seeded, FlaskClient],
) -> None:
    engine, seeded, client = world
    token = SIGNER.unsubscribe(message_ref(seeded, "ana@example.com"))
    response = client.get(f"/unsubscribe/{token}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Darme de baja" in page and f'action="/unsubscribe/{token}"' in page
    assert suppressions(engine) == 0
    response = client.post(f"/unsubscribe/{token}")
    assert response.status_code == 200
    assert "Te has dado de baja" in response.get_data(as_text=True)
    assert suppressions(engine) == 1


def test_one_click_unsubscribe_is_idempotent(world: tuple[Engine, Seeded, FlaskClient]) -> None:
    engine, seeded, client = world
    token = SIGNER.unsubscribe(message_ref(seeded, BOB))
    for _ in range(2):
        response = client.post(
            f"/unsubscribe/{token}",
            data={"List-Unsubscribe": "One-Click"},
            content_type="application/x-www-form-urlencoded",
        )
        assert response.status_code == 200
        assert "Location" not in response.headers
        assert "Set-Cookie" not in response.headers
    assert suppressions(engine) == 1
    with session_scope(engine) as session:
        supporter = session.get(Supporter, seeded.supporter_ids[BOB])
        assert supporter is not None and supporter.status == SupporterStatus.UNSUBSCRIBED
        suppression = session.scalars(select(Suppression)).one()
        assert suppression.email_hash == supporter.email_hash
        assert suppression.reason == "unsubscribed"
        reminder = session.get(Message, seeded.reminder_ids[BOB])
        assert reminder is not None and reminder.status == MessageStatus.CANCELLED
        others = session.scalars(select(Supporter.status).where(Supporter.id != supporter.id)).all()
        assert set(others) == {SupporterStatus.SUBSCRIBED}


@pytest.mark.parametrize("kind", ["action-token", "altered", "garbage"])
def test_bad_unsubscribe_tokens_change_nothing(
    world: tuple[Engine, Seeded, FlaskClient], kind: str
) -> None:
    engine, seeded, client = world
    ref = message_ref(seeded, BOB)
    token = {
        "action-token": SIGNER.action(ref),  # signed, but for another purpose
        "altered": retarget(SIGNER.unsubscribe(ref), seeded.supporter_ids[SALMA]),
        "garbage": "x.y",
    }[kind]
    assert client.get(f"/unsubscribe/{token}").status_code == 400
    response = client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 400
    assert suppressions(engine) == 0
    with session_scope(engine) as session:
        statuses = set(session.scalars(select(Supporter.status)))
    assert statuses == {SupporterStatus.SUBSCRIBED}


def test_invalid_page_follows_the_browser_language(
    world: tuple[Engine, Seeded, FlaskClient],
) -> None:
    _, _, client = world
    response = client.get("/a/nope", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert response.status_code == 400
    assert "Ce lien ne fonctionne pas" in response.get_data(as_text=True)


def test_a_language_the_pages_lack_keeps_the_case_in_it_around_english_words(
    world: tuple[Engine, Seeded, FlaskClient],
) -> None:
    engine, seeded, client = world
    persian = {
        "title": "ژرمن روکوکی را آزاد کنید",
        "summary": "پدری که به خاطر کار حقوق بشری‌اش زندانی شد.",
        "ask": "خواستار آزادی او شوید.",
        "authority": "رئیس‌جمهور بوروندی",
        "authority_address": ["کاخ ریاست‌جمهوری", "گیتگا، بوروندی"],
        "letter": "آقای رئیس‌جمهور، ژرمن روکوکی را آزاد کنید.",
    }
    with session_scope(engine) as session:
        case = session.get(Case, seeded.plain_case_id)
        assert case is not None
        case.content = {**case.content, "fa": persian}
        message = session.get(Message, seeded.message_ids[SALMA])
        assert message is not None
        message.language = "fa"
    token = SIGNER.action(message_ref(seeded, SALMA, seeded.plain_case_id))
    page = client.get(f"/a/{token}").get_data(as_text=True)
    assert '<html lang="en" dir="ltr">' in page  # the page's words: English
    assert "I have sent my letter" in page and "Write to" in page
    assert '<h1 lang="fa" dir="rtl">ژرمن روکوکی را آزاد کنید</h1>' in page
    assert '<div class="letter" lang="fa" dir="rtl">آقای رئیس‌جمهور' in page
    assert "Free Germain Rukuki" not in page


def test_a_message_language_the_case_lacks_shows_english_marked_english(
    world: tuple[Engine, Seeded, FlaskClient],
) -> None:
    engine, seeded, client = world
    with session_scope(engine) as session:
        message = session.get(Message, seeded.message_ids[SALMA])
        assert message is not None
        message.language = "de"  # the case has no German text
    token = SIGNER.action(message_ref(seeded, SALMA, seeded.plain_case_id))
    page = client.get(f"/a/{token}").get_data(as_text=True)
    assert '<html lang="en" dir="ltr">' in page
    assert '<h1 lang="en" dir="ltr">Free Germain Rukuki</h1>' in page
