"""A worker's `Sender`, put together from settings: the SQL store on the configured
database, the configured transport and the shared rate limit."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from sender.core.clock import Clock, SystemClock
from sender.core.config import Settings
from sender.core.db import get_engine
from sender.send.batch_store import SqlSendStore
from sender.send.pipeline import Sender, SendPolicy
from sender.send.ratelimit import bucket_for
from sender.send.transport.select import transport_for


def default_sender(
    settings: Settings,
    clock: Clock | None = None,
    batch_scope: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> Sender:
    """`batch_scope` is the caller's to choose: workers and the in-process commands pass
    the collector pause of `sender.core.speedups`."""
    return Sender(
        store=SqlSendStore.from_settings(get_engine(settings.database_url), settings),
        settings=settings,
        transport=transport_for(settings),
        bucket=bucket_for(settings.redis_url),
        clock=clock or SystemClock(),
        policy=SendPolicy.from_settings(settings),
        batch_scope=batch_scope,
    )
