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
from pathlib import Path
from typing import Any

from sender.transport.outbox import fill_tags

_HREF = re.compile(r"""href\s*=\s*["']([^"']+)["']""", re.IGNORECASE)

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    message_id TEXT PRIMARY KEY,
    received_at REAL NOT NULL,
    sender TEXT NOT NULL,
    reply_to TEXT,
    categories TEXT NOT NULL,
    recipients INTEGER NOT NULL,
    links TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS recipients (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL,
    sg_message_id TEXT NOT NULL,
    email TEXT NOT NULL,
    subject TEXT,
    custom_args TEXT NOT NULL,
    substitutions TEXT NOT NULL,
    headers TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS recipients_email ON recipients (email);
CREATE INDEX IF NOT EXISTS recipients_message ON recipients (message_id);
"""


def _html(body: dict[str, Any]) -> str:
    return next((c["value"] for c in body.get("content") or [] if c.get("type") == "text/html"), "")


class Store:
    def __init__(self, path: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        if path:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def record(self, message_id: str, body: dict[str, Any]) -> int:
        """Keep every recipient of an accepted request; returns how many."""
        rows = []
        top_subject = body.get("subject")
        for index, item in enumerate(body["personalizations"]):
            subs = item.get("substitutions") or {}
            subject = fill_tags(item.get("subject") or top_subject or "", subs)
            args = {**(body.get("custom_args") or {}), **(item.get("custom_args") or {})}
            for address in [
                *(item.get("to") or []),
                *(item.get("cc") or []),
                *(item.get("bcc") or []),
            ]:
                rows.append(
                    (
                        message_id,
                        f"{message_id}.filter0001.{index}.0",
                        address["email"],
                        subject,
                        json.dumps(args),
                        json.dumps(subs),
                        json.dumps(item.get("headers") or {}),
                    )
                )
        links = sorted(set(_HREF.findall(_html(body))))
        reply_to = (body.get("reply_to") or {}).get("email")
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO requests VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    message_id,
                    time.time(),
                    body["from"]["email"],
                    reply_to,
                    json.dumps(body.get("categories") or []),
                    len(rows),
                    json.dumps(links),
                ),
            )
            self._db.executemany(
                "INSERT INTO recipients (message_id, sg_message_id, email, subject, custom_args,"
                " substitutions, headers) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
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
        sql = (
            "SELECT r.*, q.sender, q.reply_to, q.categories, q.links FROM recipients r "  # noqa: S608
            f"JOIN requests q ON q.message_id = r.message_id{where} ORDER BY r.id LIMIT ?"
        )
        with self._lock:
            rows = self._db.execute(sql, [*params, after_id, limit]).fetchall()
        return [self._as_json(row) for row in rows]

    @staticmethod
    def _as_json(row: sqlite3.Row) -> dict[str, Any]:
        subs = json.loads(row["substitutions"])
        return {
            "id": row["id"],
            "message_id": row["message_id"],
            "sg_message_id": row["sg_message_id"],
            "email": row["email"],
            "subject": row["subject"],
            "custom_args": json.loads(row["custom_args"]),
            "substitutions": subs,
            "headers": json.loads(row["headers"]),
            "from": row["sender"],
            "reply_to": row["reply_to"],
            "categories": json.loads(row["categories"]),
            "links": [fill_tags(link, subs) for link in json.loads(row["links"])],
        }

    def request_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM requests").fetchone()[0])

    def reset(self) -> None:
        with self._lock, self._db:
            self._db.execute("DELETE FROM recipients")
            self._db.execute("DELETE FROM requests")
