"""Builders for the subject-test tests: a two-language audience, a test wave, people's signals."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sending_fixtures import CASE_TEXT, DEC1, add_case, add_supporters, add_wave
from sqlalchemy import Engine, select

from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.models import Batch, Message, Supporter
from sender.core.subject_test import SubjectTestSpec, SubjectVariant
from sender.core.vocabulary import ActionKind, SubjectMetric
from sender.track.actions import new_action, record_action

BILINGUAL = {
    **CASE_TEXT,
    "es": {**CASE_TEXT["en"], "title": "Liberad a Nassima"},
}
SUBJECTS = {"en": "Stand with Nassima", "es": "Con Nassima"}


def declared_test(
    *,
    share: float = 0.2,
    seed: int = 7,
    metric: SubjectMetric = SubjectMetric.HUMAN_CLICKS,
    wait_hours: int = 4,
    min_sends: int = 10,
    names: Iterable[str] = ("A", "B"),
) -> SubjectTestSpec:
    variants = tuple(
        SubjectVariant(
            name,
            {"en": f"{name}: Nassima needs you", "es": f"{name}: Nassima te necesita"},
            {},
        )
        for name in names
    )
    return SubjectTestSpec(
        variants=variants,
        default=variants[0].name,
        share=share,
        seed=seed,
        metric=metric,
        wait=timedelta(hours=wait_hours),
        confidence=0.95,
        min_sends=min_sends,
    )


def audience(engine: Engine, settings: Settings, per_stratum: int = 100) -> list[int]:
    """Two cases × two languages, `per_stratum` supporters each; returns the case ids."""
    cases = [add_case(engine, settings, slug, content=BILINGUAL) for slug in ("nassima", "germain")]
    for case in cases:
        for language in ("en", "es"):
            emails = [f"{language}{i}-{case}@example.org" for i in range(per_stratum)]
            add_supporters(engine, [case], emails, language=language)
    return cases


def add_test_wave(engine: Engine, settings: Settings, test: SubjectTestSpec, **extra: Any) -> int:
    values: dict[str, Any] = {"days": 3, "subjects": dict(SUBJECTS), **extra}
    return add_wave(engine, settings, subject_test=test.to_json(), **values)


def recipients(engine: Engine, wave_id: int) -> dict[int, tuple[str, str, int, str]]:
    """supporter id -> (variant, language, case id, message status) for the wave."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(
                Message.supporter_id,
                Batch.variant,
                Message.language,
                Message.case_id,
                Message.status,
            )
            .join(Batch, Batch.id == Message.batch_id)
            .where(Message.wave_id == wave_id)
        ).all()
    return {s: (v, lang, c, status) for s, v, lang, c, status in rows}


def signal(
    engine: Engine,
    wave_id: int,
    supporter_ids: Iterable[int],
    kind: ActionKind,
    at: datetime = DEC1 + timedelta(hours=10),
) -> int:
    """Record `kind` for each supporter's message of the wave, as the tracking code would."""
    count = 0
    with session_scope(engine) as session:
        for supporter_id in supporter_ids:
            message = session.scalars(
                select(Message).where(
                    Message.wave_id == wave_id, Message.supporter_id == supporter_id
                )
            ).one()
            record_action(
                session,
                new_action(
                    kind,
                    source="test",
                    key=f"test:{kind.value}:{message.id}",
                    occurred_at=at,
                    supporter_id=supporter_id,
                    case_id=message.case_id,
                    wave_id=wave_id,
                    message_id=message.id,
                    url="https://act.example.org/a/x" if kind is ActionKind.CLICKED else None,
                    acting=kind is ActionKind.CLICKED,
                ),
            )
            count += 1
    return count


def emails_of(engine: Engine, supporter_ids: Iterable[int]) -> set[str]:
    with session_scope(engine) as session:
        return set(
            session.scalars(select(Supporter.email).where(Supporter.id.in_(list(supporter_ids))))
        )
