"""Celery tasks: thin wrappers over plain functions, safe to run twice.

`send_batch` claims its batch with a conditional UPDATE, so a redelivered or
duplicated message finds the batch no longer QUEUED and does nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import lru_cache
from typing import Any

from celery import shared_task

from sender.audience.import_runs import run_import
from sender.campaign.waves import apply_account_notices
from sender.celery_app import (
    IMPORT_TASK,
    PARSE_REPLY_TASK,
    PROCESS_EVENTS_TASK,
    PROOF_TASK,
    REACH_TASK,
    SEND_BATCH_TASK,
    TICK_TASK,
)
from sender.core.clock import SystemClock
from sender.core.config import get_settings
from sender.core.db import get_engine
from sender.core.speedups import collector_paused
from sender.ops.logs import log_context
from sender.send.pipeline import Sender, result_dict, send_batch
from sender.send.proof_runs import run_proofs
from sender.send.reach_counts import count_reach
from sender.send.scheduler import tick
from sender.send.transport.select import transport_for
from sender.send.wiring import default_sender
from sender.staff.audit import Actor
from sender.staff.roles import Role
from sender.track.actions import has_pending_events, process_pending_events
from sender.track.inbound import parse_stored_reply


@lru_cache(maxsize=1)
def _sender() -> Sender:
    # One per worker process: keeps the renderer's variant cache and the pools.
    return default_sender(get_settings(), batch_scope=collector_paused)


class CeleryDispatcher:
    """Hands each released batch to whichever worker is free."""

    def dispatch(self, batch_ids: Sequence[int]) -> None:
        for batch_id in batch_ids:
            send_batch_task.delay(batch_id)


@shared_task(name=TICK_TASK, acks_late=True, ignore_result=True)  # type: ignore[untyped-decorator]
def tick_task() -> list[str]:
    settings = get_settings()
    engine = get_engine(settings.database_url)
    report = tick(engine, settings, SystemClock().now(), CeleryDispatcher())
    # The webhook enqueues processing after storing; if that message was lost (Redis
    # down at that moment, a purge), the stored events would wait for the next batch.
    if has_pending_events(engine):
        process_events.delay()
    return report.lines()


@shared_task(  # type: ignore[untyped-decorator]
    name=SEND_BATCH_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def send_batch_task(batch_id: int) -> dict[str, Any]:
    # Also covers what runs before send_batch (building the sender on first use).
    with log_context(batch_id=batch_id):
        return result_dict(send_batch(batch_id, _sender()))


@shared_task(name=PROCESS_EVENTS_TASK, acks_late=True, ignore_result=True)  # type: ignore[untyped-decorator]
def process_events(limit: int = 5000) -> dict[str, int]:
    """Turn stored webhook events into actions, suppressions and report counts."""
    settings = get_settings()
    engine = get_engine(settings.database_url)
    # An account stop (quota drop, suspension) pauses every wave in the same transaction.
    report = process_pending_events(engine, limit, settings, on_account=apply_account_notices)
    return {"events": report.events, "actions": report.actions, "suppressed": report.suppressed}


@shared_task(name=PARSE_REPLY_TASK, acks_late=True, ignore_result=True)  # type: ignore[untyped-decorator]
def parse_reply(reply_id: int) -> str:
    """Parse one inbound reply the webhook stored; a no-op once it is parsed."""
    settings = get_settings()
    engine = get_engine(settings.database_url)
    return parse_stored_reply(engine, settings, reply_id, SystemClock().now())


@shared_task(name=IMPORT_TASK, acks_late=True, ignore_result=True)  # type: ignore[untyped-decorator]
def import_supporters_task(run_id: int, actor_name: str, role: str, address: str) -> str:
    """A CSV uploaded in the workspace; a no-op once its run has started."""
    settings = get_settings()
    engine = get_engine(settings.database_url)
    actor = Actor(actor_name, Role(role), address)
    return run_import(engine, settings.upload_dir, run_id, actor).status.value


@shared_task(name=PROOF_TASK, acks_late=True, ignore_result=True)  # type: ignore[untyped-decorator]
def send_proofs_task(run_id: int, actor_name: str, role: str, address: str) -> str:
    """A proof of every variant asked for in the workspace; a no-op once its run has started."""
    settings = get_settings()
    engine = get_engine(settings.database_url)
    actor = Actor(actor_name, Role(role), address)
    return run_proofs(engine, settings, run_id, actor, transport_for(settings)).status.value


@shared_task(name=REACH_TASK, acks_late=True, ignore_result=True)  # type: ignore[untyped-decorator]
def count_reach_task(wave_id: int, attempt: int) -> str:
    """A launch confirmation's count; a no-op once that attempt is over or replaced."""
    settings = get_settings()
    engine = get_engine(settings.database_url)
    cap = timedelta(hours=settings.frequency_cap_hours)
    count = count_reach(engine, wave_id, attempt, cap)
    return count.state.value if count is not None else "gone"
