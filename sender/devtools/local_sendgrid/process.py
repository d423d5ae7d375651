"""Start the local SendGrid as a real subprocess on a free port, and stop it.

with local_sendgrid(api_key="SG.test") as sg:
    transport = SendGridTransport(sg.api_key, host=sg.base_url)
    ...
    assert sg.admin.count() == 3
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from sender.devtools.services import free_port
from sender.devtools.waiting import wait_until


@dataclass(frozen=True)
class Admin:
    """The /_admin/ endpoints, as plain calls."""

    base_url: str
    timeout: float = 60.0

    def _get(self, path: str, **params: Any) -> Any:
        answer = requests.get(f"{self.base_url}{path}", params=params, timeout=self.timeout)
        answer.raise_for_status()
        return answer.json()

    def _post(self, path: str, payload: dict[str, Any]) -> Any:
        answer = requests.post(f"{self.base_url}{path}", json=payload, timeout=self.timeout)
        answer.raise_for_status()
        return answer.json()

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._get("/_admin/stats")
        return result

    def count(self, email: str | None = None, message_id: str | None = None) -> int:
        params = {k: v for k, v in (("email", email), ("message_id", message_id)) if v}
        return int(self._get("/_admin/recipients", count=1, **params)["count"])

    def recipients(self, **params: Any) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self._get("/_admin/recipients", **params)["recipients"]
        return rows

    def set_faults(self, **plan: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._post("/_admin/faults", plan)
        return result

    def reset(self) -> None:
        self._post("/_admin/reset", {})

    def simulate(self, **scenario: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._post("/_admin/simulate", scenario)
        return result

    def set_quota(self, recipients: int | None) -> dict[str, Any]:
        """Drop every recipient past `recipients` more for the quota; None lifts it."""
        result: dict[str, Any] = self._post("/_admin/quota", {"recipients": recipients})
        return result

    def post_event(self, **fields: Any) -> dict[str, Any]:
        """Post one event (account_events.build_event); its answer status and the event."""
        result: dict[str, Any] = self._post("/_admin/event", fields)
        return result

    def message(self, recipient_id: int) -> dict[str, Any]:
        """One recipient's mail as delivered: click tracking applied, tags substituted."""
        result: dict[str, Any] = self._get("/_admin/message", id=recipient_id)
        return result

    def scan(self, **request: Any) -> dict[str, Any]:
        """A gateway fetching every link of the recorded mail (scanner.py)."""
        result: dict[str, Any] = self._post("/_admin/scan", request)
        return result

    def reply(self, **fields: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._post("/_admin/reply", fields)
        return result

    def post_events(self, events: list[Any], events_url: str | None = None) -> int:
        """Post a given batch, signed, retried like any other; the first attempt's status."""
        payload: dict[str, Any] = {"events": events}
        if events_url:
            payload["events_url"] = events_url
        return int(self._post("/_admin/post-events", payload)["status"])

    def add_key(self, key: str, scopes: Sequence[str]) -> dict[str, Any]:
        """A key with only these scopes (until the next reset); GET /v3/scopes lists them."""
        result: dict[str, Any] = self._post("/_admin/keys", {"key": key, "scopes": list(scopes)})
        return result

    def retries(self) -> dict[str, Any]:
        result: dict[str, Any] = self._get("/_admin/retries")
        return result

    def set_retries(self, **policy: float) -> dict[str, Any]:
        result: dict[str, Any] = self._post("/_admin/retries", policy)
        return result


@dataclass(frozen=True)
class LocalSendGrid:
    base_url: str
    api_key: str
    public_key: str
    admin: Admin
    process: subprocess.Popen[bytes]


def _public_key(process: subprocess.Popen[bytes], base_url: str) -> str:
    if process.poll() is not None:
        raise RuntimeError(f"local SendGrid exited with {process.returncode} while starting")
    answer = requests.get(f"{base_url}/_admin/public-key", timeout=1)
    return str(answer.json()["public_key"])


@contextmanager
def local_sendgrid(
    *,
    api_key: str = "SG.local-test-key",
    state: Path | None = None,
    events_url: str | None = None,
    inbound_url: str | None = None,
    inbound_auth: tuple[str, str] | None = None,
    keys: Mapping[str, Sequence[str]] | None = None,
    extra_args: Sequence[str] = (),
    startup_timeout: float = 20.0,
) -> Iterator[LocalSendGrid]:
    port = free_port()
    command = [
        sys.executable, "-m", "sender.devtools.local_sendgrid.server",
        "--port", str(port), "--api-key", api_key,
    ]  # fmt: skip
    for flag, value in (("--state", state), ("--events-url", events_url),
                        ("--inbound-url", inbound_url)):  # fmt: skip
        if value:
            command += [flag, str(value)]
    if inbound_auth:
        command += ["--inbound-auth", ":".join(inbound_auth)]
    for key, scopes in (keys or {}).items():  # restricted keys beside the full-access one
        command += ["--key", f"{key}={','.join(scopes)}"]
    command += list(extra_args)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    try:
        public_key = wait_until(
            lambda: _public_key(process, base_url),
            startup_timeout,
            f"local SendGrid at {base_url} to answer",
            step=0.05,
            ignoring=(requests.ConnectionError,),
        )
        yield LocalSendGrid(base_url, api_key, public_key, Admin(base_url), process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
