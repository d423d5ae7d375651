"""`campaign serve` answers HTTP with the app's blueprints, and without Redis it ticks itself."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import time
from pathlib import Path

from sqlalchemy import Engine
from wave_workspace_fixtures import seed_assigned

from sender.campaign.waves import launch
from sender.cli.serve import start_in_process_scheduler
from sender.core.clock import SystemClock
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.models import Wave
from sender.core.vocabulary import WaveStatus
from sender.devtools.services import free_port
from sender.devtools.waiting import wait_until


def _refusal(server: subprocess.Popen[bytes], port: int) -> urllib.error.HTTPError:
    """The HTTP error the link answers with; OSError while the server is not up yet."""
    assert server.poll() is None, "campaign serve exited early"
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/a/not-a-token", timeout=2)
    except urllib.error.HTTPError as error:
        return error
    raise AssertionError("a link that does not work answered 200")


def test_serve_runs_the_web_app(tmp_path: Path) -> None:
    port = free_port()
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))},
        "DATABASE_URL": f"sqlite:///{tmp_path / 'campaign.db'}",
        "SECRET_KEY": "test-secret",
    }
    command = [str(Path(sys.executable).parent / "campaign"), "serve", "--port", str(port)]
    server = subprocess.Popen(command, env=environment, cwd=tmp_path, stdout=subprocess.PIPE)
    try:
        error = wait_until(
            lambda: _refusal(server, port),
            30,
            "campaign serve to answer",
            step=0.2,
            ignoring=(OSError,),
        )
        assert error.code == 400
        assert "This link does not work" in error.read().decode()
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_serve_refuses_the_published_settings_in_production(tmp_path: Path) -> None:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "SECRET_KEY"))},
        "DATABASE_URL": f"sqlite:///{tmp_path / 'campaign.db'}",
        "CAMPAIGN_MODE": "production",
    }
    command = [str(Path(sys.executable).parent / "campaign"), "serve", "--port", str(free_port())]
    done = subprocess.run(
        command, env=environment, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    output = " ".join(done.stdout.split())
    assert "The web app refuses to start in production mode" in output
    for name in ("SECRET_KEY", "STAFF_PASSWORD", "INBOUND_SECRET", "PUBLIC_BASE_URL"):
        assert f"- {name} " in output
    assert "serving on" not in output


def _launched_draft(engine: Engine, settings: Settings) -> int:
    """The seed's draft launched, its window the whole day, the wave in flight cancelled."""
    seeded = seed_assigned(engine)
    with session_scope(engine) as session:
        draft = session.get_one(Wave, seeded.draft_wave_id)
        draft.local_window_start, draft.local_window_end = time(0, 0), time(23, 59)
        draft.subjects = {"en": "Write today", "ar": "اكتبوا اليوم"}
        session.get_one(Wave, seeded.wave_id).status = WaveStatus.CANCELLED
        name = draft.name
    launch(engine, settings, name, SystemClock().now())
    return seeded.draft_wave_id


def test_without_redis_serve_ticks_itself_so_a_launched_wave_sends(
    pg_url: str, pg_engine: Engine, tmp_path: Path
) -> None:
    settings = Settings(database_url=pg_url, outbox_dir=tmp_path / "outbox")
    wave_id = _launched_draft(pg_engine, settings)
    stop = start_in_process_scheduler(pg_engine, settings, every=0.2)
    assert stop is not None
    try:

        def done() -> bool:
            with session_scope(pg_engine) as session:
                return session.get_one(Wave, wave_id).status == WaveStatus.DONE

        wait_until(done, 60, "the launched wave to be sent by the in-process tick")
    finally:
        stop.set()
    assert len(list((tmp_path / "outbox").rglob("*.eml"))) == 6


def test_with_redis_serve_leaves_the_tick_to_beat(pg_url: str, pg_engine: Engine) -> None:
    settings = Settings(database_url=pg_url, redis_url="redis://127.0.0.1:1/0")
    assert start_in_process_scheduler(pg_engine, settings) is None
