"""The collector in workers: the start-up heap is frozen when a worker starts."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from celery.signals import worker_init, worker_process_init
from celery.utils.dispatch import Signal

import sender.celery_app
from sender.ops.collector import collector_paused, freeze_start_up_heap


@pytest.fixture
def unfreeze() -> Iterator[None]:
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfreeze")
def test_freezing_moves_the_live_heap_out_of_collections() -> None:
    gc.unfreeze()
    freeze_start_up_heap()
    assert gc.get_freeze_count() > 1000  # at least this test process's modules
    assert gc.get_count()[0] < 100  # and it collected first


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


def test_paused_collector_restores_its_state() -> None:
    was = gc.isenabled()
    try:
        gc.enable()
        with collector_paused():
            assert not gc.isenabled()
        assert gc.isenabled()
        gc.disable()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        if was:
            gc.enable()
