"""The staff workspace: running a campaign from the browser (issue 16).

One module per task area, each with its own blueprint under /workspace and its
templates under templates/web/workspace/. Pages are server-rendered; htmx
(vendored in sender/web/static/vendor) only refreshes the live parts. Every
page needs a staff login, every change goes through sender.staff.audit with
the request's actor (sender.web.actors.current_actor), and every form carries
the CSRF token. Views stay thin: what is not Flask lives in the capability
packages.
"""

from __future__ import annotations

from flask import Flask

# Each area's module, registered in this order; add a line for a new one.
AREAS: tuple[str, ...] = (
    # one module name per line
    "campaigns",
    "supporters",
    "waves",
    "preview",
    "reports",
    "replies",
)


def register(app: Flask) -> None:
    import importlib

    for name in AREAS:
        module = importlib.import_module(f"sender.web.workspace.{name}")
        app.register_blueprint(module.bp)
