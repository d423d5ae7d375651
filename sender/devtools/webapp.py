"""A WSGI app served on localhost from a thread: the demo, fault tests and browser tests
need the real web app reachable over HTTP, as SendGrid and a browser would reach it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from werkzeug.serving import make_server


@contextmanager
def serving(app: Any, port: int = 0) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 (a free port unless given); yields its base URL."""
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
