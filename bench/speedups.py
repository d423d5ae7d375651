"""Each fast path in sender.core.speedups timed alone against its plain twin.

    .venv/bin/python -m bench.speedups [--calls N]

Prints µs per call for the fast and the plain version and their ratio (best
of several repeats, as timeit advises: contention only adds time). A trick
that saves less than ~0.4 µs per email is not worth keeping (1 % of a
million-email wave); docs/PERFORMANCE.md. The collector controls and the
import's switch interval are process settings, measured by bench.render and
bench.import_supporters.
"""

from __future__ import annotations

import argparse
import os
import platform
import timeit
from collections.abc import Callable

from itsdangerous import URLSafeSerializer

from sender.core.speedups import (
    FastReplySignature,
    FastTokenPair,
    fast_recipient,
    plain_recipient,
    plain_reference_code,
    plain_reply_signature,
    plain_token_pair,
    reference_code,
)

REPEATS = 7


def per_call(call: Callable[[], object], calls: int) -> float:
    return min(timeit.repeat(call, number=calls, repeat=REPEATS)) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    calls = parser.parse_args().calls
    action = URLSafeSerializer("bench-secret", salt="action")
    unsubscribe = URLSafeSerializer("bench-secret", salt="unsubscribe")
    pair = FastTokenPair(action, unsubscribe)
    reply = URLSafeSerializer("bench-secret", salt="reply")
    reply_signature = FastReplySignature(reply)
    reply_payload = "5.3.en.10012345"
    subs, args, headers = (
        {"-first_name-": "Zoë"},
        {"supporter_id": "1"},
        {"List-Unsubscribe": "<x>"},
    )
    ids = (12_345, 10_012_345, 3, 5)  # a message id past ten million, as in a big wave
    tricks = {
        "token pair (2 tokens per email)": (
            lambda: pair(*ids),
            lambda: plain_token_pair(action, unsubscribe, *ids),
            lambda: (action.dumps(list(ids)), unsubscribe.dumps(list(ids))),
        ),
        "reply token signature (1 per email)": (
            lambda: reply_signature(reply_payload),
            lambda: plain_reply_signature(reply, reply_payload),
            None,
        ),
        "reference code": (
            lambda: reference_code(ids[1], ids[0]),
            lambda: plain_reference_code(ids[1], ids[0]),
            None,
        ),
        "recipient value": (
            lambda: fast_recipient("s1@example.org", "Zoë O'Hara", subs, args, headers),
            lambda: plain_recipient("s1@example.org", "Zoë O'Hara", subs, args, headers),
            None,
        ),
    }
    load_before = os.getloadavg()[0]
    for name, (fast, plain, dumps) in tricks.items():
        fast_us, plain_us = per_call(fast, calls), per_call(plain, calls)
        line = (
            f"{name}: fast {fast_us:.2f} µs, plain {plain_us:.2f} µs, "
            f"ratio {plain_us / fast_us:.1f}x, saves {plain_us - fast_us:.2f} µs per email"
        )
        if dumps is not None:
            line += f" (itsdangerous dumps: {per_call(dumps, calls // 10):.2f} µs)"
        print(line)
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, python "
        f"{platform.python_version()}, one process; load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    )


if __name__ == "__main__":
    main()
