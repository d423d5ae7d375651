"""Endpoints for machines: /metrics for Prometheus, /healthz and /readyz for orchestrators.

No login and no supporter data: only counts, ids and states. /healthz says
the process answers; /readyz says it can do its job (database reachable and,
when configured, Redis), so a load balancer stops sending traffic otherwise.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from sender.ops import metrics, status
from sender.web import context

bp = Blueprint("ops", __name__)


def _collectors() -> list[Collector]:
    engine = context.engine()
    found: list[Collector] = [metrics.WaveMessagesCollector(lambda: status.wave_counts(engine))]
    if context.settings().redis_url:
        celery = context.celery()
        found.append(metrics.QueueDepthCollector(lambda: status.queue_depths_at(celery)))
    return found


@bp.get("/metrics")
def metrics_endpoint() -> Response:
    return Response(metrics.render(_collectors()), mimetype=metrics.CONTENT_TYPE)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


def database_ready() -> str | None:
    """None when a trivial query works, else a short reason without secrets."""
    try:
        with context.engine().connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        return type(error).__name__
    return None


def redis_ready() -> str | None:
    url = context.settings().redis_url
    if not url:
        return None
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except (redis.RedisError, OSError) as error:
        return type(error).__name__
    finally:
        client.close()
    return None


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    checks = {"database": database_ready(), "redis": redis_ready()}
    ready = all(problem is None for problem in checks.values())
    body = {name: problem or "ok" for name, problem in checks.items()}
    if not context.settings().redis_url:
        body["redis"] = "not configured (in-process)"
    return jsonify(ready=ready, **body), 200 if ready else 503
