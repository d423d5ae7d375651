"""Campaign results per case, wave, language or day, from running totals.

Counting millions of events at report time is too slow, so totals are kept in
`report_counts` (case, wave, language, day, metric): delivery and bounce
counts are added by sender.track.actions as events are processed, and every Action
(whatever its source: SendGrid, action links, inbound replies) is added once
by `roll_up_actions` (it marks `actions.rolled_up_at`), run by each batch of
webhook events and by the scheduler tick (`catch_up`): a report only reads, so
an action with no event behind it is counted within a tick. A supporter who acts
is counted once per case (`case_actors`), on the wave, language and day of
their first act, so the per-wave figures add up to the per-case ones.
Sends are added by `count_sends`, called by sender.send.store in the same
transaction that marks messages SENT, so the report never scans `messages`.
A subject test's figures per variant are kept beside these, by the same
roll-up (sender.report.variant_counts).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from sender.core.db import session_scope
from sender.core.errors import NotFound
from sender.core.models import Action, Campaign, Case, CaseActor, Message, ReportCount, Wave
from sender.core.upsert import insert_for
from sender.core.vocabulary import ActionKind, BounceClass
from sender.report import variant_counts


class Metric(StrEnum):
    SENDS = "sends"
    DELIVERIES = "deliveries"
    BOUNCES = "bounces"
    DEFERRALS = "deferrals"  # the provider retries these itself: counted, never acted on
    HUMAN_OPENS = "human_opens"
    MACHINE_OPENS = "machine_opens"
    CLICKS = "clicks"
    MACHINE_CLICKS = "machine_clicks"  # scanners and gateways: never acting (docs/TRACKING.md)
    LETTERS = "letters"
    REPLIES = "replies"
    ACTED = "acted"


class Dimension(StrEnum):
    CASE = "case"
    WAVE = "wave"
    LANGUAGE = "language"
    DAY = "day"


_KIND_METRIC: Mapping[str, Metric] = {
    ActionKind.OPENED: Metric.HUMAN_OPENS,
    ActionKind.OPENED_MACHINE: Metric.MACHINE_OPENS,
    ActionKind.CLICKED: Metric.CLICKS,
    ActionKind.CLICKED_MACHINE: Metric.MACHINE_CLICKS,
    ActionKind.LETTER_SENT: Metric.LETTERS,
    ActionKind.REPLIED: Metric.REPLIES,
}


def metric_of(kind: str) -> str:
    """The running total an action of this kind adds to (an unknown kind: its own name)."""
    return _KIND_METRIC.get(kind, kind)[:32]


# Bounces per class are counted under "bounced:<class>" beside the plain bounce count.
_BOUNCE_PREFIX = "bounced:"
_ALWAYS_ACTING = {ActionKind.LETTER_SENT.value, ActionKind.REPLIED.value}
UNKNOWN_LABEL = "(unknown)"


@dataclass(frozen=True, order=True)
class CountKey:
    case_id: int
    wave_id: int
    language: str
    day: date
    metric: str


def bounce_metric(bounce_class: BounceClass) -> str:
    """The running total a bounce of this class adds to (next to Metric.BOUNCES)."""
    return f"{_BOUNCE_PREFIX}{bounce_class.value}"


def add_counts(session: Session, counts: Counter[CountKey]) -> None:
    """Add to the running totals; keys sorted so concurrent writers never deadlock."""
    if not counts:
        return
    rows = [{**key.__dict__, "count": counts[key]} for key in sorted(counts)]
    statement = insert_for(session, ReportCount)
    statement = statement.on_conflict_do_update(
        index_elements=["case_id", "wave_id", "language", "day", "metric"],
        set_={"count": ReportCount.count + statement.excluded["count"]},
    )
    session.execute(statement, rows)


def count_sends(
    session: Session, sent: Mapping[tuple[int, int, str], int], sent_at: datetime
) -> None:
    """Add messages just marked SENT, counted per (case_id, wave_id, language), to the totals.

    Called in the transaction that marks them, so a rollback takes the counts too.
    """
    day = sent_at.astimezone(UTC).date() if sent_at.tzinfo else sent_at.date()
    counts: Counter[CountKey] = Counter(
        {
            CountKey(case_id, wave_id, language, day, Metric.SENDS): count
            for (case_id, wave_id, language), count in sent.items()
            if count
        }
    )
    add_counts(session, counts)


# Bounded so the IN lists stay far below PostgreSQL's 65,535 parameters.
ROLL_UP_CHUNK = 10_000


def roll_up_actions(session: Session, now: datetime, limit: int = ROLL_UP_CHUNK) -> int:
    """Add up to `limit` actions not yet counted to the totals; returns how many."""
    unrolled = aliased(Action)  # not correlated with the UPDATE below
    pending = select(unrolled.id).where(unrolled.rolled_up_at.is_(None)).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        pending = pending.with_for_update(skip_locked=True)
    picked = pending.cte("picked")  # evaluated once, unlike IN (subquery)
    claimed = session.execute(
        update(Action)
        .where(Action.id == picked.c.id, Action.rolled_up_at.is_(None))
        .values(rolled_up_at=now)
        .returning(
            Action.supporter_id,
            Action.case_id,
            Action.wave_id,
            Action.message_id,
            Action.kind,
            Action.acting,
            Action.source,
            Action.occurred_at,
        )
        .execution_options(synchronize_session=False)
    ).all()
    if not claimed:
        return 0
    languages = _languages(session, {row.message_id for row in claimed if row.message_id})
    counts: Counter[CountKey] = Counter()
    firsts: dict[tuple[int, int], CountKey] = {}
    for row in sorted(claimed, key=lambda r: r.occurred_at):
        key = CountKey(
            row.case_id or 0,
            row.wave_id or 0,
            languages.get(row.message_id or 0, ""),
            row.occurred_at.date(),
            metric_of(row.kind),
        )
        counts[key] += 1
        # A click through our own /a/ link page is acting by construction.
        acting = row.acting or row.kind in _ALWAYS_ACTING or _link_click(row.kind, row.source)
        if acting and row.case_id and row.supporter_id:
            firsts.setdefault(
                (row.case_id, row.supporter_id),
                CountKey(key.case_id, key.wave_id, key.language, key.day, Metric.ACTED),
            )
    for pair in _new_actors(session, firsts, now):
        counts[firsts[pair]] += 1
    add_counts(session, counts)
    variant_counts.roll_up_signals(session, claimed)  # a subject test's people per variant
    return len(claimed)


def _link_click(kind: str, source: str) -> bool:
    return kind == ActionKind.CLICKED.value and source == "link"


def counts_as_acting() -> ColumnElement[bool]:
    """`roll_up_actions`' test of acting, in SQL: the one definition of "acted".

    The `acted` and `not_acted` audiences (sender.send.eligibility) use it too, so a
    thank-you reaches exactly the supporters the report counts as actors.
    """
    return or_(
        Action.acting.is_(True),
        Action.kind.in_(_ALWAYS_ACTING),
        and_(Action.kind == ActionKind.CLICKED.value, Action.source == "link"),
    )


def unmask_click(session: Session, action: Action) -> None:
    """Correct the totals for a counted click now known to be a machine's.

    Called in the transaction that re-classifies it, after its row says
    `clicked_machine`: the click moves from `clicks` to `machine_clicks`, and
    when nothing else counted so far makes its supporter an actor on the case,
    the actor row goes and `acted` drops by one (a later act counts afresh).
    """
    if action.rolled_up_at is None:
        return  # not counted yet: the roll-up will count it as what it is now
    languages = _languages(session, {action.message_id} if action.message_id else set())
    key = CountKey(
        action.case_id or 0,
        action.wave_id or 0,
        languages.get(action.message_id or 0, ""),
        action.occurred_at.date(),
        Metric.CLICKS,
    )
    counts: Counter[CountKey] = Counter({key: -1})
    counts[CountKey(*_head(key), Metric.MACHINE_CLICKS)] += 1
    if action.case_id and action.supporter_id and not _still_acted(session, action):
        gone = session.execute(
            delete(CaseActor)
            .where(
                CaseActor.case_id == action.case_id,
                CaseActor.supporter_id == action.supporter_id,
            )
            .returning(CaseActor.case_id)
        ).first()
        if gone is not None:
            counts[CountKey(*_head(key), Metric.ACTED)] -= 1
    add_counts(session, counts)
    variant_counts.unmask(session, action)


def _head(key: CountKey) -> tuple[int, int, str, date]:
    return key.case_id, key.wave_id, key.language, key.day


def _still_acted(session: Session, action: Action) -> bool:
    other = session.scalar(
        select(Action.id)
        .where(
            Action.case_id == action.case_id,
            Action.supporter_id == action.supporter_id,
            Action.id != action.id,
            Action.rolled_up_at.is_not(None),
            counts_as_acting(),
        )
        .limit(1)
    )
    return other is not None


def _languages(session: Session, message_ids: set[int]) -> dict[int, str]:
    if not message_ids:
        return {}
    rows = session.execute(select(Message.id, Message.language).where(Message.id.in_(message_ids)))
    return {row.id: row.language for row in rows}


def _new_actors(
    session: Session, firsts: Mapping[tuple[int, int], CountKey], now: datetime
) -> list[tuple[int, int]]:
    if not firsts:
        return []
    statement = (
        insert_for(session, CaseActor)
        .on_conflict_do_nothing(index_elements=["case_id", "supporter_id"])
        .returning(CaseActor.case_id, CaseActor.supporter_id)
    )
    rows = [
        {"case_id": case_id, "supporter_id": supporter_id, "first_acted_at": now}
        for case_id, supporter_id in sorted(firsts)
    ]
    return [(row.case_id, row.supporter_id) for row in session.execute(statement, rows)]


def catch_up(
    engine: Engine, now: datetime, max_chunks: int | None = None, chunk: int = ROLL_UP_CHUNK
) -> int:
    """Roll up actions not counted yet, chunk by chunk; returns how many.

    The scheduler tick calls this, so actions recorded without a webhook event
    (replies, clicks on our own action links) reach the totals within a tick;
    reading a report never writes. The tick passes `max_chunks` so that a
    backlog (after a bulk load) is worked off over several ticks instead of
    holding up one tick's planning and releases; None rolls up everything.
    """
    total, chunks = 0, 0
    while max_chunks is None or chunks < max_chunks:
        with session_scope(engine) as session:
            done = roll_up_actions(session, now, limit=chunk)
        total, chunks = total + done, chunks + 1
        if done < chunk:
            break
    return total


def build_report(
    engine: Engine,
    by: Dimension = Dimension.CASE,
    campaign: str | None = None,
    figures: Collection[str] | None = None,
) -> dict[str, Any]:
    """The report as plain JSON-ready data; the CLI and the web API both print this.

    `campaign` (a slug) keeps to that campaign's cases and waves; None reports
    on the whole database. It reads the totals as the last scheduler tick
    (`catch_up`) or event batch left them: nothing is written here.
    `figures` (metric names) reads only those totals, the others stay 0: a
    comparison shows six of them, and reading fewer rows is what it costs.
    """
    with session_scope(engine) as session:
        scope = _scope(session, campaign)
        table: dict[str, Counter[str]] = {}
        for key, metric, count in _rolled_totals(session, by, scope, figures):
            table.setdefault(_key_text(key), Counter())[metric] += int(count)
        labels = _labels(session, by, table)
        actors = select(func.count(func.distinct(CaseActor.supporter_id)))
        if scope is not None:
            actors = actors.where(CaseActor.case_id.in_(scope.case_ids))
        unique_actors = session.scalar(actors)
        unattributed = _unattributed(session) if scope is not None else Counter()
    rows = [_row(key, labels.get(key, key), counts) for key, counts in sorted(table.items())]
    totals: Counter[str] = Counter()
    for counts in table.values():
        totals.update(counts)
    totals[Metric.ACTED] = int(unique_actors or 0)
    return {
        "campaign": campaign,
        "by": by.value,
        "generated_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "metrics": [m.value for m in Metric] + ["action_rate"],
        "rows": rows,
        "totals": _row("all", "all", totals)["counts"],
        # Bounces per class (SendGrid's bounce_classification), per row and in all.
        "bounce_classes": [c.value for c in BounceClass],
        "bounce_totals": _bounce_counts(totals),
        # A campaign's report leaves out what belongs to no campaign, such as an
        # asynchronous bounce without our custom args; it is shown, not added.
        "unattributed": _row(UNKNOWN_LABEL, UNKNOWN_LABEL, unattributed) if unattributed else None,
    }


def _unattributed(session: Session) -> Counter[str]:
    query = (
        select(ReportCount.metric, func.sum(ReportCount.count))
        .where(ReportCount.wave_id == 0, ReportCount.case_id == 0)
        .group_by(ReportCount.metric)
    )
    return Counter({metric: int(count) for metric, count in session.execute(query)})


@dataclass(frozen=True)
class _Scope:
    """One campaign's cases and waves: the running totals that are its own.

    Ids, not subqueries: a campaign has a few of each, and a literal list lets
    PostgreSQL read the totals through their primary key.
    """

    case_ids: tuple[int, ...]
    wave_ids: tuple[int, ...]


def _scope(session: Session, slug: str | None) -> _Scope | None:
    if slug is None:
        return None
    campaign_id = session.scalar(select(Campaign.id).where(Campaign.slug == slug))
    if campaign_id is None:
        raise NotFound(f"no campaign {slug!r}")
    return _Scope(
        tuple(session.scalars(select(Case.id).where(Case.campaign_id == campaign_id))),
        tuple(session.scalars(select(Wave.id).where(Wave.campaign_id == campaign_id))),
    )


def _bounce_counts(counts: Mapping[str, int]) -> dict[str, int]:
    return {c.value: int(counts.get(bounce_metric(c), 0)) for c in BounceClass}


def _row(key: str, label: str, counts: Mapping[str, int]) -> dict[str, Any]:
    values: dict[str, Any] = {m.value: int(counts.get(m, 0)) for m in Metric}
    sends = values[Metric.SENDS]
    values["action_rate"] = round(values[Metric.ACTED] / sends, 4) if sends else None
    return {"key": key, "label": label, "counts": values, "bounces": _bounce_counts(counts)}


# The report_counts column a report by each dimension groups on.
DIMENSION_COLUMNS: Mapping[Dimension, Any] = {
    Dimension.CASE: ReportCount.case_id,
    Dimension.WAVE: ReportCount.wave_id,
    Dimension.LANGUAGE: ReportCount.language,
    Dimension.DAY: ReportCount.day,
}


def _rolled_totals(
    session: Session, by: Dimension, scope: _Scope | None, figures: Collection[str] | None = None
) -> list[Any]:
    column = DIMENSION_COLUMNS[by]
    query = select(column, ReportCount.metric, func.sum(ReportCount.count)).group_by(
        column, ReportCount.metric
    )
    if figures is not None:
        query = query.where(ReportCount.metric.in_(sorted(figures)))
    if scope is not None:
        # A count belongs to the campaign of its wave, or of its case when the
        # wave is not known (an action on the built-in page after the wave went).
        # The case_id test, implied by the rest, is what lets PostgreSQL read only
        # these rows through the primary key (case_id first) rather than the table:
        # a count of one of its waves is on one of its cases, or on none (0).
        query = query.where(
            ReportCount.case_id.in_((*scope.case_ids, 0)),
            or_(
                ReportCount.wave_id.in_(scope.wave_ids),
                and_(ReportCount.wave_id == 0, ReportCount.case_id.in_(scope.case_ids)),
            ),
        )
    return list(session.execute(query).all())


def _key_text(key: object) -> str:
    if key in (None, 0, ""):
        return UNKNOWN_LABEL
    return key.isoformat() if isinstance(key, date) else str(key)


def _labels(session: Session, by: Dimension, table: Mapping[str, Any]) -> dict[str, str]:
    ids = [int(key) for key in table if key.isdigit()]
    if by is Dimension.CASE and ids:
        rows = session.execute(select(Case.id, Case.slug, Case.person).where(Case.id.in_(ids)))
        return {str(row.id): f"{row.slug} ({row.person})" for row in rows}
    if by is Dimension.WAVE and ids:
        rows = session.execute(select(Wave.id, Wave.name).where(Wave.id.in_(ids)))
        return {str(row.id): row.name for row in rows}
    return {}
