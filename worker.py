"""The Celery app: `celery -A worker worker`, `celery -A worker beat`, `celery -A worker flower`.

Redis (REDIS_URL) is broker and result backend. Tasks live in sender.tasks
and stay thin: they call plain functions that the tests call directly.
"""

import sys
from typing import Any

from celery.signals import setup_logging

from sender.celery_app import create_celery, refuse_unsafe_celery_start
from sender.core.config import get_settings
from sender.ops.logs import configure_logging
from sender.ops.metrics import install_celery_hooks

# Production refuses published or weak secrets before a worker, beat or Flower starts.
refuse_unsafe_celery_start(get_settings(), sys.argv)
app = create_celery()
install_celery_hooks()  # each worker container serves /metrics on WORKER_METRICS_PORT


def _configure_logging(**_kwargs: Any) -> None:
    configure_logging()


# Connecting this signal stops Celery from installing its own root handler.
setup_logging.connect(_configure_logging, weak=False)
