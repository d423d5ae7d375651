"""Machine clicks apart from people's, through the real link routes (rules: track.clicks)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from replies_fixtures import NOW, SECRET, Seeded, message_ref, seed, settings_for
from sqlalchemy import Engine, select

from sender.core.clock import MovableClock
from sender.core.db import session_scope
from sender.core.models import Action, CaseActor, Event, LinkHit
from sender.core.tokens import MessageRef, TokenSigner
from sender.core.vocabulary import ActionKind, ClickClass, EventType, MachineSign
from sender.report.totals import Dimension, build_report, catch_up
from sender.web import context, create_app

SIGNER = TokenSigner(SECRET)
BOB = "bob@example.org"
MARIE = "marie@example.fr"
# A desktop Chrome, as a person's browser sends it.
BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
LATER = NOW + timedelta(minutes=10)  # the seeded wave went out at NOW


class World:
    def __init__(self, engine: Engine) -> None:
        settings = settings_for(engine)
        self.engine = engine
        self.seeded: Seeded = seed(engine, settings)
        app = create_app(settings)
        self.clock = MovableClock(LATER)
        app.extensions[context.CLOCK] = self.clock
        self.client: FlaskClient = app.test_client()

    def action_path(self, who: str) -> str:
        return f"/a/{SIGNER.action(message_ref(self.seeded, who))}"

    def unsubscribe_path(self, who: str) -> str:
        return f"/unsubscribe/{SIGNER.unsubscribe(message_ref(self.seeded, who))}"

    def get(self, path: str, agent: str | None = BROWSER, head: bool = False) -> int:
        headers = {"User-Agent": agent} if agent is not None else {}
        # Werkzeug's test client adds its own agent unless one is given: "" sends none.
        headers.setdefault("User-Agent", "")
        call = self.client.head if head else self.client.get
        return call(path, headers=headers).status_code

    def clicks(self, who: str) -> list[tuple[str, bool, str]]:
        with session_scope(self.engine) as session:
            rows = session.execute(
                select(Action.kind, Action.acting, Action.dedupe_key)
                .where(Action.message_id == self.seeded.message_ids[who])
                .order_by(Action.id)
            )
            return [(kind, acting, key or "") for kind, acting, key in rows]

    def hits(self, who: str) -> list[tuple[str, str, str | None]]:
        with session_scope(self.engine) as session:
            rows = session.execute(
                select(LinkHit.target, LinkHit.verdict, LinkHit.reason)
                .where(LinkHit.link_key == str(self.seeded.message_ids[who]))
                .order_by(LinkHit.id)
            )
            return [tuple(row) for row in rows]  # type: ignore[misc]

    def person_clicks_marie(self) -> None:
        """A valid click from another supporter, which no scanner's visit may change."""
        assert self.get(self.action_path(MARIE)) == 302

    def assert_marie_intact(self) -> None:
        message = self.seeded.message_ids[MARIE]
        assert self.clicks(MARIE) == [(ActionKind.CLICKED, True, f"link:{message}:clicked")]


@pytest.fixture
def world(any_engine: Engine) -> World:
    return World(any_engine)


def _report(engine: Engine) -> dict[str, Any]:
    """The report after a scheduler tick: link clicks reach the totals through its roll-up."""
    catch_up(engine, datetime.now(UTC))
    return build_report(engine, Dimension.CASE)


def test_a_browser_get_minutes_after_delivery_is_a_person(world: World) -> None:
    assert world.get(world.action_path(BOB)) == 302
    message = world.seeded.message_ids[BOB]
    assert world.clicks(BOB) == [(ActionKind.CLICKED, True, f"link:{message}:clicked")]
    assert world.hits(BOB) == [("action", ClickClass.HUMAN, None)]


@pytest.mark.parametrize(
    ("agent", "head"),
    [
        ("python-requests/2.31.0", False),
        ("Mozilla/5.0 (compatible; BarracudaCentral/1.0)", False),
        (None, False),  # no user agent at all
        (BROWSER, True),  # HEAD: a link checker's probe
    ],
    ids=["script", "scanner", "no-agent", "head"],
)
def test_scanner_agents_and_head_requests_are_machine_clicks(
    world: World, agent: str | None, head: bool
) -> None:
    world.person_clicks_marie()
    assert world.get(world.action_path(BOB), agent="" if agent is None else agent, head=head) == 302
    [(kind, acting, key)] = world.clicks(BOB)
    assert (kind, acting) == (ActionKind.CLICKED_MACHINE, False)
    assert key.startswith(f"link:{world.seeded.message_ids[BOB]}:clicked_machine:")
    reason = MachineSign.HEAD_REQUEST if head else MachineSign.SCANNER_AGENT
    assert world.hits(BOB) == [("action", ClickClass.MACHINE, reason)]
    world.assert_marie_intact()


def test_a_fetch_seconds_after_sending_is_a_machine_click(world: World) -> None:
    world.person_clicks_marie()
    world.clock.at = NOW + timedelta(seconds=3)
    assert world.get(world.action_path(BOB)) == 302
    assert [k for k, _, _ in world.clicks(BOB)] == [ActionKind.CLICKED_MACHINE]
    assert world.hits(BOB) == [("action", ClickClass.MACHINE, MachineSign.RIGHT_AFTER_DELIVERY)]
    world.assert_marie_intact()


def test_a_fetch_seconds_after_the_delivered_event_is_a_machine_click(world: World) -> None:
    delivered = LATER + timedelta(hours=2)  # a slow mailbox: delivered long after sending
    with session_scope(world.engine) as session:
        session.add(
            Event(
                provider="sendgrid",
                provider_event_id="delivered-bob",
                event_type=EventType.DELIVERED,
                message_id=world.seeded.message_ids[BOB],
                occurred_at=delivered,
                processed_at=delivered,
            )
        )
    world.person_clicks_marie()
    world.clock.at = delivered + timedelta(seconds=2)
    assert world.get(world.action_path(BOB)) == 302
    assert world.hits(BOB) == [("action", ClickClass.MACHINE, MachineSign.RIGHT_AFTER_DELIVERY)]
    world.assert_marie_intact()


def test_several_links_of_one_message_within_seconds_are_a_burst(world: World) -> None:
    world.person_clicks_marie()
    assert world.get(world.unsubscribe_path(BOB)) == 200
    world.clock.advance(seconds=1)
    assert world.get(world.action_path(BOB)) == 302
    assert [k for k, _, _ in world.clicks(BOB)] == [ActionKind.CLICKED_MACHINE]
    assert world.hits(BOB) == [
        ("unsubscribe", ClickClass.HUMAN, None),
        ("action", ClickClass.MACHINE, MachineSign.BURST),
    ]
    world.assert_marie_intact()


def test_a_person_clicking_twice_is_no_burst(world: World) -> None:
    assert world.get(world.action_path(BOB)) == 302
    world.clock.advance(seconds=1)
    assert world.get(world.action_path(BOB)) == 302
    assert [k for k, _, _ in world.clicks(BOB)] == [ActionKind.CLICKED]


def test_the_honeypot_is_evidence_and_no_click(world: World) -> None:
    world.person_clicks_marie()
    honeypot = world.action_path(BOB) + "/x"
    assert world.get(honeypot) == 200
    assert world.clicks(BOB) == []
    assert world.hits(BOB) == [("honeypot", ClickClass.MACHINE, MachineSign.HONEYPOT)]
    forged = honeypot.replace("/a/", "/a/x")
    assert world.get(forged) == 400  # a forged token records nothing
    assert len(world.hits(BOB)) == 1
    world.assert_marie_intact()


def test_a_click_unmasked_by_later_evidence_frees_the_way_for_a_person(world: World) -> None:
    world.person_clicks_marie()
    message = world.seeded.message_ids[BOB]
    assert world.get(world.action_path(BOB)) == 302  # the scanner, with a browser's agent
    world.clock.advance(seconds=0.2)
    assert world.get(world.action_path(BOB) + "/x") == 200  # ...then the honeypot
    [(kind, acting, key)] = world.clicks(BOB)
    assert (kind, acting) == (ActionKind.CLICKED_MACHINE, False)
    assert key.startswith(f"link:{message}:clicked_machine:")
    assert world.hits(BOB)[0] == ("action", ClickClass.MACHINE, MachineSign.LATER_EVIDENCE)

    world.clock.advance(minutes=20)  # the supporter reads the email and clicks
    assert world.get(world.action_path(BOB)) == 302
    assert world.clicks(BOB)[1] == (ActionKind.CLICKED, True, f"link:{message}:clicked")
    world.assert_marie_intact()


def test_unmasking_a_counted_click_corrects_the_report(world: World) -> None:
    seeded = world.seeded
    world.person_clicks_marie()
    assert world.get(world.action_path(BOB)) == 302
    before = _report(world.engine)["totals"]  # counted as a person's
    assert (before["clicks"], before["acted"]) == (2, 2)

    world.clock.advance(seconds=1)
    assert world.get(world.unsubscribe_path(BOB)) == 200  # the same scanner, a second link
    after = _report(world.engine)["totals"]
    assert (after["clicks"], after["machine_clicks"], after["acted"]) == (1, 1, 1)
    with session_scope(world.engine) as session:
        actors = set(session.scalars(select(CaseActor.supporter_id)))
    assert actors == {seeded.supporter_ids[MARIE]}

    world.clock.advance(minutes=30)
    assert world.get(world.action_path(BOB)) == 302  # the person, later
    final = _report(world.engine)["totals"]
    assert (final["clicks"], final["machine_clicks"], final["acted"]) == (2, 1, 2)
    world.assert_marie_intact()


def test_unmasking_keeps_an_actor_who_also_sent_a_letter(world: World) -> None:
    assert world.get(world.action_path(BOB)) == 302
    assert world.client.post(world.action_path(BOB) + "/sent").status_code == 200
    assert _report(world.engine)["totals"]["acted"] == 1
    world.clock.advance(seconds=0.5)
    assert world.get(world.action_path(BOB) + "/x") == 200
    totals = _report(world.engine)["totals"]
    assert (totals["clicks"], totals["machine_clicks"], totals["letters"]) == (0, 1, 1)
    assert totals["acted"] == 1  # the letter still counts


def test_evidence_after_the_window_leaves_a_persons_click_alone(world: World) -> None:
    assert world.get(world.action_path(BOB)) == 302
    world.clock.advance(seconds=30)
    assert world.get(world.action_path(BOB) + "/x") == 200
    assert [k for k, _, _ in world.clicks(BOB)] == [ActionKind.CLICKED]


def test_a_preview_link_without_a_message_shows_the_page_and_records_nothing(
    world: World,
) -> None:
    """Staff previews carry a real supporter's id but no message: looking, never acting."""
    seeded = world.seeded
    ref = MessageRef(seeded.supporter_ids[BOB], None, seeded.case_id, None)
    path = f"/a/{SIGNER.action(ref)}"
    assert world.get(path, head=True) == 302
    assert world.get(path) == 302
    assert world.get(path + "/x") == 200
    with session_scope(world.engine) as session:
        assert list(session.scalars(select(Action.kind))) == []
        assert list(session.scalars(select(LinkHit.id))) == []
