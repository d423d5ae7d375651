"""`campaign serve` answers HTTP with the app's blueprints."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/a/not-a-token", timeout=2)
            except urllib.error.HTTPError as error:
                assert error.code == 400
                assert "This link does not work" in error.read().decode()
                break
            except OSError:
                assert server.poll() is None, "campaign serve exited early"
                assert time.monotonic() < deadline, "campaign serve did not start"
                time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(timeout=10)
