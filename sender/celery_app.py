"""Builds the Celery application from settings.

Without REDIS_URL the app runs tasks eagerly, in-process: the embedded
default where the CLI does all the work itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init

from sender.core.config import Settings, get_settings
from sender.core.runmode import refuse_unsafe_start
from sender.core.speedups import freeze_start_up_heap

# Task names, by which queued messages find their task: they must survive a
# deploy unchanged. Here, not in sender.tasks, so that what only sends tasks
# (the web app, the CLI) need not import the worker side.
TICK_TASK = "sender.tick"
SEND_BATCH_TASK = "sender.send_batch"
PROCESS_EVENTS_TASK = "sender.tasks.process_events"
PARSE_REPLY_TASK = "sender.tasks.parse_reply"
IMPORT_TASK = "sender.tasks.import_supporters"
PROOF_TASK = "sender.tasks.send_proofs"
REACH_TASK = "sender.tasks.count_reach"
TASK_NAMES = (
    TICK_TASK,
    SEND_BATCH_TASK,
    PROCESS_EVENTS_TASK,
    PARSE_REPLY_TASK,
    IMPORT_TASK,
    PROOF_TASK,
    REACH_TASK,
)

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


def celery_role(argv: Sequence[str]) -> str:
    """What `celery -A worker <role>` this process is, from its command line."""
    words = [w for i, w in enumerate(argv[1:]) if i == 0 or argv[i] not in ("-A", "--app")]
    for role in ("flower", "beat", "worker"):
        if role in words:
            return role
    return "celery"


def refuse_unsafe_celery_start(settings: Settings, argv: Sequence[str]) -> None:
    """Called by worker.py as it is imported, before Celery reads anything.

    worker.py is what `celery -A worker worker|beat|flower` loads, so one call
    covers workers, beat and Flower (which also needs FLOWER_BASIC_AUTH). At
    import, not in a start-up signal: Celery logs a signal handler's exception
    and carries on.
    """
    role = celery_role(argv)
    process = {"flower": "Flower", "beat": "Celery beat", "worker": "The Celery worker"}
    refuse_unsafe_start(settings, process.get(role, "Celery"), flower=role == "flower")


def _freeze_start_up_heap(**_signal: Any) -> None:
    freeze_start_up_heap()


# Full collections would otherwise walk the whole start-up heap again and again
# while batches are built (sender.core.speedups). Both signals: the main process
# freezes before it forks its pool, so children share the frozen pages, and
# each pool process freezes what it has built since it started.
worker_init.connect(_freeze_start_up_heap, weak=False, dispatch_uid="sender.freeze.worker")
worker_process_init.connect(_freeze_start_up_heap, weak=False, dispatch_uid="sender.freeze.process")
