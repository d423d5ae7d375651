"""Access to the settings, engine and Celery app that belong to the running Flask app."""

from __future__ import annotations

from celery import Celery
from flask import current_app
from sqlalchemy import Engine

from sender.celery_app import create_celery
from sender.core.clock import Clock, SystemClock
from sender.core.config import Settings
from sender.ops.status import LiveSource

_CELERY = "campaign.celery"
CLOCK = "campaign.clock"  # a test or the demo may put a MovableClock here


def settings() -> Settings:
    value: Settings = current_app.extensions["campaign.settings"]
    return value


def engine() -> Engine:
    value: Engine = current_app.extensions["campaign.engine"]
    return value


def clock() -> Clock:
    """The app's clock: the system's unless one was installed under `CLOCK`."""
    value: Clock = current_app.extensions.get(CLOCK) or SystemClock()
    return value


def celery() -> Celery:
    """The Celery app for this app's settings, made on first use (status asks it for queues)."""
    if _CELERY not in current_app.extensions:
        current_app.extensions[_CELERY] = create_celery(settings())
    value: Celery = current_app.extensions[_CELERY]
    return value


def live_source() -> LiveSource | None:
    """Where status reads queues, workers and rate buckets; None without Redis (in-process)."""
    url = settings().redis_url
    return LiveSource(url, celery()) if url else None
