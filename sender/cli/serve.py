"""`campaign serve`: the web app on Flask's development server."""

from __future__ import annotations

from typing import Annotated

import typer

from sender.cli.common import console, open_database
from sender.core.config import get_settings
from sender.web import create_app

HELP = "Run the web app locally (webhooks, links, dashboard); use gunicorn in production."


def serve_command(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8000,
) -> None:
    settings = get_settings()
    open_database(settings)  # migrate SQLite / refuse an outdated PostgreSQL before listening
    app = create_app(settings)  # refuses unsafe settings in production mode
    console.print(f"serving on http://{host}:{port}  (Ctrl+C to stop)")
    app.run(host=host, port=port, debug=False, use_reloader=False)
