"""A local SendGrid-compatible server: v3 mail/send, faults, events, replies.

Run it as a real process (tests use sender.devtools.local_sendgrid.process):

    python -m sender.devtools.local_sendgrid.server --port 8025 --api-key SG.local \\
        [--state FILE] [--events-url URL] [--inbound-url URL] \\
        [--fault-rate rate_limited=0.05 --fault-rate drop_after=0.01 --seed 7]

The stdlib ThreadingHTTPServer is enough here and, unlike a WSGI server,
lets a handler drop the connection without answering, which is how the
"dropped connection" faults are modelled. Admin endpoints live under
/_admin/ (see docs/SENDGRID.md).
"""

from __future__ import annotations

import argparse
import gc
import json
import secrets
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sender.devtools.local_sendgrid import link_tracking, scanner
from sender.devtools.local_sendgrid.account_events import Quota, build_event
from sender.devtools.local_sendgrid.api_keys import MAIL_SEND, KeyRing, Refusal, keys_for
from sender.devtools.local_sendgrid.faults import (
    RECORDS_MAIL,
    Decision,
    Fault,
    FaultInjector,
    FaultPlan,
    parse_rate_flags,
)
from sender.devtools.local_sendgrid.inbound_mail import InboundMail, post_inbound, reply_form
from sender.devtools.local_sendgrid.legacy_events import LegacyMix
from sender.devtools.local_sendgrid.retries import (
    Retrier,
    add_retry_arguments,
    configure,
    retrier_from_args,
)
from sender.devtools.local_sendgrid.rules import (
    MAX_BODY_BYTES,
    FieldError,
    check_body,
    compiled_validator,
    spec_path,
)
from sender.devtools.local_sendgrid.simulation import simulate
from sender.devtools.local_sendgrid.store import Store
from sender.devtools.local_sendgrid.webhooks import (
    Scenario,
    Signer,
    batches,
    post_signed,
)

_CHUNK = 1024 * 1024


@dataclass
class App:
    """Everything the request handlers share."""

    api_key: str
    store: Store
    faults: FaultInjector
    signer: Signer
    events_url: str | None = None
    inbound_url: str | None = None
    inbound_auth: tuple[str, str] | None = None
    schema_sample: int = 0  # 0: the schema checks every personalization
    quota: Quota = field(default_factory=Quota)  # the plan's quota (account_events)
    retrier: Retrier | None = None  # webhook retries (retries.py); None: post once
    click_tracking: bool = False  # the account's setting, for requests that do not say
    keys: KeyRing | None = None  # None: only `api_key`, with full access (api_keys.py)
    stats: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, key: str, by: float = 1) -> None:
        with self.lock:
            self.stats[key] += by  # type: ignore[assignment]

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            stats = dict(self.stats)
        checked = stats.get("checked_requests", 0)
        return {
            "counters": stats,
            "recipients": self.store.count(),
            "accepted_requests": self.store.request_count(),
            "check_ms_avg": round(stats.get("check_ms", 0) / checked, 3) if checked else None,
            "webhook_retries": self.retrier.snapshot() if self.retrier else None,
        }

    def __post_init__(self) -> None:
        if self.keys is None:
            self.keys = keys_for(self.api_key)

    @property
    def key_ring(self) -> KeyRing:
        assert self.keys is not None  # set in __post_init__
        return self.keys

    def post_events(self, url: str, body: bytes) -> int:
        """One signed event batch; retried in the background when not answered 2xx."""
        if self.retrier is None:
            return post_signed(url, body, self.signer)
        return self.retrier.deliver(url, body)


def errors_json(errors: list[FieldError]) -> dict[str, Any]:
    return {"errors": [e.as_json() for e in errors]}


def _emails(body: dict[str, Any]) -> frozenset[str]:
    return frozenset(
        str(a.get("email", "")).lower()
        for p in body["personalizations"]
        for kind in ("to", "cc", "bcc")
        for a in p.get(kind) or []
    )


class Handler(BaseHTTPRequestHandler):
    server: SendGridHTTPServer
    server_version = "LocalSendGrid/1.0"

    @property
    def app(self) -> App:
        return self.server.app

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    # -- plumbing ---------------------------------------------------------
    def _answer(
        self, status: int, payload: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        if self.path.startswith("/v3/"):
            self.app.count(f"status_{status}")

    def _drop(self) -> None:
        """End the exchange without a single byte of answer."""
        self.close_connection = True
        self.app.count("dropped")

    def _read_body(self) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length <= MAX_BODY_BYTES:
            return self.rfile.read(length)
        while length > 0:  # drain, so the client sees our 413 rather than a reset
            length -= len(self.rfile.read(min(_CHUNK, length)))
        return None

    def _json_body(self) -> dict[str, Any]:
        raw = self._read_body() or b"{}"
        data = json.loads(raw or b"{}")
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        return data

    # -- routes -----------------------------------------------------------
    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path == "/v3/mail/send":
            self._mail_send()
            return
        routes = {
            "/_admin/faults": self._set_faults,
            "/_admin/reset": self._reset,
            "/_admin/simulate": self._simulate,
            "/_admin/reply": self._reply,
            "/_admin/quota": self._quota,
            "/_admin/event": self._event,
            "/_admin/post-events": self._post_events,
            "/_admin/retries": self._set_retries,
            "/_admin/scan": self._scan,
            "/_admin/keys": self._add_key,
        }
        route = routes.get(path)
        if route is None:
            self._answer(404, errors_json([FieldError("not found", None)]))
            return
        try:
            route(self._json_body())
        except (ValueError, KeyError, TypeError) as err:
            self._answer(400, {"error": f"{type(err).__name__}: {err}"})

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if parts.path == "/v3/scopes":
            self._scopes()
        elif parts.path == "/_admin/stats":
            self._answer(200, self.app.snapshot())
        elif parts.path == "/_admin/public-key":
            self._answer(200, {"public_key": self.app.signer.public_key})
        elif parts.path == "/_admin/retries":
            self._answer(200, self.app.snapshot()["webhook_retries"] or {})
        elif parts.path == "/_admin/faults":
            self._answer(200, self.app.faults.plan.as_json())
        elif parts.path == "/_admin/recipients":
            self._recipients(query)
        elif parts.path == "/_admin/message":
            self._message(query)
        elif parts.path.startswith(link_tracking.CLICK_PREFIX):
            self._click(parts.path)
        else:
            self._answer(404, errors_json([FieldError("not found", None)]))

    def _refuse(self, refusal: Refusal) -> None:
        self._answer(refusal.status, errors_json([FieldError(refusal.message, None)]))

    # -- API keys (api_keys.py) ------------------------------------------------
    def _scopes(self) -> None:
        """GET /v3/scopes: the calling key's scopes; any valid key may ask."""
        found = self.app.key_ring.scopes(self.headers.get("Authorization"))
        if isinstance(found, Refusal):
            self._refuse(found)
            return
        self._answer(200, {"scopes": sorted(found)})

    def _add_key(self, data: dict[str, Any]) -> None:
        scopes = data.get("scopes", [])
        if not isinstance(scopes, list):
            raise TypeError("scopes must be a list of strings")
        given = self.app.key_ring.add(str(data.get("key") or ""), scopes)
        self._answer(200, {"key": data["key"], "scopes": sorted(given)})

    # -- mail send --------------------------------------------------------
    def _mail_send(self) -> None:
        self.app.count("requests")
        raw = self._read_body()
        if raw is None:
            self._answer(413, errors_json([FieldError("request entity too large (30 MB)", None)]))
            return
        refused = self.app.key_ring.allow(self.headers.get("Authorization"), MAIL_SEND)
        if refused is not None:
            self._refuse(refused)
            return
        started = time.perf_counter()
        body, errors = check_body(raw, sample=self.app.schema_sample)
        self.app.count("check_ms", (time.perf_counter() - started) * 1000)
        self.app.count("checked_requests")
        if body is None:
            self._answer(400, errors_json(errors))
            return
        decision = self.app.faults.decide(lambda: _emails(body))
        if decision.status is not None:
            self.app.count(f"forced_{decision.status}")
            message = f"forced answer {decision.status} (local fault injection)"
            headers = self._rate_limit_headers() if decision.status == 429 else None
            self._answer(decision.status, errors_json([FieldError(message, None)]), headers)
            return
        self._deliver(body, raw, decision)

    def _rate_limit_headers(self) -> dict[str, str]:
        reset = int(time.time()) + self.app.faults.plan.rate_limit_reset_seconds
        return {
            "X-RateLimit-Limit": "600",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(reset),
        }

    def _deliver(self, body: dict[str, Any], raw: bytes, decision: Decision) -> None:
        fault, plan = decision.fault, self.app.faults.plan
        if fault is not None:
            self.app.count(f"fault_{fault}")
        if fault is Fault.RATE_LIMITED:
            message = errors_json([FieldError("too many requests", None)])
            self._answer(429, message, self._rate_limit_headers())
            return
        if fault in (Fault.SERVER_ERROR, Fault.UNAVAILABLE):
            status = 500 if fault is Fault.SERVER_ERROR else 503
            self._answer(status, errors_json([FieldError("internal error (injected)", None)]))
            return
        if fault is Fault.HANG:
            time.sleep(plan.hang_seconds)
        if fault is Fault.DROP_BEFORE or fault is Fault.HANG:
            self._drop()
            return
        if fault is Fault.SLOW:
            time.sleep(plan.slow_seconds)
        sandbox = ((body.get("mail_settings") or {}).get("sandbox_mode") or {}).get("enable")
        message_id = secrets.token_urlsafe(16)[:22]
        if not sandbox:
            self.app.count("recorded_recipients", self.app.store.record(message_id, body, raw))
        if fault in RECORDS_MAIL and fault is not Fault.SLOW:
            if fault is Fault.ACCEPT_THEN_HANG:
                time.sleep(plan.hang_seconds)
            self._drop()
            return
        self._answer(200 if sandbox else 202, None, {"X-Message-Id": message_id})

    # -- admin ------------------------------------------------------------
    def _recipients(self, query: dict[str, str]) -> None:
        email, message_id = query.get("email"), query.get("message_id")
        if query.get("count"):
            self._answer(200, {"count": self.app.store.count(email, message_id)})
            return
        rows = self.app.store.recipients(
            email, message_id, int(query.get("limit", 1000)), int(query.get("after_id", 0))
        )
        self._answer(200, {"recipients": self.app.quota.mark(rows)})

    # -- click tracking and the scanner (link_tracking.py, scanner.py) -----
    def _url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def _message(self, query: dict[str, str]) -> None:
        found = self.app.store.sent(int(query.get("id", 0)))
        if found is None:
            self._answer(404, errors_json([FieldError("no such recipient", None)]))
            return
        mail = link_tracking.delivered(*found, self._url(), self.app.click_tracking)
        self._answer(200, {"html": mail.html, "text": mail.text, "links": list(mail.links)})

    def _click(self, path: str) -> None:
        events = (self.app.events_url, self.app.signer) if self.app.events_url else None
        agent = self.headers.get("User-Agent")
        done = link_tracking.follow(
            path, self.app.store.sent, self.app.click_tracking, agent, events
        )
        self.app.count("clicks_followed" if done.status == 302 else "clicks_unknown")
        self._answer(done.status, None, {"Location": done.location} if done.location else None)

    def _scan(self, data: dict[str, Any]) -> None:
        result = scanner.scan_request(self.app.store, data, self._url(), self.app.click_tracking)
        self._answer(200, result)

    def _set_faults(self, data: dict[str, Any]) -> None:
        self.app.faults.configure(FaultPlan.from_json(data))
        self._answer(200, self.app.faults.plan.as_json())

    def _reset(self, data: dict[str, Any]) -> None:
        self.app.store.reset()
        self.app.quota.reset()
        self.app.faults.configure(FaultPlan())
        self.app.key_ring.reset()
        if self.app.retrier is not None:
            self.app.retrier.reset()
        with self.app.lock:
            self.app.stats.clear()
        self._answer(200, {"reset": True})

    def _simulate(self, data: dict[str, Any]) -> None:
        url = data.pop("events_url", None) or self.app.events_url
        if not url:
            self._answer(
                409, {"error": "no events URL: start with --events-url or pass events_url"}
            )
            return
        message_id = data.get("message_id")
        # Recipients are numbered from 1 in acceptance order: `after_id` limits the
        # events to what was accepted since an earlier count (one wave's mail).
        after_id = int(data.pop("after_id", 0))
        legacy = LegacyMix.pop_from(data)
        scenario = Scenario.from_json(data)
        app = self.app

        def page(after: int) -> list[dict[str, Any]]:
            found = app.store.recipients(message_id=message_id, limit=1000, after_id=after)
            return app.quota.mark(found)

        posted, statuses = simulate(
            page, lambda batch: app.post_events(url, batch), scenario, after_id, legacy, app.count
        )
        self._answer(200, {"events": posted, "batches": len(statuses), "statuses": statuses})

    def _quota(self, data: dict[str, Any]) -> None:
        recipients = data.get("recipients")
        allowed = None if recipients is None else int(recipients)
        self._answer(200, self.app.quota.limit(allowed, self.app.store.count()))

    def _event(self, data: dict[str, Any]) -> None:
        url = data.pop("events_url", None) or self.app.events_url
        if not url:
            self._answer(409, {"error": "no events URL: start with --events-url or pass one"})
            return
        email = data.get("email")
        found = self.app.store.recipients(email=str(email), limit=1_000_000) if email else []
        event = build_event(data, found[-1] if found else None)
        status = post_signed(url, next(batches([event])), self.app.signer)
        self._answer(200, {"status": status, "event": event})

    def _post_events(self, data: dict[str, Any]) -> None:
        """A given batch (any JSON items, odd ones too), signed and posted with retries."""
        url = data.get("events_url") or self.app.events_url
        if not url:
            self._answer(409, {"error": "no events URL: start with --events-url or pass one"})
            return
        body = json.dumps(data["events"], separators=(",", ":")).encode()
        self._answer(200, {"status": self.app.post_events(str(url), body)})

    def _set_retries(self, data: dict[str, Any]) -> None:
        self._answer(*configure(self.app.retrier, data))

    def _reply(self, data: dict[str, Any]) -> None:
        url = data.get("inbound_url") or self.app.inbound_url
        if not url:
            self._answer(409, {"error": "no inbound URL: start with --inbound-url or pass one"})
            return
        sender = str(data["from"])
        to, subject = data.get("to"), data.get("subject")
        if not to:
            found = self.app.store.recipients(email=sender, limit=1_000_000)
            if not found:
                self._answer(404, {"error": f"{sender} was never sent anything here"})
                return
            to = found[-1]["reply_to"]
            subject = subject or f"Re: {found[-1]['subject']}"
        # Options (docs/SENDGRID.md): raw, charset, attachments, envelope_to, spf, dkim.
        mail = InboundMail.from_json(data, str(to), str(subject or "Re:"))
        form = reply_form(mail, raw=bool(data.get("raw")))
        status = post_inbound(url, form, self.app.inbound_auth)
        self._answer(200, {"status": status, "to": to})


class SendGridHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: App, verbose: bool = False) -> None:
        super().__init__(address, Handler)
        self.app = app
        self.verbose = verbose


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--api-key", required=True, help="a key with full access")
    parser.add_argument(
        "--key",
        action="append",
        default=[],
        metavar="KEY=SCOPE,SCOPE",
        help="another key with only these scopes (KEY= for none); GET /v3/scopes lists them",
    )
    parser.add_argument("--state", type=Path, help="SQLite file that keeps what was accepted")
    parser.add_argument("--key-file", type=Path, help="PEM EC key for event signatures")
    parser.add_argument("--events-url")
    parser.add_argument("--inbound-url")
    parser.add_argument("--inbound-auth", help="user:password for the inbound URL")
    parser.add_argument("--fault-rate", action="append", default=[], metavar="KIND=RATE")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--slow-seconds", type=float, default=2.0)
    parser.add_argument("--hang-seconds", type=float, default=60.0)
    parser.add_argument(
        "--schema-sample",
        type=int,
        default=0,
        help="check the schema on N personalizations per request (0: all); limits cover all",
    )
    add_retry_arguments(parser)
    parser.add_argument(
        "--click-tracking",
        action="store_true",
        help="the account has click tracking on (requests may still say otherwise)",
    )
    parser.add_argument("--verbose", action="store_true")
    return parser.parse_args(argv)


def build_app(args: argparse.Namespace) -> App:
    plan = FaultPlan(
        rates=parse_rate_flags(args.fault_rate),
        seed=args.seed,
        slow_seconds=args.slow_seconds,
        hang_seconds=args.hang_seconds,
    )
    compiled_validator(spec_path())  # compile once, before the first request waits for it
    auth = None
    if args.inbound_auth:
        user, _, password = args.inbound_auth.partition(":")
        auth = (user, password)
    signer = Signer.load_or_create(args.key_file)
    return App(
        api_key=args.api_key,
        keys=keys_for(args.api_key, args.key),
        store=Store(args.state),
        faults=FaultInjector(plan),
        signer=signer,
        retrier=retrier_from_args(args, signer),
        events_url=args.events_url,
        inbound_url=args.inbound_url,
        inbound_auth=auth,
        schema_sample=args.schema_sample,
        click_tracking=args.click_tracking,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        app = build_app(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    server = SendGridHTTPServer((args.host, args.port), app, verbose=args.verbose)
    # A parsed 1,000-personalization body is ~10,000 containers, so every request
    # set off a full collection over the whole start-up heap (modules, compiled
    # schema): ~1.5 ms of a request. Frozen, those are never walked again.
    gc.freeze()
    print(f"local SendGrid listening on http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
