"""Work a staff page starts and cannot wait for: a Celery task, or a thread without Redis.

The CSV import and the proof send both go through `run_in_background`: with
Redis configured the named task runs in a worker; without it (a laptop, the
tests) a daemon thread of this process runs the same plain function.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from sender.staff.audit import Actor
from sender.web import context


def actor_args(actor: Actor) -> list[str]:
    """The actor as plain task arguments: the task rebuilds Actor(name, Role(role), address)."""
    return [actor.name, actor.role.value, actor.address]


def run_in_background(
    task: str,
    task_args: Sequence[object],
    local: Callable[[], object],
    name: str,
) -> None:
    """Queue `task` with `task_args` when Redis is configured, else run `local` in a thread."""
    if context.settings().redis_url:
        context.celery().send_task(task, args=list(task_args))
    else:
        threading.Thread(target=local, name=name, daemon=True).start()
