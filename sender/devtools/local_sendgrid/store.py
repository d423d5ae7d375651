"""What the local SendGrid accepted: one row per request and per recipient.

SQLite, in memory by default or in a file (`--state`, with the raw bodies
beside it in `<state>-bodies`) so that counts survive a restart and can be
inspected after a demo. One connection behind a lock: the server's threads
write whole requests at a time.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import tempfile
import threading
import time
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from sender.devtools.local_sendgrid.rules import drop_reason
from sender.render.merge import personalise

_HREF = re.compile(r"""href\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_ANCHOR = re.compile(r"<a\b[^>]*>", re.IGNORECASE)
_HIDDEN = re.compile(r"""tabindex\s*=\s*["']-1["']|aria-hidden\s*=\s*["']true["']""", re.IGNORECASE)

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    no INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,
    received_at REAL NOT NULL,
    first_id INTEGER NOT NULL,
    size INTEGER NOT NULL,
    body_at INTEGER NOT NULL,
    body_size INTEGER NOT NULL,
    links TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS recipients (
    id INTEGER PRIMARY KEY,
    request INTEGER NOT NULL,
    position INTEGER NOT NULL,
    email TEXT NOT NULL
);
PRAGMA user_version = 2;
"""
# Built at the first question by address, not before: keeping it up to date
# was half of what a request's rows cost, and a wave asks by address seldom
# or never (counts and pages go by id). Built once, it is kept up to date.
EMAIL_INDEX = "CREATE INDEX IF NOT EXISTS recipients_email ON recipients (lower(email))"
# Before user_version 2 the bodies sat zlib-compressed in requests.body and each
# recipient row named its message_id (indexed): see `_upgrade`.
_LAYOUT = 2
_COLUMNS = "r.id, r.position, r.email, q.message_id, q.body_at, q.body_size, q.links"


def visible_links(html: str) -> list[str]:
    """The hrefs a person could click: a hidden anchor (the honeypot, tabindex -1 or
    aria-hidden) is for scanners only, so a simulated reader never follows it."""
    found = set()
    for tag in _ANCHOR.findall(html):
        if _HIDDEN.search(tag):
            continue
        href = _HREF.search(tag)
        if href:
            found.add(href.group(1))
    return sorted(found)


def _html(body: dict[str, Any]) -> str:
    return next((c["value"] for c in body.get("content") or [] if c.get("type") == "text/html"), "")


def bodies_path(state: Path) -> Path:
    """Where a state file keeps the raw request bodies it points into."""
    return state.with_name(state.name + "-bodies")


class Store:
    """Per request the raw body in a side file, per recipient where it sits in it.

    Re-encoding every personalization as it arrives cost more than checking
    the request, and so did compressing the body (tokens do not compress) and
    writing it into SQLite: bodies are appended as received to a file (a
    nameless temporary one without `--state`), the request row keeps their
    offset, and they are decoded when queried. A request's recipients take
    consecutive ids, so its row keeps the first id and the count instead of
    every recipient row carrying an indexed message id.
    """

    def __init__(self, path: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        if path:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._file = open(bodies_path(path), "a+b")  # noqa: SIM115 - kept open with the store
        else:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115 - gone with the process
        self._fd = self._file.fileno()
        self._end = os.fstat(self._fd).st_size
        legacy = self._legacy_rows()
        self._db.executescript(SCHEMA)
        self._body = lru_cache(maxsize=32)(self._load_body)
        # Kept as rows go in: COUNT(*) reads the whole table, and the bench and
        # tests poll the total while a million recipients arrive.
        self._recipients = int(self._db.execute("SELECT count(*) FROM recipients").fetchone()[0])
        self._requests = int(self._db.execute("SELECT count(*) FROM requests").fetchone()[0])
        self._next_id = int(self._db.execute("SELECT max(id) FROM recipients").fetchone()[0] or 0)
        self._next_id += 1
        self._email_index = bool(
            self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'recipients_email'"
            ).fetchone()
        )
        for message_id, received_at, raw, links in legacy:
            self._insert(message_id, received_at, raw, links, _rows(json.loads(raw)))

    def _legacy_rows(self) -> list[tuple[str, float, bytes, str]]:
        """A state file of the earlier layout: its requests, to be written anew."""
        if self._db.execute("PRAGMA user_version").fetchone()[0] >= _LAYOUT:
            return []
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(requests)")}
        if "body" not in columns:
            return []
        found = [
            (row[0], row[1], zlib.decompress(row[2]), row[3])
            for row in self._db.execute(
                "SELECT message_id, received_at, body, links FROM requests ORDER BY rowid"
            )
        ]
        with self._db:
            self._db.execute("DROP TABLE recipients")
            self._db.execute("DROP TABLE requests")
        return found

    def record(self, message_id: str, body: dict[str, Any], raw: bytes) -> int:
        """Keep every recipient of an accepted request; returns how many."""
        links = json.dumps(visible_links(_html(body)))
        return self._insert(message_id, time.time(), raw, links, _rows(body))

    def _insert(
        self, message_id: str, received_at: float, raw: bytes, links: str, rows: list[_Row]
    ) -> int:
        with self._lock:
            body_at, first_id, number = self._end, self._next_id, self._requests + 1
            _write_at(self._fd, raw, body_at)
            with self._db:
                self._db.execute(
                    "INSERT INTO requests VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        number,
                        message_id,
                        received_at,
                        first_id,
                        len(rows),
                        body_at,
                        len(raw),
                        links,
                    ),
                )
                self._db.executemany(
                    "INSERT INTO recipients VALUES (?, ?, ?, ?)",
                    [
                        (first_id + i, number, position, email)
                        for i, (position, email) in enumerate(rows)
                    ],
                )
            self._end += len(raw)
            self._next_id += len(rows)
            self._recipients += len(rows)
            self._requests = number
        return len(rows)

    def _load_body(self, at: int, size: int) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(os.pread(self._fd, size, at))
        return body

    def _where(self, email: str | None, message_id: str | None) -> tuple[str, list[Any]]:
        """SQL conditions on recipients `r`; call with the lock held."""
        clauses: list[str] = []
        params: list[Any] = []
        if email:
            if not self._email_index:
                self._db.execute(EMAIL_INDEX)
                self._email_index = True
            clauses.append("lower(r.email) = lower(?)")
            params.append(email)
        if message_id:
            found = self._db.execute(
                "SELECT first_id, size FROM requests WHERE message_id = ?", (message_id,)
            ).fetchone()
            first, size = (found[0], found[1]) if found else (0, 0)
            clauses.append("r.id BETWEEN ? AND ?")
            params += [first, first + size - 1]
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def count(self, email: str | None = None, message_id: str | None = None) -> int:
        with self._lock:
            if not email and not message_id:
                return self._recipients
            where, params = self._where(email, message_id)
            row = self._db.execute(f"SELECT count(*) FROM recipients r{where}", params).fetchone()  # noqa: S608 - clauses are fixed strings
        return int(row[0])

    def recipients(
        self,
        email: str | None = None,
        message_id: str | None = None,
        limit: int = 1000,
        after_id: int = 0,
    ) -> list[dict[str, Any]]:
        """Recipients in acceptance order, with their request's shared parts."""
        with self._lock:
            where, params = self._where(email, message_id)
            where = (where + " AND" if where else " WHERE") + " r.id > ?"
            sql = (
                f"SELECT {_COLUMNS} FROM recipients r JOIN requests q ON q.no = r.request"  # noqa: S608 - clauses are fixed strings
                f"{where} ORDER BY r.id LIMIT ?"
            )
            rows = self._db.execute(sql, [*params, after_id, limit]).fetchall()
            links = {row["message_id"]: json.loads(row["links"]) for row in rows}
            bodies = {
                row["message_id"]: self._body(row["body_at"], row["body_size"]) for row in rows
            }
        return [
            self._as_json(row, bodies[row["message_id"]], links[row["message_id"]]) for row in rows
        ]

    def sent(self, recipient_id: int) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """One recipient (as `recipients` gives it) and the request body it came in."""
        with self._lock:
            sql = (
                f"SELECT {_COLUMNS} FROM recipients r JOIN requests q ON q.no = r.request"  # noqa: S608 - fixed columns
                " WHERE r.id = ?"
            )
            row = self._db.execute(sql, (recipient_id,)).fetchone()
            if row is None:
                return None
            body = self._body(row["body_at"], row["body_size"])
        return self._as_json(row, body, json.loads(row["links"])), body

    @staticmethod
    def _as_json(row: sqlite3.Row, body: dict[str, Any], links: list[str]) -> dict[str, Any]:
        item = body["personalizations"][row["position"]]
        subs = item.get("substitutions") or {}
        address = _address_of(item, row["email"])
        return {
            "id": row["id"],
            "message_id": row["message_id"],
            "sg_message_id": f"{row['message_id']}.filter0001.{row['position']}.0",
            "email": row["email"],
            "subject": personalise(item.get("subject") or body.get("subject") or "", subs),
            "custom_args": _merged(body.get("custom_args"), item.get("custom_args")),
            "substitutions": subs,
            "headers": _merged(body.get("headers"), item.get("headers")),
            "from": body["from"]["email"],
            # SendGrid applies substitutions to reply_to as to subject and content.
            "reply_to": personalise((body.get("reply_to") or {}).get("email") or "", subs) or None,
            "categories": body.get("categories") or [],
            "links": [personalise(link, subs) for link in links],
            "name": address.get("name"),
            "dropped": drop_reason(address),
        }

    def request_count(self) -> int:
        with self._lock:
            return self._requests

    def reset(self) -> None:
        with self._lock:
            with self._db:
                self._db.execute("DELETE FROM recipients")
                self._db.execute("DELETE FROM requests")
            os.ftruncate(self._fd, 0)
            self._body.cache_clear()
            self._recipients = self._requests = self._end = 0
            self._next_id = 1


_Row = tuple[int, str]


def _merged(shared: Any, own: Any) -> dict[str, Any]:
    """The request's map under the personalization's, as SendGrid applies them.

    The spec also lets message-level custom_args be a string; that merges nothing.
    """
    return {**(shared if isinstance(shared, dict) else {}), **(own or {})}


def _address_of(item: dict[str, Any], email: str) -> dict[str, Any]:
    """This personalization's address for `email`, with its name.

    Looked up when asked rather than stored: the body keeps the name, and the
    drop reason follows from it (`rules.drop_reason`).
    """
    for kind in ("to", "cc", "bcc"):
        for address in item.get(kind) or []:
            if address.get("email") == email:
                return dict(address)
    return {}


def _rows(body: dict[str, Any]) -> list[_Row]:
    """(personalization index, address) of every recipient, in request order."""
    return [
        (index, address["email"])
        for index, item in enumerate(body["personalizations"])
        for kind in ("to", "cc", "bcc")
        for address in item.get(kind) or []
    ]


def _write_at(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written
