"""The workspace's CSV import as a browser does it, and the CLI's import of the same file.

The browser's: the supporters page for its CSRF token, the file streamed in
one POST to the upload route (sender.web.workspace.imports), then the
progress fragment polled, as htmx polls it, until the run is over. The time
runs from the first byte of the POST to the poll that sees the run done.
The CLI's: `campaign supporters import FILE --errors REJECTED` in a fresh
process, timed from start to exit.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.staff_client import MultipartFile, csrf_of

STATE = re.compile(r'data-state="([a-z]+)"')
RUN = re.compile(r"/imports/(\d+)$")
POLL_SECONDS = 0.5  # htmx polls the fragment every second; half that keeps the error small


@dataclass(frozen=True)
class Imported:
    seconds: float
    state: str
    run_id: int | None = None


def through_browser(http: requests.Session, base_url: str, path: Path, timeout: float) -> Imported:
    token = csrf_of(http.get(f"{base_url}/workspace/supporters/", timeout=30).text)
    body = MultipartFile(token, path)
    began = time.perf_counter()
    answer = http.post(
        f"{base_url}/workspace/supporters/imports",
        data=body,  # type: ignore[arg-type]  # file-like: requests reads it in blocks
        headers={"Content-Type": body.content_type, "Content-Length": str(len(body))},
        allow_redirects=False,
        timeout=timeout,
    )
    found = RUN.search(answer.headers.get("Location", ""))
    if answer.status_code != 303 or not found:
        raise RuntimeError(f"upload refused: {answer.status_code} {answer.text[:300]}")
    run_id = int(found.group(1))
    progress = f"{base_url}/workspace/supporters/imports/{run_id}/progress"
    deadline = began + timeout
    while time.perf_counter() < deadline:
        state = STATE.search(http.get(progress, timeout=30).text)
        if state and state.group(1) in ("done", "failed"):
            return Imported(time.perf_counter() - began, state.group(1), run_id)
        time.sleep(POLL_SECONDS)
    raise RuntimeError(f"import {run_id} not over after {timeout:.0f} s")


def through_cli(env: dict[str, str], path: Path, rejected: Path, timeout: float) -> Imported:
    command = [
        sys.executable,
        "-c",
        "from sender.cli import main; main()",
        "supporters",
        "import",
        str(path),
        "--errors",
        str(rejected),
    ]
    began = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - began
    if done.returncode:
        raise RuntimeError(f"CLI import failed: {done.stdout[-500:]} {done.stderr[-500:]}")
    return Imported(seconds, "done")
