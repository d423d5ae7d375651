"""Request logs never hold a token path: gunicorn's real access logger and Werkzeug's."""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from gunicorn.config import Config
from gunicorn.glogging import Logger
from sqlalchemy import Engine
from web_fixtures import make_app

from sender.core.tokens import MessageRef, TokenSigner
from sender.devtools.waiting import wait_until
from sender.web import access_log

ROOT = Path(__file__).resolve().parents[2]
TOKEN = TokenSigner("web-test-secret").unsubscribe(MessageRef(5, 11, 3, 2))


def test_every_token_route_is_masked(sqlite_engine: Engine) -> None:
    """A new route with a <token> and no pattern in access_log fails here."""
    app = make_app(sqlite_engine)
    token_rules = [r for r in app.url_map.iter_rules() if "token" in r.arguments]
    assert len(token_rules) >= 5
    for rule in token_rules:
        with app.test_request_context():
            path = app.url_for(rule.endpoint, token=TOKEN)
        masked = access_log.mask_tokens(f'GET {path}?x=1 HTTP/1.1 "{path}"')
        assert TOKEN not in masked, rule.rule
        assert "<token>" in masked


def test_other_paths_are_left_alone() -> None:
    for line in ("GET /api/report?by=case HTTP/1.1", "GET /dashboard/replies HTTP/1.1",
                 "POST /webhooks/sendgrid/events HTTP/1.1"):  # fmt: skip
        assert access_log.mask_tokens(line) == line
    assert access_log.mask_tokens("GET /x?email=jane.doe@example.org") == (
        "GET /x?email=j***@example.org"
    )


class _Response:
    status = "200 OK"
    headers = (("Content-Type", "text/html"),)
    sent = 120


def test_gunicorns_access_logger_writes_no_token(tmp_path: Path, sqlite_engine: Engine) -> None:
    make_app(sqlite_engine)  # installs the filter, as in every gunicorn worker
    log_file = tmp_path / "access.log"
    config = Config()
    config.set("accesslog", str(log_file))
    logger = Logger(config)
    path = f"/unsubscribe/{TOKEN}"
    environ = {
        "REQUEST_METHOD": "POST", "RAW_URI": path, "PATH_INFO": path, "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "198.51.100.4",
        "HTTP_REFERER": f"https://act.example.org/a/{TOKEN}", "HTTP_USER_AGENT": "Mail/1.0",
    }  # fmt: skip
    logger.access(_Response(), [("Host", "act.example.org")], environ, timedelta(seconds=0.2))
    for handler in logging.getLogger("gunicorn.access").handlers:
        handler.flush()
    line = log_file.read_text()
    assert TOKEN not in line
    assert '"POST /unsubscribe/<token> HTTP/1.1" 200' in line
    assert "https://act.example.org/a/<token>" in line


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_a_real_gunicorn_logs_token_paths_masked(tmp_path: Path) -> None:
    """The compose and Dockerfile command: gunicorn --access-logfile, every default else."""
    port, log_file = _free_port(), tmp_path / "access.log"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}",
           "SECRET_KEY": "web-test-secret", "LOG_JSON": "true"}  # fmt: skip
    campaign = Path(sys.executable).parent / "campaign"
    subprocess.run([str(campaign), "db", "upgrade"], env=env, cwd=tmp_path, check=True,
                   capture_output=True)  # fmt: skip
    command = [sys.executable, "-m", "gunicorn", f"--bind=127.0.0.1:{port}", "--workers=1",
               f"--access-logfile={log_file}", "sender.web:create_app()"]  # fmt: skip
    server = subprocess.Popen(command, env=env, cwd=ROOT, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return requests.get(f"{base}/healthz", timeout=5).status_code == 200
            except requests.RequestException:
                assert server.poll() is None, "gunicorn exited"
                return False

        wait_until(up, 60, "gunicorn answering")
        requests.get(f"{base}/a/{TOKEN}", timeout=5)
        requests.get(f"{base}/a/{TOKEN}/x", timeout=5)
        requests.post(f"{base}/unsubscribe/{TOKEN}", data={"List-Unsubscribe": "One-Click"},
                      timeout=5)  # fmt: skip
        wait_until(lambda: log_file.read_text().count("\n") >= 4, 10, "four access lines")
    finally:
        server.terminate()
        server.wait(timeout=30)
    text = log_file.read_text()
    assert TOKEN not in text
    assert len(re.findall(r"/(a|unsubscribe)/<token>", text)) == 3, text
