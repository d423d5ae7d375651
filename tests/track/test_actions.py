"""Stored events become actions once, with opens split and action-link clicks acting."""

from __future__ import annotations

import threading

from events_fixtures import T0, World, ingest, seed, sg_event
from sqlalchemy import Engine, func, select, update

from sender.core.clock import MovableClock
from sender.core.config import Settings
from sender.core.models import Action, Event
from sender.track.actions import ProcessReport, is_action_link, process_pending_events

SETTINGS = Settings(public_base_url="https://act.example.org", secret_key="t")


def _run(engine: Engine, limit: int = 5000) -> ProcessReport:
    return process_pending_events(engine, limit, SETTINGS, MovableClock(T0))


def _actions(engine: Engine) -> list[tuple[str, bool, int | None, str | None]]:
    with engine.connect() as c:
        rows = c.execute(
            select(Action.kind, Action.acting, Action.supporter_id, Action.url).order_by(Action.id)
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_opens_clicks_and_acting(any_engine: Engine) -> None:
    w = seed(any_engine)
    ingest(
        any_engine,
        [
            sg_event(w, 0, "open", 1, sg_machine_open=False),
            sg_event(w, 0, "open", 2, sg_machine_open=True),
            sg_event(w, 1, "click", 3, url="https://act.example.org/a/tok123"),
            sg_event(w, 2, "click", 4, url="https://example.org/act/jani/"),
            sg_event(w, 2, "click", 5, url="https://example.org/privacy"),
            sg_event(w, 2, "delivered", 6),
            sg_event(w, 2, "mystery", 7),
        ],
    )
    report = _run(any_engine)
    assert (report.events, report.actions, report.suppressed) == (7, 5, 0)
    s = w.supporters
    assert _actions(any_engine) == [
        ("opened", False, s[0], None),
        ("opened_machine", False, s[0], None),
        ("clicked", True, s[1], "https://act.example.org/a/tok123"),
        ("clicked", True, s[2], "https://example.org/act/jani/"),
        ("clicked", False, s[2], "https://example.org/privacy"),
    ]
    with any_engine.connect() as c:
        assert c.scalar(select(func.count()).where(Event.processed_at.is_(None))) == 0


def test_a_provider_click_from_a_scanner_agent_is_a_machine_click(any_engine: Engine) -> None:
    # SendGrid's click event carries `useragent` (Event Webhook reference, "click").
    w = seed(any_engine)
    link = "https://act.example.org/a/tok123"
    ingest(
        any_engine,
        [
            sg_event(w, 0, "click", 1, url=link, useragent="Mimecast-URL-Protect/1.0"),
            sg_event(w, 1, "click", 2, url=link, useragent="python-requests/2.31.0"),
            sg_event(w, 2, "click", 3, url=link, useragent="Mozilla/5.0 (Windows NT 10.0)"),
        ],
    )
    _run(any_engine)
    s = w.supporters
    assert _actions(any_engine) == [
        ("clicked_machine", False, s[0], link),
        ("clicked_machine", False, s[1], link),
        ("clicked", True, s[2], link),  # the person's click still counts
    ]


def test_a_provider_click_on_the_hidden_honeypot_is_a_machine_click(any_engine: Engine) -> None:
    # With click tracking on, a scanner's fetch of the hidden link comes back as a
    # SendGrid click with a browser's agent; no person can click that link.
    w = seed(any_engine)
    honeypot = "https://act.example.org/a/tok123/x"
    browser = "Mozilla/5.0 (Windows NT 10.0)"
    ingest(any_engine, [sg_event(w, 0, "click", 1, url=honeypot, useragent=browser)])
    _run(any_engine)
    assert _actions(any_engine) == [("clicked_machine", False, w.supporters[0], honeypot)]


def test_reprocessing_and_redelivery_make_no_second_action(any_engine: Engine) -> None:
    w = seed(any_engine)
    events = [sg_event(w, 0, "open", 1)]
    ingest(any_engine, events)
    _run(any_engine)
    assert ingest(any_engine, events) == 0
    with any_engine.begin() as c:  # as if a crash lost the processed mark
        c.execute(update(Event).values(processed_at=None))
    again = _run(any_engine)
    assert (again.events, again.actions) == (1, 0)
    assert len(_actions(any_engine)) == 1


def test_unknown_ids_in_custom_args_are_not_trusted(any_engine: Engine) -> None:
    w = seed(any_engine)
    event = {
        **sg_event(w, 0, "open", 1),
        "message_id": "999",
        "supporter_id": "998",
        "case_id": "997",
        "wave_id": "996",
    }
    ingest(any_engine, [event])
    report = _run(any_engine)
    # Refused whole (sender.track.binding): no action at all, kept raw for ops.
    assert (report.events, report.actions, report.refused) == (1, 0, 1)
    assert _actions(any_engine) == []


def test_limit_and_concurrent_processors_handle_each_event_once(pg_engine: Engine) -> None:
    w: World = seed(pg_engine, people=4)
    ingest(pg_engine, [sg_event(w, n % 4, "open", n) for n in range(400)])
    assert _run(pg_engine, limit=50).events == 50
    totals: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        while (r := _run(pg_engine, limit=25)).events:
            with lock:
                totals.append(r.events)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(totals) == 350
    assert len(_actions(pg_engine)) == 400


def test_action_link_rule() -> None:
    base = "https://act.example.org"
    assert is_action_link(f"{base}/a/x", None, base)
    assert not is_action_link(f"{base}/unsubscribe/x", None, base)
    assert not is_action_link("https://evil.example/a/x", None, base)
    assert is_action_link("https://x.org/act", "https://x.org/act/", base)
    assert not is_action_link(None, "https://x.org/act", base)
