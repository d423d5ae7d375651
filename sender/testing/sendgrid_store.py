"""What the local SendGrid accepted: one row per request and per recipient.

SQLite, in memory by default or in a file (`--state`) so that counts survive
a restart and can be inspected after a demo. One connection behind a lock:
the server's threads write whole requests at a time.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from sender.merge import personalise

_HREF = re.compile(r"""href\s*=\s*["']([^"']+)["']""", re.IGNORECASE)

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    message_id TEXT PRIMARY KEY,
    received_at REAL NOT NULL,
    body BLOB NOT NULL,
    links TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS recipients (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    email TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS recipients_email ON recipients (lower(email));
CREATE INDEX IF NOT EXISTS recipients_message ON recipients (message_id);
"""


def _html(body: dict[str, Any]) -> str:
    return next((c["value"] for c in body.get("content") or [] if c.get("type") == "text/html"), "")


@lru_cache(maxsize=32)
def _parsed(packed: bytes) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(zlib.decompress(packed))
    return body


class Store:
    """Per request the raw body (zlib), per recipient only where it sits in it.

    Re-encoding every personalization as it arrives cost more than checking
    the request; the body is kept as received and decoded when queried.
    """

    def __init__(self, path: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        if path:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        # Kept as rows go in: COUNT(*) reads the whole table, and the bench and
        # tests poll the total while a million recipients arrive.
        self._recipients = int(self._db.execute("SELECT count(*) FROM recipients").fetchone()[0])
        self._requests = int(self._db.execute("SELECT count(*) FROM requests").fetchone()[0])

    def record(self, message_id: str, body: dict[str, Any], raw: bytes) -> int:
        """Keep every recipient of an accepted request; returns how many."""
        rows = [
            (message_id, index, address["email"])
            for index, item in enumerate(body["personalizations"])
            for kind in ("to", "cc", "bcc")
            for address in item.get(kind) or []
        ]
        links = json.dumps(sorted(set(_HREF.findall(_html(body)))))
        packed = zlib.compress(raw, 1)
        with self._lock:
            with self._db:
                self._db.execute(
                    "INSERT INTO requests VALUES (?, ?, ?, ?)",
                    (message_id, time.time(), packed, links),
                )
                self._db.executemany(
                    "INSERT INTO recipients (message_id, position, email) VALUES (?, ?, ?)", rows
                )
            self._recipients += len(rows)
            self._requests += 1
        return len(rows)

    def _where(self, email: str | None, message_id: str | None) -> tuple[str, list[str]]:
        clauses, params = [], []
        if email:
            clauses.append("lower(r.email) = lower(?)")
            params.append(email)
        if message_id:
            clauses.append("r.message_id = ?")
            params.append(message_id)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def count(self, email: str | None = None, message_id: str | None = None) -> int:
        where, params = self._where(email, message_id)
        with self._lock:
            if not params:
                return self._recipients
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
        where, params = self._where(email, message_id)
        where = (where + " AND" if where else " WHERE") + " r.id > ?"
        sql = f"SELECT r.* FROM recipients r{where} ORDER BY r.id LIMIT ?"  # noqa: S608
        with self._lock:
            rows = self._db.execute(sql, [*params, after_id, limit]).fetchall()
            ids = sorted({row["message_id"] for row in rows})
            requests = {
                found["message_id"]: (_parsed(found["body"]), json.loads(found["links"]))
                for found in self._db.execute(
                    f"SELECT message_id, body, links FROM requests WHERE message_id IN"  # noqa: S608
                    f" ({','.join('?' * len(ids))})",
                    ids,
                )
            }
        return [self._as_json(row, *requests[row["message_id"]]) for row in rows]

    @staticmethod
    def _as_json(row: sqlite3.Row, body: dict[str, Any], links: list[str]) -> dict[str, Any]:
        item = body["personalizations"][row["position"]]
        subs = item.get("substitutions") or {}
        return {
            "id": row["id"],
            "message_id": row["message_id"],
            "sg_message_id": f"{row['message_id']}.filter0001.{row['position']}.0",
            "email": row["email"],
            "subject": personalise(item.get("subject") or body.get("subject") or "", subs),
            "custom_args": {**(body.get("custom_args") or {}), **(item.get("custom_args") or {})},
            "substitutions": subs,
            "headers": item.get("headers") or {},
            "from": body["from"]["email"],
            "reply_to": (body.get("reply_to") or {}).get("email"),
            "categories": body.get("categories") or [],
            "links": [personalise(link, subs) for link in links],
        }

    def request_count(self) -> int:
        with self._lock:
            return self._requests

    def reset(self) -> None:
        with self._lock:
            with self._db:
                self._db.execute("DELETE FROM recipients")
                self._db.execute("DELETE FROM requests")
            self._recipients = self._requests = 0
