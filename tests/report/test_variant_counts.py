"""A subject test's running totals against the plain count they stand in for."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta

import pytest
from alembic import command
from sending_fixtures import DEC1, RecordingTransport, make_sender
from sqlalchemy import Engine, delete, select, update
from subject_test_fixtures import add_test_wave, audience, declared_test, recipients, signal

from sender.core import db
from sender.core.clock import MovableClock
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.models import (
    Action,
    Message,
    RollUpMark,
    VariantActor,
    VariantCount,
    Wave,
)
from sender.core.vocabulary import ActionKind, SubjectMetric, SubjectState
from sender.report import variants
from sender.report.totals import unmask_click
from sender.send import scheduler
from sender.send.pipeline import SendPolicy
from sender.send.scheduler import InlineDispatcher, tick
from sender.send.store import reopen_failed_messages
from sender.send.subject_tests import choose
from sender.track.actions import new_action, record_action
from sender.track.suppressions import Failed, fail_messages

SETTINGS = Settings(secret_key="test")
POLICY = SendPolicy(reconcile_grace=timedelta(minutes=5), queued_timeout=timedelta(minutes=5))
START = DEC1 + timedelta(hours=9)  # the local window opens


@dataclass
class Held:
    """A dispatcher that keeps the batches a tick releases, to send them after it."""

    ids: list[int] = field(default_factory=list)

    def dispatch(self, batch_ids: Sequence[int]) -> None:
        self.ids.extend(batch_ids)


def _setup(engine: Engine, per_stratum: int = 20) -> tuple[int, MovableClock, InlineDispatcher]:
    audience(engine, SETTINGS, per_stratum=per_stratum)
    wave = add_test_wave(engine, SETTINGS, declared_test(share=0.5, min_sends=5))
    clock = MovableClock(START)
    return wave, clock, InlineDispatcher(make_sender(engine, SETTINGS, RecordingTransport(), clock))


def _report(engine: Engine, wave_id: int) -> variants.TestReport:
    with session_scope(engine) as session:
        report = variants.test_report(session, session.get_one(Wave, wave_id))
    assert report is not None
    return report


def _plain(engine: Engine, wave_id: int) -> tuple[variants.VariantRow, ...]:
    with session_scope(engine) as session:
        return variants.variant_rows(session, wave_id)


def _share(engine: Engine, wave_id: int) -> dict[str, list[int]]:
    by: dict[str, list[int]] = {}
    for supporter, (variant, *_) in sorted(recipients(engine, wave_id).items()):
        by.setdefault(variant, []).append(supporter)
    return by


def _signals(engine: Engine, wave_id: int, share: dict[str, list[int]]) -> None:
    signal(engine, wave_id, share["B"][:9], ActionKind.CLICKED)
    signal(engine, wave_id, share["A"][:3], ActionKind.CLICKED)
    signal(engine, wave_id, share["A"][:12], ActionKind.OPENED)
    signal(engine, wave_id, share["B"], ActionKind.OPENED_MACHINE)
    signal(engine, wave_id, share["B"][:2], ActionKind.LETTER_SENT)
    signal(engine, wave_id, share["B"][1:4], ActionKind.REPLIED)  # one wrote and replied
    _action(engine, wave_id, share["B"][0], ActionKind.CLICKED, "again", acting=True)
    _action(engine, wave_id, share["A"][5], ActionKind.CLICKED, "other-link", acting=False)


def _action(
    engine: Engine, wave_id: int, supporter: int, kind: ActionKind, key: str, acting: bool
) -> None:
    with session_scope(engine) as session:
        message = session.scalars(
            select(Message).where(Message.wave_id == wave_id, Message.supporter_id == supporter)
        ).one()
        record_action(
            session,
            new_action(
                kind,
                source="test",
                key=f"test:{key}:{message.id}",
                occurred_at=START + timedelta(hours=1),
                supporter_id=supporter,
                case_id=message.case_id,
                wave_id=wave_id,
                message_id=message.id,
                acting=acting,
            ),
        )


def test_the_totals_agree_with_the_plain_count_once_a_tick_has_counted(
    any_engine: Engine,
) -> None:
    wave, clock, dispatcher = _setup(any_engine)
    tick(any_engine, SETTINGS, clock.at, dispatcher, POLICY)  # the test share, planned and sent
    share = _share(any_engine, wave)
    assert rolled_rows_of(any_engine, wave) == _plain(any_engine, wave)
    _signals(any_engine, wave, share)
    lagging = _report(any_engine, wave)
    assert lagging.rows != _plain(any_engine, wave)  # the actions wait for the tick's roll-up
    assert lagging.as_of == START and "Figures as of 2020-12-01 09:00 UTC." in variants.summary(
        lagging
    )
    clock.advance(minutes=30)
    tick(any_engine, SETTINGS, clock.at, dispatcher, POLICY)
    counted = _report(any_engine, wave)
    assert counted.rows == _plain(any_engine, wave) and counted.as_of == clock.at
    rows = {(r.variant, r.part): r for r in counted.rows}
    b, a = rows[("B", "test")], rows[("A", "test")]
    assert (b.sends, b.human_clicks, b.machine_opens, b.actions) == (len(share["B"]), 9, 20, 4)
    assert (a.sends, a.human_clicks, a.human_opens, a.machine_clicks) == (len(share["A"]), 3, 12, 0)
    spec = counted.test
    with session_scope(any_engine) as session:
        plain = {r.variant: r for r in variants.variant_rows(session, wave) if r.part == "test"}
    for metric in SubjectMetric:  # the rule would decide alike on either, whatever it measures
        measured = replace(spec, metric=metric)
        assert choose(measured, counted.test_rows()) == choose(measured, plain)
    for _ in range(2 * 26):  # the decision, then the rest of the wave the next morning
        clock.advance(minutes=30)
        tick(any_engine, SETTINGS, clock.at, dispatcher, POLICY)
    (done,) = variants.wave_tests(any_engine, None)
    assert done.state == SubjectState.FINISHED
    assert done.rows == _plain(any_engine, wave)
    assert {r.part for r in done.rows} == {"test", "remainder"}
    assert sum(r.sends for r in done.rows) == 80
    assert variants.as_json(done)["as_of"] == clock.at.isoformat()


def rolled_rows_of(engine: Engine, wave_id: int) -> tuple[variants.VariantRow, ...]:
    with session_scope(engine) as session:
        return variants.rolled_rows(session, wave_id)


def test_batches_sent_after_the_tick_are_counted_at_once(any_engine: Engine) -> None:
    wave, clock, dispatcher = _setup(any_engine)
    held = Held()
    tick(any_engine, SETTINGS, clock.at, held, POLICY)  # planned and released, not sent
    assert _report(any_engine, wave).rows == () == _plain(any_engine, wave)
    dispatcher.dispatch(held.ids)  # a worker sends them after the tick
    report = _report(any_engine, wave)  # the batches' tallies moved as they were accepted
    assert report.rows == _plain(any_engine, wave) != ()
    assert _sent(report) == 40 and len(held.ids) > 1
    assert variants.summary(report).endswith("Figures as of 2020-12-01 09:00 UTC.")


def test_a_backlog_left_waiting_keeps_the_people_as_of_the_last_tick(
    any_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    wave, clock, dispatcher = _setup(any_engine)
    tick(any_engine, SETTINGS, clock.at, dispatcher, POLICY)
    _signals(any_engine, wave, _share(any_engine, wave))
    monkeypatch.setattr(scheduler, "ROLL_UP_CHUNK", 1)  # the tick's budget: one action
    monkeypatch.setattr(scheduler, "CATCH_UP_CHUNKS", 1)
    clock.advance(minutes=30)
    tick(any_engine, SETTINGS, clock.at, dispatcher, POLICY)  # rolls up more than its budget
    assert _report(any_engine, wave).as_of == START  # so it may have left some waiting
    monkeypatch.undo()
    clock.advance(minutes=30)
    tick(any_engine, SETTINGS, clock.at, dispatcher, POLICY)
    report = _report(any_engine, wave)
    assert report.as_of == clock.at and report.rows == _plain(any_engine, wave)


def test_before_any_tick_counted_the_report_says_so(any_engine: Engine) -> None:
    wave, clock, dispatcher = _setup(any_engine)
    tick(any_engine, SETTINGS, clock.at, dispatcher, POLICY)
    with session_scope(any_engine) as session:
        session.execute(delete(RollUpMark))
    assert "Figures: not counted yet" in variants.summary(_report(any_engine, wave))


def test_an_unmasked_click_moves_its_person_to_machine_clicks_at_once(pg_engine: Engine) -> None:
    wave, clock, dispatcher = _setup(pg_engine)
    tick(pg_engine, SETTINGS, clock.at, dispatcher, POLICY)
    share = _share(pg_engine, wave)
    _signals(pg_engine, wave, share)
    clock.advance(minutes=30)
    tick(pg_engine, SETTINGS, clock.at, dispatcher, POLICY)
    twice, once = share["B"][0], share["B"][1]  # B's first clicked twice
    with session_scope(pg_engine) as session:
        for supporter in (twice, once):
            click = session.scalars(
                select(Action).where(
                    Action.supporter_id == supporter,
                    Action.kind == ActionKind.CLICKED,
                    Action.dedupe_key.like("test:clicked:%"),
                )
            ).one()
            click.kind, click.acting = ActionKind.CLICKED_MACHINE.value, False
            session.flush()
            unmask_click(session, click)
    report = _report(pg_engine, wave)
    assert report.rows == _plain(pg_engine, wave)
    b = {(r.variant, r.part): r for r in report.rows}[("B", "test")]
    assert (b.human_clicks, b.machine_clicks) == (8, 2)


def test_a_dropped_message_leaves_the_sends_at_once(pg_engine: Engine) -> None:
    wave, clock, dispatcher = _setup(pg_engine)
    tick(pg_engine, SETTINGS, clock.at, dispatcher, POLICY)
    with session_scope(pg_engine) as session:
        message = session.scalars(select(Message.id).where(Message.wave_id == wave)).first()
        assert message is not None
        assert fail_messages(session, [Failed(message, "dropped: quota")]) == 1
    report = _report(pg_engine, wave)  # no tick: fail_messages moved its batch's tally
    assert report.rows == _plain(pg_engine, wave) and _sent(report) == 39


def test_a_batch_sent_again_is_counted_again(any_engine: Engine) -> None:
    wave, clock, dispatcher = _setup(any_engine)
    tick(any_engine, SETTINGS, clock.at, dispatcher, POLICY)
    with session_scope(any_engine) as session:
        ids = list(session.scalars(select(Message.id).where(Message.wave_id == wave).limit(3)))
        fail_messages(session, [Failed(i, "dropped: quota") for i in ids])
    assert _sent(_report(any_engine, wave)) == _sent_plain(any_engine, wave) == 37
    with session_scope(any_engine) as session:  # staff send the dropped mail again
        assert reopen_failed_messages(session, wave, {"dropped: quota"}) == 3
    assert _sent(_report(any_engine, wave)) == _sent_plain(any_engine, wave) == 37
    clock.advance(minutes=30)
    tick(any_engine, SETTINGS, clock.at, dispatcher, POLICY)  # sent again
    assert _sent(_report(any_engine, wave)) == _sent_plain(any_engine, wave) == 40
    assert _report(any_engine, wave).rows == _plain(any_engine, wave)


def _sent(report: variants.TestReport) -> int:
    return sum(r.sends for r in report.rows)


def _sent_plain(engine: Engine, wave_id: int) -> int:
    with session_scope(engine) as session:
        return sum(r.sends for r in variants.variant_rows(session, wave_id))


def test_the_migration_counts_waves_tested_before_it(any_engine: Engine) -> None:
    wave, clock, dispatcher = _setup(any_engine)
    tick(any_engine, SETTINGS, clock.at, dispatcher, POLICY)
    _signals(any_engine, wave, _share(any_engine, wave))
    clock.advance(minutes=30)
    tick(any_engine, SETTINGS, clock.at, dispatcher, POLICY)
    before = _report(any_engine, wave).rows
    assert before == _plain(any_engine, wave)
    command.downgrade(db.alembic_config(any_engine), "0010")
    try:
        with any_engine.begin() as connection:  # an action the roll-up had not counted yet
            connection.execute(
                update(Action).where(Action.kind == "replied").values(rolled_up_at=None)
            )
    finally:
        db.upgrade(any_engine)
    with session_scope(any_engine) as session:
        assert session.scalar(select(VariantActor.wave_id).limit(1)) == wave
        assert session.scalar(select(VariantCount.wave_id).limit(1)) == wave
    after = rolled_rows_of(any_engine, wave)
    assert after != before  # the replies wait for the roll-up; the sends are the tallies
    assert [(r.variant, r.part, r.sends) for r in after] == [
        (r.variant, r.part, r.sends) for r in before
    ]
    clock.advance(minutes=30)
    tick(any_engine, SETTINGS, clock.at, dispatcher, POLICY)
    assert rolled_rows_of(any_engine, wave) == before == _plain(any_engine, wave)
