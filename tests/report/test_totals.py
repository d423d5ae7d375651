"""Report figures from running totals, checked against hand-counted events."""

from __future__ import annotations

from datetime import timedelta

import pytest
from events_fixtures import T0, World, ingest, seed, sg_event
from sqlalchemy import Engine, update

from sender.core.clock import MovableClock
from sender.core.config import Settings
from sender.core.csvsafe import safe_cell, to_csv
from sender.core.db import session_scope
from sender.core.models import Action, Batch, Message
from sender.core.vocabulary import BatchStatus
from sender.report.totals import Dimension, build_report, catch_up
from sender.send.batch_store import record_accepted
from sender.track.actions import process_pending_events


def _process(engine: Engine) -> None:
    process_pending_events(engine, 5000, Settings(secret_key="t"), MovableClock(T0))


def _campaign(engine: Engine) -> World:
    w = seed(engine, people=4)  # p0, p2 write in English; p1, p3 in Spanish
    ingest(
        engine,
        [
            *(sg_event(w, n, "delivered", 1) for n in range(3)),
            sg_event(w, 3, "bounce", 2, type="bounce"),
            sg_event(w, 0, "open", 3),
            sg_event(w, 0, "open", 4),  # a second open of the same message
            sg_event(w, 1, "open", 5, sg_machine_open=True),
            sg_event(w, 0, "click", 6, url="https://act.example.org/a/t0"),
            sg_event(w, 0, "click", 86_400 + 7, url="https://act.example.org/a/t0"),  # next day
            sg_event(w, 2, "click", 8, url="https://example.org/about"),
        ],
    )
    _process(engine)
    with session_scope(engine) as s:  # a reply from p1, recorded by the inbound side
        s.add(
            Action(
                supporter_id=w.supporters[1],
                case_id=w.case_id,
                wave_id=w.wave_id,
                message_id=w.messages[1],
                kind="replied",
                source="inbound",
                dedupe_key="reply:1",
                occurred_at=T0,
            )
        )
    assert catch_up(engine, T0) == 1  # the scheduler tick's roll-up: the reply had no event
    return w


def test_report_by_case(any_engine: Engine) -> None:
    w = _campaign(any_engine)
    report = build_report(any_engine, Dimension.CASE)
    assert report["by"] == "case"
    [row] = report["rows"]
    assert (row["key"], row["label"]) == (str(w.case_id), "jani (Jani)")
    assert row["counts"] == {
        "sends": 4,
        "deliveries": 3,
        "bounces": 1,
        "deferrals": 0,
        "human_opens": 2,
        "machine_opens": 1,
        "clicks": 3,
        "machine_clicks": 0,
        "letters": 0,
        "replies": 1,
        "acted": 2,
        "action_rate": 0.5,
    }
    assert report["totals"]["acted"] == 2


def test_report_by_language_and_day_add_up(any_engine: Engine) -> None:
    _campaign(any_engine)
    by_language = {
        r["key"]: r["counts"] for r in build_report(any_engine, Dimension.LANGUAGE)["rows"]
    }
    assert by_language["en"]["acted"] == 1 and by_language["es"]["acted"] == 1
    assert by_language["en"]["sends"] == 2 and by_language["es"]["replies"] == 1
    by_day = {r["key"]: r["counts"] for r in build_report(any_engine, Dimension.DAY)["rows"]}
    assert by_day["2020-12-01"]["clicks"] == 2 and by_day["2020-12-02"]["clicks"] == 1
    assert by_day["2020-12-01"]["sends"] == 4


def test_report_counts_each_event_once_whatever_the_replays(any_engine: Engine) -> None:
    w = _campaign(any_engine)
    ingest(any_engine, [sg_event(w, 0, "open", 3)])  # a redelivered event
    _process(any_engine)
    build_report(any_engine)
    [row] = build_report(any_engine, Dimension.WAVE)["rows"]
    assert row["label"] == "first"
    assert row["counts"]["human_opens"] == 2 and row["counts"]["acted"] == 2


def test_empty_database_reports_no_rate(any_engine: Engine) -> None:
    report = build_report(any_engine)
    assert report["rows"] == []
    assert report["totals"]["action_rate"] is None


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("x")', '\'=HYPERLINK("x")'),
        ("+1", "'+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("plain", "plain"),
        (-3, "-3"),
        (0.25, "0.25"),
        (None, ""),
    ],
)
def test_csv_cells_are_defused(value: object, cell: str) -> None:
    assert safe_cell(value) == cell


def test_to_csv_quotes_and_defuses() -> None:
    assert to_csv(["a", "b"], [["=1+1", "x,y"]]) == 'a,b\n\'=1+1,"x,y"\n'


def test_roll_up_works_in_bounded_chunks(any_engine: Engine) -> None:
    from sender.report.totals import roll_up_actions

    w = seed(any_engine, people=2)
    with session_scope(any_engine) as s:  # letters recorded by the action-link side
        s.add_all(
            Action(
                supporter_id=w.supporters[n % 2],
                case_id=w.case_id,
                wave_id=w.wave_id,
                message_id=w.messages[n % 2],
                kind="letter_sent",
                source="link",
                dedupe_key=f"letter:{n}",
                occurred_at=T0,
            )
            for n in range(7)
        )
    with session_scope(any_engine) as s:
        assert [roll_up_actions(s, T0, limit=3) for _ in range(4)] == [3, 3, 1, 0]
    [row] = build_report(any_engine)["rows"]
    assert (row["counts"]["letters"], row["counts"]["acted"]) == (7, 2)


def _sending_batch(engine: Engine, w: World) -> int:
    """The later wave's planned messages in one batch that is in flight (SENDING)."""
    with session_scope(engine) as s:
        batch = Batch(
            wave_id=w.later_wave_id,
            case_id=w.case_id,
            language="en",
            send_after=T0,
            send_before=T0 + timedelta(hours=4),
            status=BatchStatus.SENDING,
            size=len(w.planned),
            send_key="key-1",
        )
        s.add(batch)
        s.flush()
        s.execute(update(Message).where(Message.id.in_(w.planned)).values(batch_id=batch.id))
        return batch.id


def test_sends_are_counted_once_when_the_provider_accepts(any_engine: Engine) -> None:
    w = seed(any_engine, people=3)
    batch_id = _sending_batch(any_engine, w)
    later = T0 + timedelta(days=1)
    with session_scope(any_engine) as s:
        assert record_accepted(s, batch_id, "key-1", later, "sg-1") == 3
    with session_scope(any_engine) as s:  # a second acceptance of the same batch: no-op
        assert record_accepted(s, batch_id, "key-1", later, "sg-1") == 0
    by_wave = {
        r["key"]: r["counts"]["sends"] for r in build_report(any_engine, Dimension.WAVE)["rows"]
    }
    assert by_wave == {str(w.wave_id): 3, str(w.later_wave_id): 3}
    by_day = {
        r["key"]: r["counts"]["sends"] for r in build_report(any_engine, Dimension.DAY)["rows"]
    }
    assert by_day == {"2020-12-01": 3, "2020-12-02": 3}


def test_sends_counted_in_a_rolled_back_transaction_are_not_counted(pg_engine: Engine) -> None:
    w = seed(pg_engine, people=2)
    batch_id = _sending_batch(pg_engine, w)
    with pytest.raises(RuntimeError), session_scope(pg_engine) as s:
        assert record_accepted(s, batch_id, "key-1", T0, "sg-1") == 2
        raise RuntimeError("the worker died before commit")
    assert build_report(pg_engine)["totals"]["sends"] == 2  # wave 1's only
    with session_scope(pg_engine) as s:
        assert record_accepted(s, batch_id, "key-1", T0, "sg-1") == 2
    assert build_report(pg_engine)["totals"]["sends"] == 4


def test_the_ticks_catch_up_works_off_a_backlog_over_several_ticks(any_engine: Engine) -> None:
    w = seed(any_engine, people=4)
    with session_scope(any_engine) as s:  # four replies with no webhook event behind them
        s.add_all(
            Action(
                supporter_id=w.supporters[n],
                case_id=w.case_id,
                wave_id=w.wave_id,
                message_id=w.messages[n],
                kind="replied",
                source="inbound",
                dedupe_key=f"reply:{n}",
                occurred_at=T0,
            )
            for n in range(4)
        )
    # A tick takes at most two chunks of one: the rest waits for the next tick.
    assert catch_up(any_engine, T0, max_chunks=2, chunk=1) == 2
    assert build_report(any_engine, Dimension.CASE)["rows"][0]["counts"]["replies"] == 2
    assert catch_up(any_engine, T0, max_chunks=2, chunk=1) == 2
    assert catch_up(any_engine, T0, max_chunks=2, chunk=1) == 0
    assert build_report(any_engine, Dimension.CASE)["rows"][0]["counts"]["replies"] == 4
