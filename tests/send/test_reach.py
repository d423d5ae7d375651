"""A wave's reach before launch: the planner's rules, counted by case, language and reason."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

import pytest
from sending_fixtures import DEC1, add_case, add_supporters, add_wave
from sqlalchemy import Engine, func, select, text, update
from subject_test_fixtures import BILINGUAL, add_test_wave, declared_test, recipients

from sender.core.addresses import email_hash
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.models import Action, Case, Message, Supporter, Suppression, Wave
from sender.core.vocabulary import (
    AudienceRule,
    CaseStatus,
    MessageStatus,
    SupporterStatus,
    WaveKind,
    WaveStatus,
)
from sender.send.planner import plan_wave
from sender.send.reach import ReachRow, reach_statement, statement_settings, wave_reach

SETTINGS = Settings(secret_key="test", batch_size=10)
LATER = DEC1 + timedelta(days=20)
CAP = timedelta(hours=SETTINGS.frequency_cap_hours)


def people(engine: Engine) -> tuple[int, int, dict[str, int]]:
    """Two cases; supporters who acted, did not, left, are suppressed, or were just mailed."""
    case, other = add_case(engine, SETTINGS), add_case(engine, SETTINGS, "other")
    names = ["wrote", "idle", "spanish", "gone", "suppressed", "recent", "no-consent"]
    ids = dict(
        zip(names, add_supporters(engine, [case], [f"{n}@x.org" for n in names]), strict=True)
    )
    add_supporters(engine, [other], ["elsewhere@x.org"])
    with session_scope(engine) as session:
        session.add(
            Action(supporter_id=ids["wrote"], case_id=case, kind="letter_sent", source="link")
        )
        session.add(Suppression(email_hash=email_hash("suppressed@x.org"), reason="bounced"))
        session.execute(
            update(Supporter)
            .where(Supporter.id == ids["gone"])
            .values(status=SupporterStatus.UNSUBSCRIBED)
        )
        session.execute(
            update(Supporter).where(Supporter.id == ids["no-consent"]).values(consent=False)
        )
        session.execute(
            update(Supporter).where(Supporter.id == ids["spanish"]).values(language="es")
        )
    earlier = add_wave(engine, SETTINGS, "earlier", status=WaveStatus.DONE)
    with session_scope(engine) as session:
        session.add(
            Message(
                wave_id=earlier,
                supporter_id=ids["recent"],
                case_id=case,
                language="en",
                status=MessageStatus.SENT,
                sent_at=LATER - timedelta(hours=1),
            )
        )
    return case, other, ids


def test_a_reminder_leaves_out_those_who_acted_and_each_other_reason(any_engine: Engine) -> None:
    people(any_engine)
    wave = add_wave(
        any_engine,
        SETTINGS,
        "nudge",
        kind=WaveKind.ACTION_REMINDER,
        audience=AudienceRule.NOT_ACTED,
        starts_at=LATER,
    )
    reach = wave_reach(any_engine, wave, LATER, CAP)
    assert reach.included == (
        ReachRow("nassima", "en", "included", 1),
        ReachRow("nassima", "es", "included", 1),
        ReachRow("other", "en", "included", 1),
    )
    assert reach.excluded() == {
        "acted": 1,
        "frequency_cap": 1,
        "no_consent": 1,
        "suppressed": 1,
        "unsubscribed": 1,
    }
    result = plan_wave(any_engine, SETTINGS, wave, LATER)
    assert result is not None and result.messages == reach.total == 3


def test_a_thank_you_counts_only_those_who_acted(any_engine: Engine) -> None:
    people(any_engine)
    wave = add_wave(
        any_engine,
        SETTINGS,
        "thanks",
        kind=WaveKind.THANK_YOU,
        audience=AudienceRule.ACTED,
        starts_at=LATER,
    )
    reach = wave_reach(any_engine, wave, LATER, CAP)
    assert reach.included == (ReachRow("nassima", "en", "included", 1),)
    assert reach.excluded()["not_acted"] == 3  # idle, spanish, elsewhere
    result = plan_wave(any_engine, SETTINGS, wave, LATER)
    assert result is not None and result.messages == reach.total


def test_a_subject_tests_split_is_the_planners_draw(pg_engine: Engine) -> None:
    """Uneven strata and three variants: the counts the launch page shows are the plan's."""
    cases = [add_case(pg_engine, SETTINGS, s, content=BILINGUAL) for s in ("nassima", "germain")]
    for case, (english, spanish) in zip(cases, ((23, 7), (11, 2)), strict=True):
        add_supporters(pg_engine, [case], [f"en{i}-{case}@x.org" for i in range(english)])
        add_supporters(
            pg_engine, [case], [f"es{i}-{case}@x.org" for i in range(spanish)], language="es"
        )
    test = declared_test(share=0.3, names=("A", "B", "C"))
    wave = add_test_wave(pg_engine, SETTINGS, test, status=WaveStatus.SCHEDULED)
    split = wave_reach(pg_engine, wave, DEC1, CAP).split()
    plan_wave(pg_engine, SETTINGS, wave, DEC1)
    planned = Counter(variant for variant, *_ in recipients(pg_engine, wave).values())
    assert split is not None and split.now == dict(planned)
    assert split.tested + split.later == 43 and split.tested == sum(planned.values())


def _planned_per_case(engine: Engine, wave: int) -> dict[str, int]:
    with session_scope(engine) as session:
        rows = session.execute(
            select(Case.slug, func.count())
            .join(Message, Message.case_id == Case.id)
            .where(Message.wave_id == wave)
            .group_by(Case.slug)
        ).all()
    return {slug: int(n) for slug, n in rows}


def _act(engine: Engine, supporter: int, case: int, kind: str) -> None:
    with session_scope(engine) as session:
        session.add(Action(supporter_id=supporter, case_id=case, kind=kind, source="link"))


@pytest.mark.parametrize(
    ("kind", "audience", "included", "excluded"),
    [
        (WaveKind.CASE_EMAIL, AudienceRule.ALL_ASSIGNED, {"first": 6}, {}),
        (WaveKind.ACTION_REMINDER, AudienceRule.NOT_ACTED, {"first": 3, "second": 1}, {"acted": 2}),
        (
            WaveKind.LAST_CHANCE,
            AudienceRule.OPENED_NOT_ACTED,
            {"second": 1},
            {"acted": 3, "not_opened": 2},
        ),
        (WaveKind.THANK_YOU, AudienceRule.ACTED, {"first": 3}, {"not_acted": 3}),
        ("good_news", AudienceRule.CASE_ASSIGNED, {"first": 5, "won": 1}, {}),
    ],
)
def test_a_supporter_of_several_cases_is_counted_on_the_case_the_planner_picks(
    any_engine: Engine,
    kind: str,
    audience: str,
    included: dict[str, int],
    excluded: dict[str, int],
) -> None:
    """The first assigned case that passes the audience's case rule, not merely the first
    assigned (a reminder about the second case once the first is acted on); a resolved
    case first for good news; the openers' reminder needs an open of that case."""
    first, second = (
        add_case(any_engine, SETTINGS, "first"),
        add_case(any_engine, SETTINGS, "second"),
    )
    won = add_case(any_engine, SETTINGS, "won")
    with session_scope(any_engine) as session:
        session.execute(update(Case).where(Case.id == won).values(status=CaseStatus.RESOLVED))
    names = ["acted-first", "opened-second", "won-too", "opened-acted", "idle", "acted-both"]
    both, opened_second, won_too, opened_acted, _idle, acted_both = (
        add_supporters(any_engine, [first, second], [f"{n}@x.org" for n in names[:2]])
        + add_supporters(any_engine, [first, won], [f"{names[2]}@x.org"])
        + add_supporters(any_engine, [first], [f"{n}@x.org" for n in names[3:5]])
        + add_supporters(any_engine, [first, second], [f"{names[5]}@x.org"])
    )
    _act(any_engine, both, first, "letter_sent")
    _act(any_engine, opened_second, second, "opened")
    _act(any_engine, opened_acted, first, "opened")
    _act(any_engine, opened_acted, first, "replied")
    _act(any_engine, acted_both, first, "letter_sent")
    _act(any_engine, acted_both, second, "clicked")
    _act(any_engine, won_too, first, "opened_machine")  # a machine's open is no open
    wave = add_wave(any_engine, SETTINGS, "wave", kind=kind, audience=audience, starts_at=LATER)
    reach = wave_reach(any_engine, wave, LATER, CAP)
    per_case: Counter[str] = Counter()
    for row in reach.included:
        per_case[row.case] += row.supporters
    assert dict(per_case) == included
    assert reach.excluded() == excluded
    plan_wave(any_engine, SETTINGS, wave, LATER)
    assert _planned_per_case(any_engine, wave) == included


@pytest.mark.parametrize("audience", [AudienceRule.ALL_ASSIGNED, AudienceRule.OPENED_NOT_ACTED])
def test_postgresql_hashes_each_set_once_instead_of_a_subplan_per_supporter(
    pg_engine: Engine, audience: str
) -> None:
    """The plan the 1M timings depend on: every set a hashed SubPlan (built once), none a
    per-row one, and the settings gone with the transaction. (On tables this small
    PostgreSQL hashes a correlated EXISTS too; at 1M it did not: docs/PERFORMANCE.md.)"""
    people(pg_engine)
    wave_id = add_wave(pg_engine, SETTINGS, "plan", audience=audience, starts_at=LATER)
    with session_scope(pg_engine) as session:
        statement_settings(session)
        wave = session.get_one(Wave, wave_id)
        statement = reach_statement(wave, LATER - CAP)
        compiled = statement.compile(pg_engine, compile_kwargs={"literal_binds": True})
        lines = session.scalars(text(f"EXPLAIN (VERBOSE) {compiled}"))
        plan = "\n".join(str(line) for line in lines)
        assert session.scalar(text("SHOW jit")) == "off"
    subplans = set(re.findall(r"SubPlan (\d+)", plan))
    assert subplans and set(re.findall(r"hashed SubPlan (\d+)", plan)) == subplans, plan
    assert "$" not in plan, plan  # no set is given the row's values as parameters
    with session_scope(pg_engine) as session:
        assert session.scalar(text("SHOW work_mem")) != "128MB"
