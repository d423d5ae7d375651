"""The Flask app: webhooks, supporter-facing links, staff dashboard, ops endpoints.

One blueprint per module; `create_app` wires them to settings and the database.
Run locally with `campaign serve`, in production with
`gunicorn 'sender.web:create_app()'`. In production mode (the default) the
factory refuses to build an app on published or weak secrets
(sender.core.runmode), so gunicorn does not start.
"""

from __future__ import annotations

from flask import Flask

from sender.core.config import Settings, get_settings
from sender.core.db import get_engine
from sender.core.runmode import refuse_unsafe_start
from sender.ops.logs import configure_logging
from sender.web import (
    access_log,
    account,
    audit_view,
    auth,
    dashboard,
    hardening,
    inbound,
    links,
    ops,
    workspace,
)
from sender.web import api as api_web
from sender.web import webhooks as webhooks_web


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or get_settings()
    refuse_unsafe_start(settings, "The web app")
    configure_logging(settings)
    access_log.install()  # token paths never reach a request log line
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_base_url.startswith("https://"),
        MAX_CONTENT_LENGTH=32 * 1024 * 1024,  # SendGrid inbound mail may reach 30 MB
    )
    app.extensions["campaign.settings"] = settings
    app.extensions["campaign.engine"] = get_engine(settings.database_url)
    hardening.init_hardening(app, settings)
    ops.init_metrics(app, settings)
    # Blueprints register here, one line each.
    app.register_blueprint(inbound.bp)
    app.register_blueprint(links.bp)
    app.register_blueprint(webhooks_web.bp)
    app.register_blueprint(api_web.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(audit_view.bp)
    workspace.register(app)
    # Keep last: CSRF for every form, with the webhook/link blueprints exempted.
    auth.init_security(app, settings)
    return app
