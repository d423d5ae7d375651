"""The gunicorn settings: the launch check's variants are rendered in the master, once."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine
from wave_workspace_fixtures import seed_assigned
from web_fixtures import make_app

from sender.render import renderer
from sender.render.preview import check_all
from sender.web import gunicorn_conf


def arbiter(app: Any) -> Any:
    """What gunicorn hands `when_ready`: the arbiter, whose app loads the WSGI callable."""
    return SimpleNamespace(app=SimpleNamespace(wsgi=lambda: app))


def test_the_master_renders_every_variant_before_the_workers_fork(
    pg_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_assigned(pg_engine)
    app = make_app(pg_engine, outbox_dir=tmp_path)
    rendered: list[Any] = []
    real = renderer.Renderer._render

    def counted(self: Any, key: Any, *args: Any) -> Any:
        rendered.append(key)
        return real(self, key, *args)

    monkeypatch.setattr(renderer.Renderer, "_render", counted)
    gunicorn_conf.when_ready(arbiter(app))
    ahead = len(rendered)
    assert ahead > 0
    # What a worker's first preview grid or launch page asks is already there.
    assert check_all(app.extensions["campaign.engine"], app.extensions["campaign.settings"]) == []
    assert len(rendered) == ahead


def test_a_database_that_is_not_there_yet_does_not_stop_the_server(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app_nowhere(tmp_path)
    gunicorn_conf.when_ready(arbiter(app))
    assert "previews not rendered ahead" in caplog.text


def make_app_nowhere(tmp_path: Path) -> Any:
    # A PostgreSQL port nothing listens on: the server must start all the same.
    nowhere = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    return make_app(nowhere, outbox_dir=tmp_path)
