"""Endpoints for machines: /metrics for Prometheus, /healthz and /readyz for orchestrators.

No login and no supporter data: only counts, ids and states. /healthz says
the process answers; /readyz says it can do its job (database reachable and,
when configured, Redis), so a load balancer stops sending traffic otherwise.

/metrics is open unless METRICS_TOKEN or METRICS_ALLOW is set; then it wants
``Authorization: Bearer <METRICS_TOKEN>`` or a client address inside one of
the METRICS_ALLOW networks (either will do). Each scrape is O(1): the per-wave
counts are cached (sender.ops.metrics.Cached).
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from sender.core.config import Settings
from sender.ops import metrics, status
from sender.ops.metrics import WaveCount
from sender.web import context
from sender.web.hardening import Network, address_in, allowed_networks, bearer_matches

bp = Blueprint("ops", __name__)
_WAVE_COUNTS = "campaign.wave_counts"
_ALLOWED = "campaign.metrics_allow"


def init_metrics(app: Flask, settings: Settings) -> None:
    """The per-process cache of wave counts, and METRICS_ALLOW checked at start-up."""
    engine = app.extensions["campaign.engine"]
    app.extensions[_WAVE_COUNTS] = metrics.Cached(
        lambda: status.wave_counts(engine), settings.metrics_refresh_seconds
    )
    app.extensions[_ALLOWED] = allowed_networks(settings.metrics_allow)


def wave_counts() -> metrics.Cached[list[WaveCount]]:
    value: metrics.Cached[list[WaveCount]] = current_app.extensions[_WAVE_COUNTS]
    return value


def _collectors() -> list[Collector]:
    counts = wave_counts()
    found: list[Collector] = [metrics.WaveMessagesCollector(counts.get)]
    if context.settings().redis_url:
        celery = context.celery()
        found.append(metrics.QueueDepthCollector(lambda: status.queue_depths_at(celery)))
    return found


def metrics_allowed() -> bool:
    settings = context.settings()
    networks: tuple[Network, ...] = current_app.extensions[_ALLOWED]
    if not settings.metrics_token and not networks:
        return True
    return bearer_matches(settings.metrics_token) or address_in(request.remote_addr, networks)


@bp.get("/metrics")
def metrics_endpoint() -> Response:
    if not metrics_allowed():
        return Response(
            "a metrics token or an allowed address is required\n",
            401,
            {"WWW-Authenticate": 'Bearer realm="metrics"'},
            mimetype="text/plain",
        )
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
