"""How fast the local SendGrid checks and takes 1,000-personalization requests.

    .venv/bin/python -m bench.sendgrid_server [--requests 200] [--clients 4]

1. Per-request check cost: the compiled fastjsonschema validator plus the limit
   checks (what the server runs) against jsonschema's Draft 2020-12 validator
   on the same schema (the naive way), same body, same run.
2. Throughput: the server as a real subprocess, `--clients` threads posting
   1,000-personalization bodies (serialised with orjson, as the transport
   does); projected time for 1,000 such requests, and the server process's
   CPU per request (/proc), which the machine's load inflates far less than
   wall time.

`--serve-only` skips part 1 and serves only with `--sample`: the A/B figure.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import requests
from jsonschema import Draft202012Validator

from sender.devtools.local_sendgrid.process import local_sendgrid
from sender.devtools.local_sendgrid.rules import check_body, request_schema, spec_path

KEY = "SG.bench"


def body(offset: int, n: int = 1000) -> dict[str, Any]:
    """Shaped like the transport's: per recipient 9 substitutions, 2 custom args and
    List-Unsubscribe; the batch's custom args and List-Unsubscribe-Post once."""
    return {"personalizations": [_personalization(offset, i) for i in range(n)], **_SHARED}


_SHARED: dict[str, Any] = {
    "from": {"email": "campaigns@example.org", "name": "Write for Rights"},
    "reply_to": {"email": "reply+tok@parse.example.org"},
    "subject": "-first_name-, one letter can change a life",
    "content": [
        {"type": "text/plain", "value": "Dear -first_name_text-, " + "words " * 500},
        {
            "type": "text/html",
            "value": '<p>Dear -first_name-</p><a href="-action_url-">act</a>' * 40,
        },
    ],
    "categories": ["w4r-2020"],
    "custom_args": {"case_id": "3", "wave_id": "1", "send_key": "wave1-batch7"},
    "headers": {"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
}


def _personalization(offset: int, i: int) -> dict[str, Any]:
    # Signed tokens look random: they do not compress, which the store's cost follows.
    digest = hashlib.blake2b(b"%d-%d" % (offset, i), digest_size=40).digest()
    token = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    unsubscribe = f"https://act.example.org/u/u{token}"
    action = f"https://act.example.org/a/a{token}"
    return {
        "to": [{"email": f"s{offset}-{i}@example.net", "name": f"Supporter {i} Example"}],
        "subject": "-first_name-, one letter can change a life",
        "substitutions": {
            "-first_name-": f"Name{i}",
            "-full_name-": f"Name{i} Example",
            "-unsubscribe_url-": unsubscribe,
            "-action_url-": action,
            "-reference-": f"R{offset}X{i}",
            "-first_name_text-": f"Name{i}",
            "-full_name_text-": f"Name{i} Example",
            "-unsubscribe_url_text-": unsubscribe,
            "-action_url_text-": action,
        },
        "custom_args": {
            "supporter_id": str(offset * 1000 + i),
            "message_id": str(offset * 1000 + i + 7),
        },
        "headers": {
            "List-Unsubscribe": f"<{unsubscribe}>, <mailto:unsubscribe+u{token}@example.org>",
        },
    }


def per_request_check(rounds: int, sample: int) -> tuple[float, float, float]:
    raw = json.dumps(body(0)).encode()
    check_body(raw)  # compile outside the timing
    timings = []
    for size in (0, sample):
        started = time.perf_counter()
        for _ in range(rounds):
            _, errors = check_body(raw, sample=size)
            assert not errors
        timings.append((time.perf_counter() - started) / rounds)
    naive = Draft202012Validator(request_schema(spec_path()))
    started = time.perf_counter()
    for _ in range(rounds):
        naive.validate(json.loads(raw))
    return timings[0], timings[1], (time.perf_counter() - started) / rounds


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Served:
    elapsed: float
    recorded: int
    check_ms: float
    cpu_seconds: float


def throughput(total: int, clients: int, sample: int) -> Served:
    payloads = [orjson.dumps(body(i)) for i in range(total)]
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    flags = ["--schema-sample", str(sample)]
    with local_sendgrid(api_key=KEY, extra_args=flags) as sg:
        url = f"{sg.base_url}/v3/mail/send"

        def send(data: bytes) -> int:
            return requests.post(url, data=data, headers=headers, timeout=120).status_code

        cpu_before = process_cpu(sg.process.pid)
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            statuses = list(pool.map(send, payloads))
        elapsed = time.perf_counter() - started
        cpu = process_cpu(sg.process.pid) - cpu_before
        assert statuses.count(202) == total, statuses
        recorded = sg.admin.count()
        check_ms = float(sg.admin.stats()["check_ms_avg"])
    return Served(elapsed, recorded, check_ms, cpu)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--sample", type=int, default=16, help="--schema-sample to compare")
    parser.add_argument("--serve-only", action="store_true", help="serve with --sample only")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, python {platform.python_version()}")
    size = len(orjson.dumps(body(0)))
    print(f"body: 1,000 personalizations, {size / 1024:.0f} KB")
    if not args.serve_only:
        ours, sampled, naive = per_request_check(args.rounds, args.sample)
        print(f"check per request (fastjsonschema + limits): {ours * 1000:.1f} ms")
        print(f"check per request (jsonschema Draft 2020-12, naive): {naive * 1000:.1f} ms")
        print(f"check per request (schema on {args.sample} + limits on all): "
              f"{sampled * 1000:.1f} ms")  # fmt: skip
        print(f"ratio naive/full: {naive / ours:.1f}x, naive/sampled: {naive / sampled:.1f}x")
    for sample in (args.sample,) if args.serve_only else (0, args.sample):
        print(f"-- serving with --schema-sample {sample}; load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip
        served = throughput(args.requests, args.clients, sample)
        rate = args.requests / served.elapsed
        print(f"served {args.requests} requests ({served.recorded:,} recipients) in "
              f"{served.elapsed:.1f} s with {args.clients} clients: {rate:.1f} req/s")  # fmt: skip
        print(f"server CPU: {served.cpu_seconds:.2f} s, "
              f"{served.cpu_seconds / args.requests * 1000:.1f} ms per request")  # fmt: skip
        print(f"server-side check while serving: {served.check_ms:.1f} ms per request")
        print(f"projected for 1,000 requests of 1,000 personalizations: {1000 / rate:.0f} s")


if __name__ == "__main__":
    main()
