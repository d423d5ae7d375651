"""gunicorn's settings for the web app, read with `-c python:sender.web.gunicorn_conf`.

The app is built once in the master (`preload_app`), which then renders the
launch check's variants (`preview.check_all`) before any worker is forked, so
every worker starts with them rendered instead of spending its first preview
grid or launch page on them (2.4 s at seven cases in four languages). Workers
inherit the rendered variants copy-on-write. Bind address, worker count and
logging stay on the command line.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from sender.core.errors import CampaignError

preload_app = True
log = logging.getLogger("sender.web")


def when_ready(server: Any) -> None:
    """In the master, after the app is loaded and before the workers are forked."""
    from sender.render.preview import check_all  # after the app: it configured logging

    app = server.app.wsgi()
    engine = app.extensions["campaign.engine"]
    began = time.perf_counter()
    try:
        problems = check_all(engine, app.extensions["campaign.settings"])
    except (SQLAlchemyError, CampaignError, OSError) as error:
        # A database that is not there yet is /readyz's to report; pages render on demand.
        log.warning("previews not rendered ahead: %s", error)
    else:
        log.info(
            "previews rendered ahead in %.1f s (%d problems)",
            time.perf_counter() - began,
            len(problems),
        )
    finally:
        engine.dispose()  # no connection of the master's is shared with a forked worker
