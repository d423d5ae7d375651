"""Builds the Celery application from settings.

Without REDIS_URL the app runs tasks eagerly, in-process: the embedded
default where the CLI does all the work itself.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init

from sender.core.config import Settings, get_settings
from sender.core.speedups import freeze_start_up_heap

# Task names, by which queued messages find their task: they must survive a
# deploy unchanged. Here, not in sender.tasks, so that what only sends tasks
# (the web app, the CLI) need not import the worker side.
TICK_TASK = "sender.tick"
SEND_BATCH_TASK = "sender.send_batch"
PROCESS_EVENTS_TASK = "sender.tasks.process_events"
PARSE_REPLY_TASK = "sender.tasks.parse_reply"
TASK_NAMES = (TICK_TASK, SEND_BATCH_TASK, PROCESS_EVENTS_TASK, PARSE_REPLY_TASK)

TICK_SECONDS = 30.0
# A message not acknowledged within this time is handed to another worker.
# A batch task takes at most a few minutes (inline retry waits are bounded),
# and the scheduler re-releases batches stuck QUEUED on its own, so this only
# has to be longer than the slowest honest task.
VISIBILITY_TIMEOUT_SECONDS = 1800


def create_celery(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    app = Celery("campaign", include=["sender.tasks"])
    if settings.redis_url:
        app.conf.update(
            broker_url=settings.redis_url,
            result_backend=settings.redis_url,
            broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_SECONDS},
            result_backend_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_SECONDS},
        )
    else:
        app.conf.update(
            task_always_eager=True,
            task_eager_propagates=True,
            broker_url="memory://",
            result_backend="cache+memory://",
        )
    app.conf.update(
        task_acks_late=True,  # a batch is only done when the provider accepted it
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        broker_connection_retry_on_startup=True,
        beat_schedule={
            "tick": {
                "task": TICK_TASK,
                "schedule": TICK_SECONDS,
                "options": {"expires": 25},
            },
        },
    )
    return app


def _freeze_start_up_heap(**_signal: Any) -> None:
    freeze_start_up_heap()


# Full collections would otherwise walk the whole start-up heap again and again
# while batches are built (sender.core.speedups). Both signals: the main process
# freezes before it forks its pool, so children share the frozen pages, and
# each pool process freezes what it has built since it started.
worker_init.connect(_freeze_start_up_heap, weak=False, dispatch_uid="sender.freeze.worker")
worker_process_init.connect(_freeze_start_up_heap, weak=False, dispatch_uid="sender.freeze.process")
