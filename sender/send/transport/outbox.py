"""The outbox: every personalised message written as an RFC 5322 .eml file.

The default transport when no SendGrid key is configured. Tags are filled the
way SendGrid fills them (sender.render.eml, as previews are), so what lands here
is what a supporter would read.
One file per (send_key, recipient) under a deterministic name, written to a
temporary file and renamed: a retried batch overwrites, never duplicates, and
a reader never sees half a message.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from sender.core.clock import Clock, SystemClock
from sender.core.mail import OutgoingBatch, Recipient
from sender.render.eml import build_eml
from sender.send.transport.base import Accepted, RetryLater

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_name(send_key: str, email: str) -> str:
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:20]
    return f"{_UNSAFE.sub('_', send_key)[:80]}--{digest}.eml"


def message_id(send_key: str, email: str) -> str:
    digest = hashlib.sha256(f"{send_key}\0{email.strip().lower()}".encode()).hexdigest()[:32]
    return f"<{digest}@outbox.invalid>"


def custom_arg_header(key: str) -> str:
    """`case_id` -> `X-Campaign-Case-Id`: custom args stay visible in the file."""
    return "X-Campaign-" + "-".join(p.capitalize() for p in re.split(r"[_\-\s]+", key) if p)


def build_message(
    batch: OutgoingBatch, recipient: Recipient, clock: Clock | None = None
) -> EmailMessage:
    ids = (
        ("Message-ID", message_id(batch.send_key, recipient.to.email)),
        ("Date", format_datetime((clock or SystemClock()).now())),
    )
    extra = [(custom_arg_header(k), v) for k, v in batch.custom_args_for(recipient).items()]
    if batch.categories:
        extra.append(("X-Campaign-Categories", ", ".join(batch.categories)))
    return build_eml(batch, recipient, ids, extra)


def write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".eml")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class OutboxTransport:
    name = "outbox"

    def __init__(self, directory: Path, clock: Clock | None = None) -> None:
        self.directory = Path(directory)
        self._clock = clock

    def path_for(self, send_key: str, email: str) -> Path:
        return self.directory / file_name(send_key, email)

    def send(self, batch: OutgoingBatch) -> Accepted:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            for recipient in batch.recipients:
                message = build_message(batch, recipient, self._clock)
                write_atomically(
                    self.path_for(batch.send_key, recipient.to.email), message.as_bytes()
                )
        except OSError as err:
            # A full or unwritable disk may pass; files already written are
            # overwritten by the retry, so the whole batch can simply go again.
            raise RetryLater(
                f"cannot write batch {batch.send_key} to outbox {self.directory}: {err}"
            ) from err
        return Accepted(provider_message_id=f"outbox-{batch.send_key}", status_code=202)
