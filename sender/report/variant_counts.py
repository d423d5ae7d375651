"""A subject test's figures kept as running totals, as sender.report.totals keeps the report's.

Counting a tested wave's messages and distinct acting supporters on every read
took 1.7 s at a million messages. So the figures are kept as they happen:

- people: `roll_up_signals` counts each supporter once per signal of a tested
  wave (`variant_actors`, as `case_actors` does per case) with the variant and
  part of their message, and adds to `variant_counts`; `roll_up_actions` calls
  it on the actions it claims, in its transaction, and `unmask_click` corrects
  it when a counted click turns out to be a machine's;
- messages sent: not kept here. The batches' tallies (`Batch.sent_count`,
  moved by sender.core.tallies in the statements that move messages, drops and
  re-sends included) are summed per variant and part at read time, so they
  are exact and never lag; only the people wait for the roll-up.

sender.report.variants reads these; its plain count (`variant_rows`) stays as
their twin, and it is what the decision rule reads, so the rule decides as it
always did whatever the roll-up's lag.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, case, delete, func, literal, select
from sqlalchemy.orm import QueryableAttribute, Session

from sender.core.db import session_scope
from sender.core.models import (
    Action,
    Batch,
    Message,
    RollUpMark,
    SubjectTest,
    VariantActor,
    VariantCount,
)
from sender.core.upsert import insert_for
from sender.core.vocabulary import ActionKind

TEST = "test"
REMAINDER = "remainder"
SENDS = "sends"

# The report's column each action kind counts people in; a person's click only when
# acting (a tracked click on another link is no signal), as the plain count has it.
KIND_COLUMN: Mapping[str, str] = {
    ActionKind.OPENED.value: "human_opens",
    ActionKind.OPENED_MACHINE.value: "machine_opens",
    ActionKind.CLICKED.value: "human_clicks",
    ActionKind.CLICKED_MACHINE.value: "machine_clicks",
    ActionKind.LETTER_SENT.value: "actions",  # a letter or a reply: one person counts once
    ActionKind.REPLIED.value: "actions",
}
HUMAN_CLICKS = KIND_COLUMN[ActionKind.CLICKED.value]
MACHINE_CLICKS = KIND_COLUMN[ActionKind.CLICKED_MACHINE.value]

MARK = "variants"  # roll_up_marks: the tick whose roll-up last left no action waiting
# The ids a roll-up looks up per query: far below either database's parameter limit.
_LOOKUP_CHUNK = 5_000


def part_of(started: ColumnElement[datetime] | QueryableAttribute[datetime]) -> ColumnElement[str]:
    """SQL: a batch planned by the test share's planning is the test's, later ones the rest's."""
    return case((Batch.created_at <= started, literal(TEST)), else_=literal(REMAINDER))


def column_for(kind: str, acting: bool) -> str | None:
    """The column an action counts its supporter in; None for no signal."""
    if kind == ActionKind.CLICKED.value and not acting:
        return None
    return KIND_COLUMN.get(kind)


@dataclass(frozen=True, order=True)
class Place:
    variant: str
    part: str


Key = tuple[int, str, str, str]  # wave_id, variant, part, metric


def add_variant_counts(session: Session, counts: Counter[Key]) -> None:
    """Add to the running totals; keys sorted so concurrent writers never deadlock."""
    rows = [
        {"wave_id": w, "variant": v, "part": p, "metric": m, "count": counts[(w, v, p, m)]}
        for (w, v, p, m) in sorted(counts)
        if counts[(w, v, p, m)]
    ]
    if not rows:
        return
    statement = insert_for(session, VariantCount)
    statement = statement.on_conflict_do_update(
        index_elements=["wave_id", "variant", "part", "metric"],
        set_={"count": VariantCount.count + statement.excluded["count"]},
    )
    session.execute(statement, rows)


def tested_waves(session: Session, wave_ids: Collection[int]) -> set[int]:
    if not wave_ids:
        return set()
    found = select(SubjectTest.wave_id).where(SubjectTest.wave_id.in_(sorted(wave_ids)))
    return set(session.scalars(found))


def places(session: Session, wave_id: int, supporter_ids: Collection[int]) -> dict[int, Place]:
    """Each supporter's message of the wave: the variant and part it was sent in."""
    found: dict[int, Place] = {}
    ordered = sorted(supporter_ids)
    for start in range(0, len(ordered), _LOOKUP_CHUNK):
        rows = session.execute(
            select(Message.supporter_id, Batch.variant, part_of(SubjectTest.started_at))
            .join(Batch, Batch.id == Message.batch_id)
            .join(SubjectTest, SubjectTest.wave_id == Message.wave_id)
            .where(
                Message.wave_id == wave_id,
                Message.supporter_id.in_(ordered[start : start + _LOOKUP_CHUNK]),
            )
        ).all()
        found.update({supporter: Place(variant, part) for supporter, variant, part in rows})
    return found


def roll_up_signals(session: Session, claimed: Sequence[Any]) -> None:
    """Count the people behind actions just claimed by `roll_up_actions`, once per signal.

    `claimed` rows carry wave_id, supporter_id, kind and acting. Only waves with a
    subject test are counted; a supporter already counted for a signal adds nothing.
    """
    wanted: dict[int, set[tuple[int, str]]] = {}
    for row in claimed:
        column = column_for(row.kind, bool(row.acting))
        if row.wave_id and row.supporter_id and column:
            wanted.setdefault(row.wave_id, set()).add((row.supporter_id, column))
    counts: Counter[Key] = Counter()
    for wave_id in sorted(tested_waves(session, wanted.keys())):
        signals = wanted[wave_id]
        where = places(session, wave_id, {supporter for supporter, _ in signals})
        rows = [
            {
                "wave_id": wave_id,
                "supporter_id": supporter,
                "metric": column,
                "variant": where[supporter].variant,
                "part": where[supporter].part,
            }
            for supporter, column in sorted(signals)
            if supporter in where
        ]
        counts.update(_new_actors(session, rows))
    add_variant_counts(session, counts)


def _new_actors(session: Session, rows: list[dict[str, Any]]) -> Counter[Key]:
    if not rows:
        return Counter()
    statement = (
        insert_for(session, VariantActor)
        .on_conflict_do_nothing(index_elements=["wave_id", "supporter_id", "metric"])
        .returning(
            VariantActor.wave_id, VariantActor.variant, VariantActor.part, VariantActor.metric
        )
    )
    return Counter(tuple(row) for row in session.execute(statement, rows))


def unmask(session: Session, action: Action) -> None:
    """A counted person's click is now a machine's (its row already says so).

    The supporter leaves human clicks unless another counted acting click keeps
    them there, and is counted in machine clicks unless they were already.
    """
    wave_id, supporter_id = action.wave_id, action.supporter_id
    if not wave_id or not supporter_id or not tested_waves(session, {wave_id}):
        return
    counts: Counter[Key] = Counter()
    if not _still_clicked(session, action):
        gone = session.execute(
            delete(VariantActor)
            .where(
                VariantActor.wave_id == wave_id,
                VariantActor.supporter_id == supporter_id,
                VariantActor.metric == HUMAN_CLICKS,
            )
            .returning(VariantActor.variant, VariantActor.part)
        ).first()
        if gone is not None:
            counts[(wave_id, gone.variant, gone.part, HUMAN_CLICKS)] -= 1
    where = places(session, wave_id, {supporter_id}).get(supporter_id)
    if where is not None:
        row = {
            "wave_id": wave_id,
            "supporter_id": supporter_id,
            "metric": MACHINE_CLICKS,
            "variant": where.variant,
            "part": where.part,
        }
        counts.update(_new_actors(session, [row]))
    add_variant_counts(session, counts)


def _still_clicked(session: Session, action: Action) -> bool:
    other = session.scalar(
        select(Action.id)
        .where(
            Action.wave_id == action.wave_id,
            Action.supporter_id == action.supporter_id,
            Action.id != action.id,
            Action.kind == ActionKind.CLICKED.value,
            Action.acting.is_(True),
            Action.rolled_up_at.is_not(None),
        )
        .limit(1)
    )
    return other is not None


def mark_counted(engine: Engine, now: datetime) -> None:
    """The tick's roll-up left no action waiting: the people counts are as of `now`."""
    with session_scope(engine) as session:
        statement = insert_for(session, RollUpMark).values(name=MARK, at=now)
        session.execute(statement.on_conflict_do_update(index_elements=["name"], set_={"at": now}))


def counted_as_of(session: Session) -> datetime | None:
    return session.scalar(select(RollUpMark.at).where(RollUpMark.name == MARK))


def rolled_figures(session: Session, wave_id: int) -> dict[tuple[str, str], dict[str, int]]:
    """Per (variant, part): messages sent, from the wave's batch tallies, and people per
    signal, from the totals."""
    figures: dict[tuple[str, str], dict[str, int]] = {}
    share = part_of(SubjectTest.started_at).label("part")
    sends = session.execute(  # exact at once: the tallies move with the messages
        select(Batch.variant, share, func.sum(Batch.sent_count))
        .join(SubjectTest, SubjectTest.wave_id == Batch.wave_id)
        .where(Batch.wave_id == wave_id)
        .group_by(Batch.variant, share)
    ).all()
    for variant, where, count in sends:
        if count:  # as the plain count: a row only where something was sent
            figures.setdefault((variant, where), {})[SENDS] = int(count)
    people = session.execute(
        select(
            VariantCount.variant, VariantCount.part, VariantCount.metric, VariantCount.count
        ).where(VariantCount.wave_id == wave_id)
    ).all()
    for variant, part, metric, count in people:
        if count:
            figures.setdefault((variant, part), {})[metric] = int(count)
    return figures
