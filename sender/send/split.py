"""How the planner splits a subject-test wave: the test share first, the remainder later.

The planner (sender.send.planner) asks for a `PlanScope` and applies it to its
ranked rows (one row per eligible supporter and case, `pick == 1` being the
case the wave is about). Both scopes stay set-based: the draw is a window
function, the remainder an anti-join, so no supporter passes through Python.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import ColumnElement, String, Subquery, case, cast, exists, func, literal, select
from sqlalchemy.orm import Session

from sender.core.models import Message, SubjectTest, Wave
from sender.core.subject_test import SubjectTestSpec
from sender.core.vocabulary import SubjectState

# The share is applied in integer arithmetic (basis points), which both databases
# compute alike; SQLite has no portable CEIL.
_BASIS = 10_000


class PlanScope(Protocol):
    @property
    def first_seq(self) -> int:
        """The first batch number: a later planning must not reuse the test's numbers."""
        ...

    def narrow(self, ranked: Subquery, wave_id: int) -> Subquery:
        """The ranked rows this planning covers, with the `variant` each gets."""
        ...


# Claims a later planning of a running wave (one caller wins) and says what it covers.
FollowUp = Callable[[Session], PlanScope | None]


@dataclass(frozen=True)
class TestShare:
    """A seeded draw, stratified by case and language, split evenly between the variants.

    Within each (case, language) stratum the supporters are ordered by
    md5(seed:supporter id), the first `share` of them are taken, and the
    variants are dealt in turn along that order: every variant gets the same
    mix of cases and languages (to one supporter per stratum). Each stratum starts
    the deal at its own variant, so the odd supporters left over do not all go to
    the first one.
    """

    variants: tuple[str, ...]
    share: float
    seed: int
    first_seq: int = 0

    def narrow(self, ranked: Subquery, wave_id: int) -> Subquery:
        stratum = (ranked.c.case_id, ranked.c.language)
        shuffled = func.md5(literal(f"{self.seed}:") + cast(ranked.c.supporter_id, String))
        drawn = (
            select(
                ranked.c.supporter_id,
                ranked.c.case_id,
                ranked.c.language,
                ranked.c.slot_at,
                ranked.c.timezone,
                (func.row_number().over(partition_by=stratum, order_by=shuffled) - 1).label("draw"),
                func.count().over(partition_by=stratum).label("stratum_size"),
                func.dense_rank().over(order_by=stratum).label("stratum"),
            )
            .where(ranked.c.pick == 1)
            .subquery("drawn")
        )
        return (
            select(
                drawn.c.supporter_id,
                drawn.c.case_id,
                drawn.c.language,
                drawn.c.slot_at,
                drawn.c.timezone,
                _dealt(drawn.c.draw + drawn.c.stratum, self.variants).label("variant"),
            )
            .where(drawn.c.draw * _BASIS < drawn.c.stratum_size * round(self.share * _BASIS))
            .subquery("test_share")
        )


@dataclass(frozen=True)
class Remainder:
    """Everyone eligible without a message in the wave (so nobody from the test share), with the
    winner."""

    winner: str
    first_seq: int

    def narrow(self, ranked: Subquery, wave_id: int) -> Subquery:
        tested = exists().where(
            Message.wave_id == wave_id, Message.supporter_id == ranked.c.supporter_id
        )
        return (
            select(
                ranked.c.supporter_id,
                ranked.c.case_id,
                ranked.c.language,
                ranked.c.slot_at,
                ranked.c.timezone,
                literal(self.winner, String(8)).label("variant"),
            )
            .where(ranked.c.pick == 1, ~tested)
            .subquery("remainder")
        )


def share_counts(strata: Sequence[int], variants: tuple[str, ...], share: float) -> dict[str, int]:
    """How many of each stratum's supporters `TestShare` takes for each variant, in Python:
    the same integer arithmetic and the same deal, for strata given in the planner's order
    (case, then language). The launch page's split is counted with it."""
    basis = round(share * _BASIS)
    dealt = dict.fromkeys(variants, 0)
    for rank, size in enumerate(strata, start=1):
        taken = (size * basis + _BASIS - 1) // _BASIS
        for draw in range(min(taken, len(variants))):
            # Each turn of the deal gives one supporter to every variant; the first
            # `taken % k` variants from this stratum's starting turn get one more.
            name = variants[(draw + rank) % len(variants)]
            dealt[name] += taken // len(variants) + (draw < taken % len(variants))
    return dealt


def _dealt(draw: ColumnElement[int], variants: tuple[str, ...]) -> ColumnElement[str]:
    turn = draw % len(variants)
    *rest, last = variants
    return case(*((turn == i, literal(name)) for i, name in enumerate(rest)), else_=literal(last))


def test_share(session: Session, wave_id: int, now: datetime) -> TestShare | None:
    """The scope of a wave's first planning: its test share, or None for a wave without a test.

    Called inside the planning transaction right after the wave is claimed, so the
    test's state row commits with the share's messages or not at all.
    """
    wave = session.get_one(Wave, wave_id)
    declared = SubjectTestSpec.from_json(wave.subject_test)
    if declared is None:
        return None
    session.add(SubjectTest(wave_id=wave_id, state=SubjectState.TESTING, started_at=now))
    return TestShare(declared.names, declared.share, declared.seed)


def awaiting_remainder() -> ColumnElement[bool]:
    """SQL: the wave (`Wave.id`) runs a test whose remainder is not planned yet, so it
    is not done even with every batch sent."""
    return exists().where(
        SubjectTest.wave_id == Wave.id, SubjectTest.state != SubjectState.FINISHED
    )
