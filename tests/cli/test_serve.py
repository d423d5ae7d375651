"""`campaign serve` answers HTTP with the app's blueprints."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

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
