"""Latency probe: a steady, bounded stream of supporter and provider requests to the web app.

    .venv/bin/python -m bench.probe SETUP.json SAMPLES.jsonl   (started by bench.wave)

In its own process, one request at a time, one every `interval` seconds,
taking the endpoints in turn: an action link (`GET /a/<token>`), the one-click
unsubscribe (`POST /unsubscribe/<token>`), a signed event batch, an inbound
reply, and, one turn in `dashboard_every`, the dashboard's front page
(logged in). Each answer's time goes
to SAMPLES.jsonl as it comes; bench.wave cuts them into periods (idle,
planning, sending) and prints p50, p95, p99 and the maximum per endpoint.

The probe's supporters are not in the wave (no assignment): their
unsubscribes and clicks change nothing the wave sends.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine, select, text

from bench.bulk import write_rows
from sender.core.db import session_scope
from sender.core.models import Message, Supporter, Wave
from sender.core.tokens import TokenSigner
from sender.core.vocabulary import WaveStatus
from sender.devtools.local_sendgrid.inbound_mail import InboundMail, reply_form
from sender.track.providers.sendgrid_signature import SIGNATURE_HEADER, TIMESTAMP_HEADER

ENDPOINTS = ("link", "unsubscribe", "events", "reply", "dashboard")
# The targets on this 2-core machine, while a wave plans and sends.
TARGET_P99 = {"link": 0.5, "unsubscribe": 0.5, "events": 0.5, "reply": 0.5, "dashboard": 1.0}
EVENTS_PER_POST = 50
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@dataclass(frozen=True)
class ProbeSetup:
    """What the probe process needs, written to a JSON file by bench.wave."""

    base_url: str
    action_tokens: list[str]
    unsubscribe_tokens: list[str]
    reply_senders: list[str]
    reply_to: str
    inbound_secret: str
    webhook_key_pem: str
    staff_user: str
    staff_password: str
    interval: float = 0.1
    # One turn in this many is the dashboard: a staff page that counts a million
    # messages is asked for every couple of seconds (an open browser tab or two),
    # not five times a second, or the probe itself would load the database.
    dashboard_every: int = 20


def webhook_key() -> tuple[str, str]:
    """A fresh P-256 key: (private PEM for the probe, public base64 DER for the web app)."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, base64.b64encode(public).decode()


PROBE_COLUMNS = (
    "email, email_hash, first_name, language, timezone, consent, status, created_at, updated_at"
)


def add_probe_supporters(
    engine: Engine, count: int, campaign_id: int, case_id: int
) -> list[tuple[int, int, str]]:
    """Supporters outside the wave (no assignment), each with a message of an earlier wave.

    Links and unsubscribes act only with a message's token; the earlier wave is
    done, so nothing of it is sent. Returns (supporter id, message id, email).
    """
    stamp = datetime(2020, 9, 1, tzinfo=UTC)
    rows = []
    for n in range(count):
        email = f"probe{n}@example.net"
        digest = hashlib.sha256(email.encode()).hexdigest()
        rows.append((email, digest, f"Probe{n}", "en", "UTC", True, "subscribed", stamp, stamp))
    with session_scope(engine) as session:
        earlier = Wave(
            campaign_id=campaign_id,
            name="probe-earlier",
            kind="case_email",
            audience="all_assigned",
            status=WaveStatus.DONE,
            starts_at=stamp,
            ends_at=stamp,
            subjects={"en": "An earlier letter"},
        )
        session.add(earlier)
        session.flush()
        wave_id = earlier.id
    with engine.begin() as connection:
        write_rows(connection, "supporters", PROBE_COLUMNS, rows)
        connection.execute(
            text(
                "INSERT INTO messages (wave_id, supporter_id, case_id, language, status,"
                " sent_at, created_at) SELECT :wave, id, :case, 'en', 'sent', :at, :at"
                " FROM supporters WHERE email LIKE 'probe%@example.net'"
            ),
            {"wave": wave_id, "case": case_id, "at": stamp},
        )
    with engine.connect() as connection:
        found = connection.execute(
            select(Message.supporter_id, Message.id, Supporter.email)
            .join(Supporter, Supporter.id == Message.supporter_id)
            .where(Message.wave_id == wave_id)
            .order_by(Message.id)
        )
        return [(int(row[0]), int(row[1]), str(row[2])) for row in found]


def setup_for(
    base_url: str,
    secret: str,
    supporters: Sequence[tuple[int, int, str]],
    case_id: int,
    reply: tuple[int, str, str],
    secrets: tuple[str, str],
    interval: float,
) -> ProbeSetup:
    """Tokens signed as the app signs them.

    `reply` is (wave id, language, inbound domain) of the replies' token;
    `secrets` is (the webhook's private key PEM, the inbound secret).
    """
    signer = TokenSigner(secret)
    pairs = [signer.tokens_for(sid, mid, case_id, None) for sid, mid, _ in supporters]
    wave_id, language, domain = reply
    return ProbeSetup(
        base_url=base_url,
        action_tokens=[action for action, _ in pairs],
        unsubscribe_tokens=[unsubscribe for _, unsubscribe in pairs],
        reply_senders=[email for _, _, email in supporters],
        reply_to=f"reply+{signer.reply_for(wave_id, case_id, language, None)}@{domain}",
        inbound_secret=secrets[1],
        webhook_key_pem=secrets[0],
        staff_user="staff",
        staff_password="change-me",
        interval=interval,
    )


# --- the probe process ---------------------------------------------------------------


def start(setup: ProbeSetup, directory: Path) -> tuple[subprocess.Popen[bytes], Path]:
    setup_file = directory / "probe-setup.json"
    samples = directory / "probe-samples.jsonl"
    setup_file.write_text(json.dumps(asdict(setup)))
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.probe", str(setup_file), str(samples)],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=(directory / "probe.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    return process, samples


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


@dataclass
class _Client:
    setup: ProbeSetup
    http: requests.Session
    signing_key: ec.EllipticCurvePrivateKey
    turn: int = 0

    def link(self) -> int:
        token = self._pick(self.setup.action_tokens)
        url = f"{self.setup.base_url}/a/{token}"
        return self.http.get(url, allow_redirects=False, timeout=30).status_code

    def unsubscribe(self) -> int:
        token = self._pick(self.setup.unsubscribe_tokens)
        url = f"{self.setup.base_url}/unsubscribe/{token}"
        body = {"List-Unsubscribe": "One-Click"}
        return self.http.post(url, data=body, timeout=30).status_code

    def events(self) -> int:
        body = json.dumps(list(self._events())).encode() + b"\r\n"
        stamp = str(int(time.time()))
        signature = self.signing_key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        headers = {
            SIGNATURE_HEADER: base64.b64encode(signature).decode(),
            TIMESTAMP_HEADER: stamp,
            "Content-Type": "application/json",
        }
        url = f"{self.setup.base_url}/webhooks/sendgrid/events"
        return self.http.post(url, data=body, headers=headers, timeout=30).status_code

    def reply(self) -> int:
        sender = self._pick(self.setup.reply_senders)
        mail = InboundMail(
            sender=sender,
            to=self.setup.reply_to,
            subject="Re: one letter can change a life",
            text=f"I wrote my letter today. Solidarity! ({self.turn})",
        )
        url = f"{self.setup.base_url}/webhooks/sendgrid/inbound"
        answer = self.http.post(
            url,
            files=list(reply_form(mail)),
            auth=("inbound", self.setup.inbound_secret),
            timeout=30,
        )
        return answer.status_code

    def dashboard(self) -> int:
        answer = self.http.get(f"{self.setup.base_url}/dashboard/", timeout=30)
        return answer.status_code if answer.url.endswith("/dashboard/") else 401

    def log_in(self) -> None:
        page = self.http.get(f"{self.setup.base_url}/login", timeout=30).text
        match = _CSRF.search(page)
        assert match, "no CSRF token on /login"
        self.http.post(
            f"{self.setup.base_url}/login",
            data={
                "username": self.setup.staff_user,
                "password": self.setup.staff_password,
                "csrf_token": match.group(1),
            },
            timeout=30,
        )

    def _pick(self, items: Sequence[str]) -> str:
        return items[self.turn % len(items)]

    def _events(self) -> Iterator[dict[str, Any]]:
        stamp = int(time.time())
        for n in range(EVENTS_PER_POST):
            unique = f"{self.turn}-{n}-{stamp}"
            yield {
                "email": self._pick(self.setup.reply_senders),
                "timestamp": stamp,
                "event": "delivered" if n % 2 else "open",
                "sg_event_id": hashlib.sha256(unique.encode()).hexdigest()[:22],
                "sg_message_id": f"probe.{unique}",
            }


def endpoint_of(turn: int, dashboard_every: int) -> str:
    """The endpoint of one turn: the supporter and provider ones in turn, the dashboard less."""
    if turn % dashboard_every == dashboard_every - 1:
        return "dashboard"
    others = ENDPOINTS[:-1]
    return others[(turn - turn // dashboard_every) % len(others)]


def run(setup: ProbeSetup, samples: Path) -> None:
    """Until SIGTERM: one request every `interval` seconds, endpoints in turn."""
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    pem = setup.webhook_key_pem.encode()
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    client = _Client(setup, requests.Session(), key)
    client.log_in()
    calls: dict[str, Callable[[], int]] = {name: getattr(client, name) for name in ENDPOINTS}
    with samples.open("a") as out:
        next_at = time.monotonic()
        while not stopping:
            name = endpoint_of(client.turn, setup.dashboard_every)
            at = time.time()
            began = time.perf_counter()
            try:
                status = calls[name]()
            except requests.RequestException as error:
                status = -1
                print(f"{name}: {error}", flush=True)
            seconds = time.perf_counter() - began
            out.write(json.dumps({"at": at, "endpoint": name, "s": seconds, "status": status}))
            out.write("\n")
            out.flush()
            client.turn += 1
            next_at += setup.interval
            time.sleep(max(0.0, next_at - time.monotonic()))


# --- the verdict ----------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    endpoint: str
    period: str
    count: int
    p50: float
    p95: float
    p99: float
    worst: float
    failed: int


def read_samples(samples: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in samples.read_text().splitlines() if line.strip()]


def figures(
    rows: Sequence[dict[str, Any]], periods: dict[str, tuple[float, float]]
) -> list[Figures]:
    """Percentiles per endpoint and period; a sample belongs to the period its request began in."""
    out: list[Figures] = []
    for period, (begin, end) in periods.items():
        for endpoint in ENDPOINTS:
            chosen = [r for r in rows if r["endpoint"] == endpoint and begin <= r["at"] < end]
            times = sorted(float(r["s"]) for r in chosen)
            failed = sum(1 for r in chosen if not 200 <= int(r["status"]) < 400)
            if times:
                out.append(
                    Figures(
                        endpoint,
                        period,
                        len(times),
                        _percentile(times, 0.50),
                        _percentile(times, 0.95),
                        _percentile(times, 0.99),
                        times[-1],
                        failed,
                    )
                )
    return out


def _percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest rank: the smallest sample with at least `fraction` of them at or below it."""
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]


def table(found: Sequence[Figures]) -> list[str]:
    lines = ["  period    endpoint     n     p50 ms  p95 ms  p99 ms  max ms  non-2xx/3xx  target"]
    for f in found:
        target = TARGET_P99[f.endpoint]
        verdict = "ok" if f.period == "idle" or f.p99 < target else "MISSED"
        lines.append(
            f"  {f.period:<9} {f.endpoint:<11} {f.count:>4} {f.p50 * 1e3:>8.0f}"
            f" {f.p95 * 1e3:>7.0f} {f.p99 * 1e3:>7.0f} {f.worst * 1e3:>7.0f}"
            f" {f.failed:>12}  p99 < {target * 1e3:.0f} ms {verdict}"
        )
    return lines


def main() -> None:
    setup = ProbeSetup(**json.loads(Path(sys.argv[1]).read_text()))
    run(setup, Path(sys.argv[2]))


if __name__ == "__main__":
    main()
