"""How fast the local SendGrid checks and takes 1,000-personalization requests.

    .venv/bin/python -m bench.sendgrid_server [--requests 200] [--clients 4]

1. Per-request check cost: the compiled fastjsonschema validator plus the limit
   checks (what the server runs) against jsonschema's Draft 2020-12 validator
   on the same schema (the naive way), same body, same run.
2. Throughput: the server as a real subprocess, `--clients` threads posting
   1,000-personalization bodies; projected time for 1,000 such requests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from jsonschema import Draft202012Validator

from sender.testing.sendgrid_process import local_sendgrid
from sender.testing.sendgrid_rules import check_body, request_schema, spec_path

KEY = "SG.bench"


def body(offset: int, n: int = 1000) -> dict[str, Any]:
    return {
        "personalizations": [
            {
                "to": [{"email": f"s{offset}-{i}@example.net", "name": f"Supporter {i}"}],
                "subject": "-first_name-, one letter can change a life",
                "substitutions": {
                    "-first_name-": f"Name{i}",
                    "-action_url-": f"https://act.example.org/a/{offset}-{i}-abcdefghijklmnop",
                },
                "custom_args": {"message_id": f"{offset}-{i}", "wave_id": "w1", "case_id": "c3"},
                "headers": {
                    "List-Unsubscribe": f"<https://act.example.org/u/{offset}-{i}-tok>",
                    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                },
            }
            for i in range(n)
        ],
        "from": {"email": "campaigns@example.org", "name": "Write for Rights"},
        "reply_to": {"email": "reply+tok@parse.example.org"},
        "content": [
            {"type": "text/plain", "value": "Dear -first_name-, " + "words " * 500},
            {
                "type": "text/html",
                "value": '<p>Dear -first_name-</p><a href="-action_url-">act</a>' * 40,
            },
        ],
        "categories": ["w4r-2020"],
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


def throughput(total: int, clients: int, sample: int) -> tuple[float, int, float]:
    payloads = [json.dumps(body(i)).encode() for i in range(total)]
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    flags = ["--schema-sample", str(sample)]
    with local_sendgrid(api_key=KEY, extra_args=flags) as sg:
        url = f"{sg.base_url}/v3/mail/send"

        def send(data: bytes) -> int:
            return requests.post(url, data=data, headers=headers, timeout=120).status_code

        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            statuses = list(pool.map(send, payloads))
        elapsed = time.perf_counter() - started
        assert statuses.count(202) == total, statuses
        recorded = sg.admin.count()
        check_ms = float(sg.admin.stats()["check_ms_avg"])
    return elapsed, recorded, check_ms


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--sample", type=int, default=16, help="--schema-sample to compare")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, python {platform.python_version()}")
    ours, sampled, naive = per_request_check(args.rounds, args.sample)
    size = len(json.dumps(body(0)))
    print(f"body: 1,000 personalizations, {size / 1024:.0f} KB")
    print(f"check per request (fastjsonschema + limits): {ours * 1000:.1f} ms")
    print(f"check per request (jsonschema Draft 2020-12, naive): {naive * 1000:.1f} ms")
    print(f"check per request (schema on {args.sample} + limits on all): {sampled * 1000:.1f} ms")
    print(f"ratio naive/full: {naive / ours:.1f}x, naive/sampled: {naive / sampled:.1f}x")
    for sample in (0, args.sample):
        print(f"-- serving with --schema-sample {sample}; load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip
        elapsed, recorded, check_ms = throughput(args.requests, args.clients, sample)
        rate = args.requests / elapsed
        print(f"served {args.requests} requests ({recorded:,} recipients) in {elapsed:.1f} s "
              f"with {args.clients} clients: {rate:.1f} req/s")  # fmt: skip
        print(f"server-side check while serving: {check_ms:.1f} ms per request")
        print(f"projected for 1,000 requests of 1,000 personalizations: {1000 / rate:.0f} s")


if __name__ == "__main__":
    main()
