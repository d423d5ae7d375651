"""Reading a SendGrid Inbound Parse form with a 25 MB attachment.

Compares the webhook's streaming reader (text fields decoded with their
charsets, attachments counted, never held) with the naive way: Flask's
`request.form` + `request.files`, keeping each attachment's bytes, as a
handler that stored them in the database would. Run:

    .venv/bin/python -m bench.inbound_form
"""

from __future__ import annotations

import json
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable

from flask import Flask, request

from sender.track.providers import sendgrid
from sender.web.inbound import read_form

ATTACHMENT = 25 * 1024 * 1024
RUNS = 5


def body() -> tuple[bytes, str]:
    boundary = "bench-boundary"
    fields = {
        "from": "Bob <bob@example.org>",
        "to": "reply+1.2.en.0123456789abcdef0123@parse.example.org",
        "subject": "Re: Write for Rights",
        "text": "Photos from our vigil for Jani.\n" * 20,
        "charsets": json.dumps({"from": "UTF-8", "to": "UTF-8", "text": "utf-8"}),
    }
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="attachment1"; '
        f'filename="vigil.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'.encode()
        + b"\xff" * ATTACHMENT
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def naive() -> int:
    kept = {name: upload.read() for name, upload in request.files.items()}
    return len(request.form) + sum(len(data) for data in kept.values())


def streaming() -> int:
    return len(read_form(sendgrid.INBOUND).raw_form["fields"])


def measure(
    app: Flask, data: bytes, content_type: str, read: Callable[[], int]
) -> tuple[float, float]:
    times, peaks = [], []
    for _ in range(RUNS):
        with app.test_request_context("/", method="POST", data=data, content_type=content_type):
            tracemalloc.start()
            started = time.perf_counter()
            read()
            times.append(time.perf_counter() - started)
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
    return statistics.median(times), statistics.median(peaks)


def main() -> None:
    data, content_type = body()
    app = Flask(__name__)
    naive_time, naive_peak = measure(app, data, content_type, naive)
    stream_time, stream_peak = measure(app, data, content_type, streaming)
    print(f"python {platform.python_version()} on {platform.machine()}, median of {RUNS} runs")
    print(f"form size: {len(data) / 1e6:.1f} MB (one {ATTACHMENT // 2**20} MiB attachment)")
    print(f"naive  request.form/files: {naive_time * 1e3:7.1f} ms, peak {naive_peak / 1e6:6.1f} MB")
    print(
        f"streaming read_form      : {stream_time * 1e3:7.1f} ms, peak {stream_peak / 1e6:6.1f} MB"
    )
    print(f"time ratio streaming/naive: {stream_time / naive_time:.2f}")
    print(f"memory ratio naive/streaming: {naive_peak / max(stream_peak, 1):.0f}x")


if __name__ == "__main__":
    main()
