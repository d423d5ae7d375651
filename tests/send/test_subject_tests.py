from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from audit_fixtures import audit_rows
from sending_fixtures import DEC1, RecordingTransport, add_wave, make_sender
from sqlalchemy import Engine, func, select
from subject_test_fixtures import (
    add_test_wave,
    audience,
    declared_test,
    emails_of,
    recipients,
    signal,
)

from sender.campaign.subject_tests import pick
from sender.campaign.waves import pause, resume
from sender.core.clock import MovableClock
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.errors import InvalidInput
from sender.core.models import Message, SubjectTest
from sender.core.vocabulary import (
    ActionKind,
    MessageStatus,
    SubjectMetric,
    SubjectState,
    WaveStatus,
)
from sender.ops.subject_status import subject_lines
from sender.report.variants import VariantRow
from sender.send.pipeline import SendPolicy
from sender.send.scheduler import InlineDispatcher, tick
from sender.send.subject_tests import Verdict, choose, decide, plan_remainder
from sender.staff.audit import Actor
from sender.staff.roles import Role

SETTINGS = Settings(secret_key="test")


def _staff(name: str) -> Actor:
    return Actor(name, Role.CAMPAIGNER, "test")


POLICY = SendPolicy(reconcile_grace=timedelta(minutes=5), queued_timeout=timedelta(minutes=5))


def _ticks(
    engine: Engine, clock: MovableClock, dispatcher: InlineDispatcher, hours: float
) -> list[str]:
    lines: list[str] = []
    for _ in range(int(hours * 2)):
        lines += tick(engine, SETTINGS, clock.at, dispatcher, POLICY).lines()
        clock.advance(minutes=30)
    return lines


def _state(engine: Engine, wave_id: int) -> SubjectTest:
    with session_scope(engine) as session:
        row = session.get_one(SubjectTest, wave_id)
        session.expunge(row)
        return row


def _setup(
    engine: Engine, **test: object
) -> tuple[int, RecordingTransport, MovableClock, InlineDispatcher]:
    audience(engine, SETTINGS)
    wave = add_test_wave(engine, SETTINGS, declared_test(**test))  # type: ignore[arg-type]
    transport = RecordingTransport()
    clock = MovableClock(DEC1 + timedelta(hours=9))  # the local window opens
    dispatcher = InlineDispatcher(make_sender(engine, SETTINGS, transport, clock))
    return wave, transport, clock, dispatcher


def test_the_test_share_is_a_seeded_draw_split_evenly_in_every_case_and_language(
    any_engine: Engine,
) -> None:
    wave, transport, clock, dispatcher = _setup(any_engine, share=0.2)
    tick(any_engine, SETTINGS, clock.at, dispatcher, POLICY)
    mailed = recipients(any_engine, wave)
    assert len(mailed) == 4 * 20  # a fifth of each stratum of 100
    strata = Counter((language, case, variant) for variant, language, case, _ in mailed.values())
    assert set(strata.values()) == {10}  # each variant half of every (case, language)
    assert {status for *_, status in mailed.values()} == {MessageStatus.SENT}
    subjects = {b.subject.split(":")[0] for b in transport.sent}
    assert subjects == {"A", "B"}  # each batch carries its variant's subject
    for batch in transport.sent:
        variant = batch.subject.split(":")[0]
        assert all(
            mailed[int(r.custom_args["supporter_id"])][0] == variant for r in batch.recipients
        )
    assert _state(any_engine, wave).state == SubjectState.TESTING
    # Nobody outside the share has anything planned, and the wave waits for its decision.
    with session_scope(any_engine) as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 80


def test_the_draw_follows_the_seed(pg_engine: Engine) -> None:
    audience(pg_engine, SETTINGS, per_stratum=50)
    waves = [
        add_test_wave(pg_engine, SETTINGS, declared_test(seed=seed), name=f"w{index}")
        for index, seed in enumerate((1, 1, 2))
    ]
    clock = MovableClock(DEC1)
    sender = make_sender(pg_engine, SETTINGS, RecordingTransport(), clock)
    tick(pg_engine, SETTINGS, clock.at, InlineDispatcher(sender), POLICY)  # plans all three first
    first, second, third = (recipients(pg_engine, wave) for wave in waves)
    assert len(first) == len(third) == 40
    assert {s: v[0] for s, v in first.items()} == {s: v[0] for s, v in second.items()}
    assert set(first) != set(third)


def _test_share(engine: Engine, wave: int) -> dict[str, list[int]]:
    by_variant: dict[str, list[int]] = {}
    for supporter, (variant, *_) in sorted(recipients(engine, wave).items()):
        by_variant.setdefault(variant, []).append(supporter)
    return by_variant


def _messages_per_supporter(engine: Engine, wave: int) -> Counter[int]:
    with session_scope(engine) as session:
        return Counter(session.scalars(select(Message.supporter_id).where(Message.wave_id == wave)))


def test_people_clicking_more_on_b_make_b_win_and_the_rest_get_b_once(pg_engine: Engine) -> None:
    wave, transport, clock, dispatcher = _setup(pg_engine)
    tick(pg_engine, SETTINGS, clock.at, dispatcher, POLICY)
    share = _test_share(pg_engine, wave)
    signal(pg_engine, wave, share["B"][:24], ActionKind.CLICKED)  # 24 of 40
    signal(pg_engine, wave, share["A"][:4], ActionKind.CLICKED)  # 4 of 40
    lines = _ticks(pg_engine, clock, dispatcher, hours=26)
    state = _state(pg_engine, wave)
    assert (state.state, state.winner, state.decided_by) == (SubjectState.FINISHED, "B", "rule")
    assert state.reason is not None and "B beat every other variant" in state.reason
    assert state.decided_at == DEC1 + timedelta(hours=13)  # sent at 09:00, then the 4 h wait
    assert any("subject test: B" in line for line in lines)
    mailed = recipients(pg_engine, wave)
    assert len(mailed) == 400 and set(_messages_per_supporter(pg_engine, wave).values()) == {1}
    tested = set(share["A"]) | set(share["B"])
    assert {mailed[s][0] for s in set(mailed) - tested} == {"B"}
    assert all(mailed[s][0] == v for v, ids in share.items() for s in ids)
    assert Counter(transport.emails()) == Counter(emails_of(pg_engine, mailed))  # once each
    with session_scope(pg_engine) as session:
        rest = session.scalars(
            select(Message.sent_at).where(
                Message.wave_id == wave, Message.supporter_id.not_in(tested)
            )
        ).all()
    assert set(rest) == {DEC1 + timedelta(days=1, hours=9)}  # the next morning's window
    assert _wave_status(pg_engine, wave) == WaveStatus.DONE
    (decided,) = audit_rows(pg_engine, "wave.decided")
    assert (decided.actor, decided.after) == ("system", "subject test=decided winner=B")


def _wave_status(engine: Engine, wave: int) -> str:
    from sending_fixtures import wave_status

    return wave_status(engine, wave)[0]


def test_machine_opens_never_win_on_opens(pg_engine: Engine) -> None:
    wave, _, clock, dispatcher = _setup(
        pg_engine, metric=SubjectMetric.HUMAN_OPENS, names=("B", "A")
    )  # B is the default: A has to win by the rule
    tick(pg_engine, SETTINGS, clock.at, dispatcher, POLICY)
    share = _test_share(pg_engine, wave)
    signal(pg_engine, wave, share["B"], ActionKind.OPENED_MACHINE)  # a privacy proxy: all 40
    signal(pg_engine, wave, share["B"][:2], ActionKind.OPENED)
    signal(pg_engine, wave, share["A"][:15], ActionKind.OPENED)
    _ticks(pg_engine, clock, dispatcher, hours=5)
    state = _state(pg_engine, wave)
    assert (state.winner, state.decided_by) == ("A", "rule")
    assert state.reason is not None and "B 2/40" in state.reason and "A 15/40" in state.reason


def test_a_tie_sends_the_default_and_says_so(pg_engine: Engine) -> None:
    wave, _, clock, dispatcher = _setup(pg_engine)
    tick(pg_engine, SETTINGS, clock.at, dispatcher, POLICY)
    share = _test_share(pg_engine, wave)
    signal(pg_engine, wave, share["A"][:6], ActionKind.CLICKED)
    signal(pg_engine, wave, share["B"][:6], ActionKind.CLICKED)
    signal(pg_engine, wave, share["B"][6:30], ActionKind.CLICKED_MACHINE)  # a scanner: no weight
    _ticks(pg_engine, clock, dispatcher, hours=5)
    state = _state(pg_engine, wave)
    assert state.winner == "A"
    assert state.reason is not None and state.reason.startswith("a tie on human_clicks")
    assert "the default A goes out" in state.reason


def test_too_few_sent_sends_the_default(pg_engine: Engine) -> None:
    wave, _, clock, dispatcher = _setup(pg_engine, min_sends=50)
    tick(pg_engine, SETTINGS, clock.at, dispatcher, POLICY)
    signal(pg_engine, wave, _test_share(pg_engine, wave)["B"][:30], ActionKind.CLICKED)
    _ticks(pg_engine, clock, dispatcher, hours=5)
    state = _state(pg_engine, wave)
    assert state.winner == "A"
    assert state.reason is not None and state.reason.startswith("too few sent to compare")


def test_nothing_is_picked_while_the_wave_is_paused(pg_engine: Engine) -> None:
    wave, _, clock, dispatcher = _setup(pg_engine)
    tick(pg_engine, SETTINGS, clock.at, dispatcher, POLICY)
    signal(pg_engine, wave, _test_share(pg_engine, wave)["B"][:24], ActionKind.CLICKED)
    pause(pg_engine, "case-email")
    _ticks(pg_engine, clock, dispatcher, hours=10)  # well past the decision time
    assert _state(pg_engine, wave).state == SubjectState.TESTING
    (line,) = subject_lines(pg_engine, clock.at, list(WaveStatus))
    assert line.endswith("subject test A/B on human_clicks (A 0/40, B 24/40): paused, no decision")
    assert len(recipients(pg_engine, wave)) == 80  # no remainder either
    resume(pg_engine, "case-email", clock.at)
    tick(pg_engine, SETTINGS, clock.at, dispatcher, POLICY)
    state = _state(pg_engine, wave)
    assert (state.state, state.winner) == (SubjectState.FINISHED, "B")
    assert state.decided_at == clock.at
    assert len(recipients(pg_engine, wave)) == 400


def test_a_decision_due_after_the_wave_ends_is_taken_at_its_end_and_sends_nothing_late(
    pg_engine: Engine,
) -> None:
    wave, transport, clock, dispatcher = _setup(pg_engine, wait_hours=100)
    tick(pg_engine, SETTINGS, clock.at, dispatcher, POLICY)
    _ticks(pg_engine, clock, dispatcher, hours=64)  # the wave ends 3 days after its start
    state = _state(pg_engine, wave)
    assert (state.state, state.decided_at) == (SubjectState.FINISHED, DEC1 + timedelta(days=3))
    assert len(recipients(pg_engine, wave)) == 80  # the remainder had no window left
    assert len(transport.emails()) == 80
    assert _wave_status(pg_engine, wave) == WaveStatus.DONE


def test_concurrent_tickers_decide_once_and_plan_the_remainder_once(pg_engine: Engine) -> None:
    wave, _, clock, dispatcher = _setup(pg_engine)
    tick(pg_engine, SETTINGS, clock.at, dispatcher, POLICY)
    signal(pg_engine, wave, _test_share(pg_engine, wave)["B"][:24], ActionKind.CLICKED)
    clock.advance(hours=5)
    reports = []
    start = threading.Barrier(3)

    def run() -> None:
        start.wait()
        reports.append(tick(pg_engine, SETTINGS, clock.at, dispatcher, POLICY))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(len(r.decided) for r in reports) == 1
    assert sum(1 for r in reports for p in r.planned if p.messages) == 1
    assert set(_messages_per_supporter(pg_engine, wave).values()) == {1}
    assert len(recipients(pg_engine, wave)) == 400


def test_a_scheduler_killed_after_the_decision_plans_the_remainder_with_it_once(
    pg_engine: Engine,
) -> None:
    wave, _, clock, dispatcher = _setup(pg_engine)
    tick(pg_engine, SETTINGS, clock.at, dispatcher, POLICY)
    share = _test_share(pg_engine, wave)
    signal(pg_engine, wave, share["B"][:24], ActionKind.CLICKED)
    clock.advance(hours=5)
    verdict = decide(pg_engine, wave, clock.at)  # committed; the process dies before planning
    assert verdict is not None and verdict.winner == "B"
    # Later evidence for A does not reopen a decision already taken.
    signal(pg_engine, wave, share["A"], ActionKind.CLICKED)
    assert decide(pg_engine, wave, clock.at) is None
    clock.advance(minutes=30)
    report = tick(pg_engine, SETTINGS, clock.at, dispatcher, POLICY)
    assert report.decided == ()
    assert [p.messages for p in report.planned] == [320]
    assert plan_remainder(pg_engine, SETTINGS, wave, clock.at + timedelta(minutes=30)) is None
    mailed = recipients(pg_engine, wave)
    assert {mailed[s][0] for s in mailed if s not in set(share["A"]) | set(share["B"])} == {"B"}


def test_staff_may_pick_the_winner_before_the_wait_ends(pg_engine: Engine) -> None:
    wave, _, clock, dispatcher = _setup(pg_engine)
    tick(pg_engine, SETTINGS, clock.at, dispatcher, POLICY)
    clock.advance(hours=1)
    note = pick(pg_engine, "case-email", "B", clock.at, _staff("staff@example.org"))
    assert "B picked" in note
    with pytest.raises(InvalidInput, match="decided already"):
        pick(pg_engine, "case-email", "A", clock.at, _staff("other@example.org"))
    tick(pg_engine, SETTINGS, clock.at, dispatcher, POLICY)
    state = _state(pg_engine, wave)
    assert (state.state, state.winner, state.decided_by) == (
        SubjectState.FINISHED,
        "B",
        "staff@example.org",
    )
    assert len(recipients(pg_engine, wave)) == 400
    picked, second = audit_rows(pg_engine, "wave.pick")  # the second pick fails, recorded
    assert (picked.actor, picked.after) == ("staff@example.org", "subject test=decided winner=B")
    assert (second.actor, second.outcome) == ("other@example.org", "failed")
    assert "decided already" in (second.detail or "")
    assert audit_rows(pg_engine, "wave.decided") == []


@pytest.mark.parametrize(
    ("variant", "problem"), [("Z", "has no variant 'Z'"), ("B", "runs no subject test")]
)
def test_a_bad_pick_is_refused_and_changes_nothing(
    pg_engine: Engine, variant: str, problem: str
) -> None:
    wave, _, clock, dispatcher = _setup(pg_engine)
    plain = add_wave(pg_engine, SETTINGS, name="plain")
    tick(pg_engine, SETTINGS, clock.at, dispatcher, POLICY)
    target = "plain" if problem.startswith("runs") else "case-email"
    with pytest.raises(InvalidInput, match=problem):
        pick(pg_engine, target, variant, clock.at, _staff("staff@example.org"))
    assert _state(pg_engine, wave).state == SubjectState.TESTING
    with session_scope(pg_engine) as session:
        assert session.get(SubjectTest, plain) is None


def test_choose_needs_a_significant_lead_over_every_variant() -> None:
    test = declared_test(names=("A", "B", "C"))
    rows = {
        "A": VariantRow("A", "test", sends=100, human_clicks=10),
        "B": VariantRow("B", "test", sends=100, human_clicks=30),
        "C": VariantRow("C", "test", sends=100, human_clicks=24),
    }
    verdict = choose(test, rows)  # B beats A clearly but C only by chance
    assert (verdict.winner, verdict.won) == ("A", False)
    assert verdict.reason.startswith(
        "no variant beat every other on human_clicks at 95% confidence"
    )
    rows["C"] = VariantRow("C", "test", sends=100, human_clicks=9)
    assert choose(test, rows) == Verdict("B", True, choose(test, rows).reason)
    assert choose(test, rows).won
