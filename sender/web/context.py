"""Access to the settings and engine that create_app attached to the app."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import Engine

from sender.core.config import Settings


def settings() -> Settings:
    value: Settings = current_app.extensions["campaign.settings"]
    return value


def engine() -> Engine:
    value: Engine = current_app.extensions["campaign.engine"]
    return value
