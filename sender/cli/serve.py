"""`campaign serve`: the web app on Flask's development server.

Without REDIS_URL no beat and no worker exist, so a wave launched from the
workspace would wait for ever: serve then runs the scheduler's tick itself, on
a thread, and says so at start-up.
"""

from __future__ import annotations

import logging
import threading
from typing import Annotated

import typer
from sqlalchemy import Engine

from sender.cli.common import console, open_database
from sender.core.clock import SystemClock
from sender.core.config import Settings, get_settings
from sender.core.speedups import collector_paused
from sender.send.scheduler import InlineDispatcher, tick
from sender.send.wiring import default_sender
from sender.web import create_app

HELP = "Run the web app locally (webhooks, links, dashboard); use gunicorn in production."
# Shorter than beat's 30 s: on a laptop a launched wave should start while one watches.
IN_PROCESS_TICK_SECONDS = 10.0
log = logging.getLogger(__name__)


def tick_forever(engine: Engine, settings: Settings, stop: threading.Event, every: float) -> None:
    """Tick until `stop` is set; a failed tick is logged and the next one tries again."""
    sender = default_sender(settings, SystemClock(), collector_paused)
    while not stop.is_set():
        try:
            report = tick(engine, settings, SystemClock().now(), InlineDispatcher(sender))
            for line in report.lines():
                log.info("in-process tick: %s", line)
        except Exception:
            log.exception("in-process tick failed; trying again in %.0f s", every)
        stop.wait(every)


def start_in_process_scheduler(
    engine: Engine, settings: Settings, every: float = IN_PROCESS_TICK_SECONDS
) -> threading.Event | None:
    """The tick on a daemon thread when there is no Redis; the event stops it."""
    if settings.uses_redis:
        return None
    stop = threading.Event()
    threading.Thread(
        target=tick_forever,
        args=(engine, settings, stop, every),
        name="in-process-scheduler",
        daemon=True,
    ).start()
    return stop


def serve_command(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8000,
) -> None:
    settings = get_settings()
    engine = open_database(settings)  # migrate SQLite / refuse an outdated PostgreSQL first
    app = create_app(settings)  # refuses unsafe settings in production mode
    if start_in_process_scheduler(engine, settings) is not None:
        message = (
            "no REDIS_URL: the scheduler ticks in this process every "
            f"{IN_PROCESS_TICK_SECONDS:.0f} s, so launched waves send from here"
            " (with Redis, beat and the workers do)"
        )
        log.warning(message)
    console.print(f"serving on http://{host}:{port}  (Ctrl+C to stop)")
    app.run(host=host, port=port, debug=False, use_reloader=False)
