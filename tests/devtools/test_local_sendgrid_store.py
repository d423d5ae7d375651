"""The local SendGrid's store and body reading: bodies beside the rows, ids, old state files."""

from __future__ import annotations

import json
import sqlite3
import zlib
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from sendgrid_fixtures import mail_json

from sender.devtools.local_sendgrid.rules import parse_json
from sender.devtools.local_sendgrid.store import Store, bodies_path, visible_links


def _record(store: Store, message_id: str, body: dict[str, Any]) -> int:
    return store.record(message_id, body, json.dumps(body).encode())


def _indexes(state: Path) -> set[str]:
    with closing(sqlite3.connect(state)) as db:
        found = db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        )
        return {row[0] for row in found}


def _with_cc(n: int) -> dict[str, Any]:
    body = mail_json(n)
    body["personalizations"][0]["cc"] = [{"email": "Copy@Example.net"}]
    return body


def test_recipients_by_message_email_and_page(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.sqlite")
    _record(store, "first", _with_cc(2))
    _record(store, "second", mail_json(3))
    rows = store.recipients(message_id="first")
    assert [(r["id"], r["email"], r["subject"]) for r in rows] == [
        (1, "p0@example.net", "Hello P0"),
        (2, "Copy@Example.net", "Hello P0"),  # cc of personalization 0
        (3, "p1@example.net", "Hello P1"),
    ]
    assert rows[1]["sg_message_id"] == "first.filter0001.0.0"
    second = store.recipients(message_id="second", after_id=4, limit=10)
    assert [(r["id"], r["email"], r["message_id"]) for r in second] == [
        (5, "p1@example.net", "second"),
        (6, "p2@example.net", "second"),
    ]
    assert _indexes(tmp_path / "state.sqlite") == set()  # built at the first question by address
    assert store.count(email="p1@EXAMPLE.net") == 2
    assert _indexes(tmp_path / "state.sqlite") == {"recipients_email"}
    assert store.count(email="p1@example.net", message_id="second") == 1
    assert store.count(message_id="nobody") == 0
    assert store.recipients(message_id="nobody") == []
    assert [r["id"] for r in store.recipients(email="copy@example.net")] == [2]
    assert [r["id"] for r in store.recipients(limit=2, after_id=2)] == [3, 4]


def test_reset_starts_ids_and_bodies_again(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.sqlite")
    _record(store, "before", mail_json(4))
    store.reset()
    assert bodies_path(tmp_path / "state.sqlite").stat().st_size == 0
    _record(store, "after", mail_json(1))
    [row] = store.recipients()
    assert (row["id"], row["message_id"], row["subject"]) == (1, "after", "Hello P0")
    reopened = Store(tmp_path / "state.sqlite")
    assert reopened.recipients()[0]["substitutions"] == {"-name-": "P0"}
    _record(reopened, "later", mail_json(2))
    assert [r["id"] for r in reopened.recipients(message_id="later")] == [2, 3]


_EARLIER_LAYOUT = """
CREATE TABLE requests (message_id TEXT PRIMARY KEY, received_at REAL NOT NULL,
    body BLOB NOT NULL, links TEXT NOT NULL);
CREATE TABLE recipients (id INTEGER PRIMARY KEY, message_id TEXT NOT NULL,
    position INTEGER NOT NULL, email TEXT NOT NULL);
CREATE INDEX recipients_email ON recipients (lower(email));
CREATE INDEX recipients_message ON recipients (message_id);
"""


def test_state_file_of_the_earlier_layout_is_read_and_rewritten(tmp_path: Path) -> None:
    state = tmp_path / "old.sqlite"
    db = sqlite3.connect(state)
    db.executescript(_EARLIER_LAYOUT)
    for message_id, body in (("a", _with_cc(1)), ("b", mail_json(2))):
        packed = zlib.compress(json.dumps(body).encode(), 1)
        links = json.dumps(["https://act.example.org/x"])
        db.execute("INSERT INTO requests VALUES (?, 1.0, ?, ?)", (message_id, packed, links))
        emails = [
            (i, a["email"])
            for i, p in enumerate(body["personalizations"])
            for a in p["to"] + p.get("cc", [])
        ]
        db.executemany(
            "INSERT INTO recipients (message_id, position, email) VALUES (?, ?, ?)",
            [(message_id, i, email) for i, email in emails],
        )
    db.commit()
    db.close()
    store = Store(state)
    assert (store.count(), store.request_count()) == (4, 2)
    rows = store.recipients()
    assert [(r["id"], r["message_id"], r["email"]) for r in rows] == [
        (1, "a", "p0@example.net"),
        (2, "a", "Copy@Example.net"),
        (3, "b", "p0@example.net"),
        (4, "b", "p1@example.net"),
    ]
    assert rows[3]["links"] == ["https://act.example.org/x"]
    assert Store(state).count(message_id="b") == 2  # upgraded once, read as is after


@pytest.mark.parametrize(
    "number",
    ["-9223372036854775809", "18446744073709551616", "9999999999999999999", "-0", "1e400", "NaN"],
)
def test_bodies_are_read_as_the_stdlib_reads_them(number: str) -> None:
    # orjson reads the first two as floats and refuses the last two.
    raw = f'{{"send_at": {number}, "note": "\\ud800"}}'.encode()
    assert repr(parse_json(raw)) == repr(json.loads(raw))
    assert repr(parse_json(raw.replace(b', "note": "\\ud800"', b""))) == repr(
        json.loads(raw.replace(b', "note": "\\ud800"', b""))
    )


def test_message_level_maps_sit_under_the_personalization_ones(tmp_path: Path) -> None:
    shared = {"List-Unsubscribe-Post": "List-Unsubscribe=One-Click", "X-Campaign": "shared"}
    body = mail_json(2, custom_args={"wave_id": "w1", "message_id": "shared"}, headers=shared)
    body["personalizations"][1]["headers"] = {"X-Campaign": "own", "List-Unsubscribe": "<u1>"}
    store = Store(tmp_path / "state.sqlite")
    _record(store, "m", body)
    first, second = store.recipients()
    assert first["custom_args"] == {"wave_id": "w1", "message_id": "m0"}
    assert first["headers"] == shared
    assert second["headers"] == {
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "X-Campaign": "own",
        "List-Unsubscribe": "<u1>",
    }
    _record(store, "text", mail_json(1, custom_args="a string, as the spec allows"))
    assert store.recipients(message_id="text")[0]["custom_args"] == {"message_id": "m0"}


def test_a_simulated_reader_only_follows_links_a_person_can_see() -> None:
    html = (
        '<p><a href="-action_url-" style="color:#000">Write now</a>'
        '<a href="-unsubscribe_url-">Unsubscribe</a></p>'
        '<div aria-hidden="true" style="display:none">'
        '<a href="-action_url-/x" tabindex="-1" aria-hidden="true">&#8203;</a></div>'
        '<A HREF="-other-" TabIndex="-1">skip me</A>'
    )
    assert visible_links(html) == ["-action_url-", "-unsubscribe_url-"]
