"""The Celery app: `celery -A worker worker` and `celery -A worker beat`.

Redis (REDIS_URL) is broker and result backend. Tasks live in sender.tasks
and stay thin: they call plain functions that the tests call directly.
"""

from sender.celery_app import create_celery

app = create_celery()
