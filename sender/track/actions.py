"""Supporter actions: the one builder of Action rows, and stored provider events turned
into actions, suppressions and report counts.

Every action row, whatever made it (a provider event, a link, a reply), comes from
`new_action` and is keyed by `dedupe_key`: "<namespace>:<part>[:<part>...]". The
unique key makes a retried event, a second click or a re-parsed reply a no-op.

`process_pending_events` claims unprocessed events and handles them in the
same transaction as everything it derives, so a crash leaves them pending.
Each event acts only through the message sender.track.binding binds it to (or
on its address alone); refused ones are kept raw in rejected_events instead.
It is idempotent (one action per event, keyed by the provider's prefix and
event id, e.g. "sg:<sg_event_id>") and safe to run concurrently: PostgreSQL
workers claim with SKIP LOCKED; SQLite serialises writers, and the claiming
UPDATE re-checks `processed_at`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session, aliased

from sender.core.clock import Clock, SystemClock
from sender.core.config import Settings, get_settings
from sender.core.db import session_scope
from sender.core.dedupe import insert_once
from sender.core.models import Action, Case, Event
from sender.core.upsert import insert_for
from sender.core.vocabulary import ActionKind, EventType
from sender.ops import metrics
from sender.report import totals as reports
from sender.track import account, providers, suppressions
from sender.track.binding import Binding, bind, sent_messages
from sender.track.clicks import is_honeypot_url, is_scanner_agent
from sender.track.providers.base import NormalisedEvent, Provider
from sender.track.rejected_events import RejectedItem, rejected_item, store_rejected

_COUNTED_EVENTS: Mapping[EventType, str] = {
    EventType.DELIVERED: reports.Metric.DELIVERIES,
    EventType.BOUNCED: reports.Metric.BOUNCES,
    # Recorded, never acted on: SendGrid retries a deferral itself for up to 72 hours.
    EventType.DEFERRED: reports.Metric.DEFERRALS,
}


# Event ids go into IN lists: stay well below PostgreSQL's 65,535 parameters.
MAX_LIMIT = 20_000
# The sources of the actions no provider makes (provider events carry the provider's name).
LINK_SOURCE = "link"
REPLY_SOURCE = "inbound"


@dataclass(frozen=True)
class ProcessReport:
    events: int
    actions: int
    suppressed: int
    # Account stops and reactivations seen, already handed to the `on_account` hook.
    notices: tuple[account.AccountNotice, ...] = ()
    # Events refused because they do not match what we sent (sender.track.binding).
    refused: int = 0


@dataclass(frozen=True)
class Context:
    """Who and what an event is about, as far as the database confirms it."""

    supporter_id: int | None = None
    case_id: int | None = None
    wave_id: int | None = None
    language: str | None = None
    action_url: str | None = None


def process_pending_events(
    engine: Engine,
    limit: int = 5000,
    settings: Settings | None = None,
    clock: Clock | None = None,
    on_account: account.AccountHook | None = None,
) -> ProcessReport:
    """Handle up to `limit` unprocessed events; run again until it reports 0 events.

    `on_account` acts on account stops (the adapters pass the campaign's pause) in this
    transaction; without it they are only reported.
    """
    settings = settings or get_settings()
    limit = min(limit, MAX_LIMIT)
    now = (clock or SystemClock()).now()
    with session_scope(engine) as session:
        claimed = _claim(session, limit, now)
        if not claimed:
            return ProcessReport(0, 0, 0)
        sent, installation = sent_messages(session, claimed), settings.installation
        bindings = {id(e): bind(e, sent, installation) for e in claimed}
        refused = _refused(claimed, bindings)
        _keep_refused(session, refused, now)
        # Everything below sees only the events bound to what we sent, or about an
        # address alone: a refused event changes no supporter, message or report.
        events = [e for e in claimed if bindings[id(e)].refusal is None]
        contexts = _contexts(session, events, bindings)
        actions = [
            row
            for event in events
            if (row := action_for(event, contexts[id(event)], settings.public_base_url))
        ]
        created = _insert_actions(session, actions)
        reports.add_counts(session, _event_counts(events, contexts))
        suppressed = _apply_suppressions(session, events, contexts, now)
        suppressions.fail_messages(
            session, [f for event in events if (f := suppressions.failure_for(event))]
        )
        reports.roll_up_actions(session, now, limit=max(limit, reports.ROLL_UP_CHUNK))
        notices = account.notices_for((e, contexts[id(e)].wave_id) for e in events)
        if notices and on_account is not None:
            on_account(session, notices, now)
    metrics.count_rejected(item.kind.value for _, item in refused)  # after the commit
    return ProcessReport(len(claimed), created, suppressed, tuple(notices), len(refused))


def _refused(
    events: Sequence[NormalisedEvent], bindings: Mapping[int, Binding]
) -> list[tuple[str, RejectedItem]]:
    """(provider, kept item) for each refused event, its reason naming the event."""
    found = []
    for event in events:
        refusal = bindings[id(event)].refusal
        if refusal is not None:
            named = refusal._replace(reason=f"{event.provider_event_id}: {refusal.reason}")
            found.append((event.provider, rejected_item(dict(event.raw), 0, named)))
    return found


def _keep_refused(
    session: Session, refused: Sequence[tuple[str, RejectedItem]], now: datetime
) -> None:
    """Refused events are kept raw beside those that could not be stored, for ops."""
    by_provider: dict[str, list[RejectedItem]] = {}
    for provider, item in refused:
        by_provider.setdefault(provider, []).append(item)
    for provider, items in by_provider.items():
        store_rejected(session.connection(), provider, items, now)


def has_pending_events(engine: Engine) -> bool:
    """Whether stored events wait to be processed: the tick's sweep for a lost task."""
    with engine.connect() as connection:
        found = connection.scalar(select(Event.id).where(Event.processed_at.is_(None)).limit(1))
    return found is not None


@dataclass(frozen=True)
class PendingEvents:
    """Stored events not processed yet, for `campaign status`: a lasting backlog means
    no worker is processing (or Redis was down when they arrived)."""

    count: int = 0
    oldest_received_at: datetime | None = None


def pending_events(engine: Engine) -> PendingEvents:
    waiting = Event.processed_at.is_(None)
    with engine.connect() as connection:
        row = connection.execute(
            select(func.count(), func.min(Event.received_at)).where(waiting)
        ).one()
    return PendingEvents(int(row[0] or 0), row[1])


def _claim(session: Session, limit: int, now: datetime) -> list[NormalisedEvent]:
    # An alias: the same table in the subquery would be correlated with the UPDATE.
    queued = aliased(Event)
    pending = select(queued.id).where(queued.processed_at.is_(None)).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        pending = pending.with_for_update(skip_locked=True)
    # A CTE is evaluated once; an IN (subquery ... LIMIT) may be re-run per row and
    # claim far more than `limit` rows.
    picked = pending.cte("picked")
    rows = list(
        session.execute(
            update(Event)
            .where(Event.id == picked.c.id, Event.processed_at.is_(None))
            .values(processed_at=now)
            .returning(Event.id, Event.provider, Event.occurred_at, Event.raw)
            .execution_options(synchronize_session=False)
        )
    )
    # Time order matters for bounce streaks; ties keep arrival order.
    rows.sort(key=lambda row: (row.occurred_at, row.id))
    return [providers.get(row.provider).translate(row.raw) for row in rows]


def _contexts(
    session: Session, events: Sequence[NormalisedEvent], bindings: Mapping[int, Binding]
) -> dict[int, Context]:
    """Who each event is about: its bound message's supporter, case and wave, or nobody.

    Only the binding counts (sender.track.binding): the ids an event claims in its
    custom args are never used on their own.
    """
    case_ids = {m.case_id for e in events if (m := bindings[id(e)].message) is not None}
    cases = _by_id(session, select(Case.id, Case.action_url), Case.id, case_ids)
    contexts = {}
    for event in events:
        message = bindings[id(event)].message
        if message is None:
            contexts[id(event)] = Context()
            continue
        case = cases.get(message.case_id)
        contexts[id(event)] = Context(
            message.supporter_id,
            message.case_id,
            message.wave_id,
            message.language,
            case.action_url if case is not None else None,
        )
    return contexts


def _by_id(session: Session, query: Any, key: Any, ids: Iterable[int | None]) -> dict[int, Any]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {row.id: row for row in session.execute(query.where(key.in_(wanted)))}


def is_action_link(url: str | None, action_url: str | None, public_base_url: str) -> bool:
    """A click that counts as acting: our /a/ redirect link or the case's own action page."""
    if not url:
        return False
    if url.startswith(public_base_url.rstrip("/") + "/a/"):
        return True
    return bool(action_url) and url.rstrip("/") == (action_url or "").rstrip("/")


def action_for(
    event: NormalisedEvent, context: Context, public_base_url: str
) -> dict[str, Any] | None:
    """The Action row an event produces, or None (deliveries, bounces... are not actions)."""
    if event.event_type is EventType.OPENED:
        kind = ActionKind.OPENED_MACHINE if event.machine_open else ActionKind.OPENED
    elif event.event_type is EventType.CLICKED:
        # The agent and honeypot rules apply: a provider's click carries no sibling
        # fetches, and its delivery time may arrive in a later batch.
        machine = (event.user_agent is not None and is_scanner_agent(event.user_agent)) or (
            is_honeypot_url(event.url, public_base_url)
        )
        kind = ActionKind.CLICKED_MACHINE if machine else ActionKind.CLICKED
    else:
        return None
    acting = kind is ActionKind.CLICKED and is_action_link(
        event.url, context.action_url, public_base_url
    )
    provider = providers.get(event.provider)
    return new_action(
        kind,
        source=provider.name,
        key=event_key(provider, event.provider_event_id),
        occurred_at=event.occurred_at,
        supporter_id=context.supporter_id,
        case_id=context.case_id,
        wave_id=context.wave_id,
        message_id=event.message_id,
        url=event.url if event.event_type is EventType.CLICKED else None,
        acting=acting,
    )


def dedupe_key(namespace: str, *parts: object) -> str:
    """The one key format: "<namespace>:<part>[:<part>...]".

    The unique column dedupes only if a key, once stored, is built the same way
    again: the three callers below produce exactly the keys stored before.
    """
    return ":".join((namespace, *map(str, parts)))


def event_key(provider: Provider, provider_event_id: str | None) -> str:
    """One action per provider event: "sg:<sg_event_id>" for SendGrid."""
    return dedupe_key(provider.action_key_prefix, provider_event_id)


def link_key(link: str, kind: ActionKind) -> str:
    """One action per message (or token) and kind: "link:<link key>:<kind>"."""
    return dedupe_key(LINK_SOURCE, link, kind.value)


def reply_key(reply_id: int) -> str:
    """One action per stored reply: "reply:<reply id>"."""
    return dedupe_key("reply", reply_id)


def new_action(
    kind: ActionKind,
    *,
    source: str,
    key: str,
    occurred_at: datetime | None,
    supporter_id: int | None,
    case_id: int | None,
    wave_id: int | None,
    message_id: int | None,
    url: str | None = None,
    acting: bool = False,
) -> dict[str, Any]:
    """The values of one Action row: the only place such a row is built."""
    return {
        "supporter_id": supporter_id,
        "case_id": case_id,
        "wave_id": wave_id,
        "message_id": message_id,
        "kind": kind.value,
        "url": url,
        "source": source,
        "dedupe_key": key,
        "occurred_at": occurred_at,
        "acting": acting,
    }


def record_action(session: Session, action: Mapping[str, Any]) -> bool:
    """Store one action from `new_action` unless its key is stored; True when new."""
    return insert_once(session, Action, "dedupe_key", dict(action))


def _insert_actions(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    if not rows:
        return 0
    statement = (
        insert_for(session, Action)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(Action.id)
    )
    return len(session.execute(statement, list(rows)).all())


def _event_counts(
    events: Sequence[NormalisedEvent], contexts: Mapping[int, Context]
) -> Counter[reports.CountKey]:
    counts: Counter[reports.CountKey] = Counter()
    for event in events:
        metric = _COUNTED_EVENTS.get(event.event_type)
        if metric is None or event.occurred_at is None:
            continue
        context = contexts[id(event)]
        key = reports.CountKey(
            context.case_id or 0,
            context.wave_id or 0,
            context.language or "",
            event.occurred_at.date(),
            metric,
        )
        counts[key] += 1
        if event.bounce_class is not None:
            counts[replace(key, metric=reports.bounce_metric(event.bounce_class))] += 1
    return counts


def _apply_suppressions(
    session: Session,
    events: Sequence[NormalisedEvent],
    contexts: Mapping[int, Context],
    now: datetime,
) -> int:
    added = 0
    for provider, group in _by_provider(events).items():
        found = [
            suppressions.Suppressed(event.email_hash, reason, contexts[id(event)].supporter_id)
            for event in group
            if event.email_hash and (reason := suppressions.reason_for(event))
        ]
        found += suppressions.track_soft_bounces(session, group, now)
        added += sum(suppressions.add(session, item, provider, now) for item in found)
    return added


def _by_provider(events: Sequence[NormalisedEvent]) -> dict[str, list[NormalisedEvent]]:
    # Suppressions record the provider that reported them; time order is kept per provider.
    groups: dict[str, list[NormalisedEvent]] = {}
    for event in events:
        groups.setdefault(event.provider, []).append(event)
    return groups
