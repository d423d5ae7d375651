"""Fixtures and builders for tests that talk to the local SendGrid process."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from sender.core.mail import Address, OutgoingBatch, Recipient
from sender.devtools.local_sendgrid.process import LocalSendGrid, local_sendgrid

API_KEY = "SG.test-key"


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A real HTTP endpoint that keeps every POST it gets (webhook or inbound)."""

    url: str
    posts: list[Received] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    posts: list[Received] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            posts.append(Received(self.path, dict(self.headers.items()), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Receiver(f"http://127.0.0.1:{server.server_port}/hook", posts)
    server.shutdown()
    server.server_close()


@dataclass
class Canned:
    """A real HTTP server answering every GET with `status` and `body`, set per test."""

    url: str
    status: int = 200
    body: bytes = b"{}"


@pytest.fixture
def canned() -> Iterator[Canned]:
    answer = Canned("")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    answer.url = f"http://127.0.0.1:{server.server_port}"
    yield answer
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A host that takes the connection and never answers: the request times out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # connections wait in the backlog; nothing ever reads them
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


@pytest.fixture(scope="module")
def sendgrid_process() -> Iterator[LocalSendGrid]:
    with local_sendgrid(api_key=API_KEY) as sg:
        yield sg


@pytest.fixture
def sg(sendgrid_process: LocalSendGrid) -> LocalSendGrid:
    """The module's server, emptied and fault-free for this test."""
    sendgrid_process.admin.reset()
    return sendgrid_process


def recipient(i: int, **extra: str) -> Recipient:
    return Recipient(
        to=Address(f"supporter{i}@example.net", f"Supporter {i}"),
        substitutions={
            "-first_name-": f"Name{i}",
            "-action_url-": f"https://act.example.org/a/{i}",
            **extra,
        },
        custom_args={"message_id": f"m{i}"},
        headers={"List-Unsubscribe": f"<https://act.example.org/u/{i}>"},
    )


def batch(n: int = 3, *, send_key: str = "wave1-batch1", **changes: Any) -> OutgoingBatch:
    values: dict[str, Any] = {
        "send_key": send_key,
        "sender": Address("campaigns@example.org", "Write for Rights"),
        "reply_to": Address("reply+tok123@parse.example.org"),
        "subject": "-first_name-, a letter can free someone",
        "html": '<p>Dear -first_name-,</p><p><a href="-action_url-">Write now</a></p>',
        "text": "Dear -first_name-,\nWrite now: -action_url-\n",
        "categories": ("w4r-2020", "wave-1"),
        "recipients": tuple(recipient(i) for i in range(n)),
        # Shared: sent once, merged into every recipient's (theirs win).
        "custom_args": {"wave_id": "w1"},
        "headers": {"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
    }
    values.update(changes)
    return OutgoingBatch(**values)


def mail_json(n: int = 2, **top: Any) -> dict[str, Any]:
    """A valid mail/send body with `n` personalizations, one recipient each."""
    body: dict[str, Any] = {
        "personalizations": [
            {
                "to": [{"email": f"p{i}@example.net"}],
                "subject": "Hello -name-",
                "substitutions": {"-name-": f"P{i}"},
                "custom_args": {"message_id": f"m{i}"},
            }
            for i in range(n)
        ],
        "from": {"email": "campaigns@example.org"},
        "reply_to": {"email": "reply+t@parse.example.org"},
        "content": [
            {"type": "text/plain", "value": "Hi -name-"},
            {"type": "text/html", "value": '<a href="https://act.example.org/x">x</a>'},
        ],
        "categories": ["w4r"],
    }
    body.update(top)
    return body
