"""The Celery app: task names, the beat schedule, and what workers do at start-up."""

from __future__ import annotations

import pytest
from celery.signals import worker_init, worker_process_init
from celery.utils.dispatch import Signal

import sender.celery_app
from sender.celery_app import TASK_NAMES, TICK_TASK, create_celery
from sender.core.config import Settings


def test_registered_task_names_are_exactly_the_deployed_ones() -> None:
    # Queued messages name their task: these strings must survive every deploy.
    app = create_celery(Settings(_env_file=None, secret_key="test"))  # type: ignore[call-arg]
    app.loader.import_default_modules()
    ours = {name for name in app.tasks if not name.startswith("celery.")}
    assert (
        ours
        == set(TASK_NAMES)
        == {
            "sender.tick",
            "sender.send_batch",
            "sender.tasks.process_events",
            "sender.tasks.parse_reply",
        }
    )
    assert app.conf.beat_schedule["tick"]["task"] == TICK_TASK


@pytest.mark.parametrize("signal", [worker_init, worker_process_init])
def test_worker_start_up_signals_freeze_the_heap(
    signal: Signal, monkeypatch: pytest.MonkeyPatch
) -> None:
    frozen: list[bool] = []
    monkeypatch.setattr(sender.celery_app, "freeze_start_up_heap", lambda: frozen.append(True))
    # (dispatch_uid, sender id) -> receiver; ours are connected strongly, by uid.
    ours = [receiver for key, receiver in signal.receivers if key[0].startswith("sender.freeze")]
    assert len(ours) == 1
    ours[0](signal=signal, sender=None)  # as the worker sends it
    assert frozen == [True]
