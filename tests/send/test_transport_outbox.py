"""OutboxTransport: parseable .eml files, tags filled like SendGrid, idempotent."""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from sendgrid_fixtures import batch, recipient

from sender.core.clock import MovableClock
from sender.send.transport.base import Accepted, RetryLater
from sender.send.transport.outbox import OutboxTransport


def read(path: Path) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert isinstance(message, EmailMessage)
    return message


def test_a_value_that_looks_like_a_tag_is_not_filled_again(tmp_path: Path) -> None:
    outgoing = batch(recipients=(recipient(0, **{"-first_name-": "-action_url-"}),))
    outbox = OutboxTransport(tmp_path)
    outbox.send(outgoing)
    message = read(outbox.path_for(outgoing.send_key, "supporter0@example.net"))
    assert message["Subject"] == "-action_url-, a letter can free someone"


def test_each_recipient_gets_a_parseable_eml_with_tags_filled(tmp_path: Path) -> None:
    clock = MovableClock(datetime(2020, 12, 10, 9, 0, tzinfo=UTC))
    outbox = OutboxTransport(tmp_path / "outbox", clock=clock)
    result = outbox.send(batch(2))
    assert isinstance(result, Accepted)
    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 2
    message = read(outbox.path_for("wave1-batch1", "supporter1@example.net"))
    assert message["To"] == "Supporter 1 <supporter1@example.net>"
    assert message["From"] == "Write for Rights <campaigns@example.org>"
    assert message["Reply-To"] == "reply+tok123@parse.example.org"
    assert message["Subject"] == "Name1, a letter can free someone"
    assert message["Message-ID"].startswith("<") and message["Date"]
    assert message["Date"] == "Thu, 10 Dec 2020 09:00:00 +0000"
    assert message["List-Unsubscribe"] == "<https://act.example.org/u/1>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["X-Campaign-Message-Id"] == "m1"
    assert message["X-Campaign-Wave-Id"] == "w1"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    assert text.get_content() == "Dear Name1,\nWrite now: https://act.example.org/a/1\n"
    assert '<a href="https://act.example.org/a/1">' in html.get_content()
    assert "-first_name-" not in html.get_content()


def test_html_escaped_values_stay_exactly_as_given(tmp_path: Path) -> None:
    escaped = "O&#39;Brien &amp; &lt;friends&gt;"
    outgoing = batch(recipients=(recipient(0, **{"-first_name-": escaped}),))
    outbox = OutboxTransport(tmp_path)
    outbox.send(outgoing)
    message = read(outbox.path_for(outgoing.send_key, "supporter0@example.net"))
    html = message.get_body(("html",))
    assert html is not None
    assert f"<p>Dear {escaped},</p>" in html.get_content()


def test_retry_overwrites_rather_than_duplicates(tmp_path: Path) -> None:
    outbox = OutboxTransport(tmp_path)
    outbox.send(batch(3))
    first_ids = {p.name: read(p)["Message-ID"] for p in tmp_path.glob("*.eml")}
    outbox.send(batch(3, subject="Second try for -first_name-"))
    files = list(tmp_path.iterdir())
    assert len(files) == 3  # no duplicates, no temporary files left behind
    assert {p.name: read(p)["Message-ID"] for p in files} == first_ids
    assert all(read(p)["Subject"].startswith("Second try") for p in files)


def test_another_send_key_is_another_file(tmp_path: Path) -> None:
    outbox = OutboxTransport(tmp_path)
    outbox.send(batch(1, send_key="wave1-b1"))
    outbox.send(batch(1, send_key="wave2-b1"))
    assert len(list(tmp_path.glob("*.eml"))) == 2


def test_unwritable_outbox_is_retry_later_and_keeps_nothing_half_written(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "outbox"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(RetryLater, match="cannot write batch wave1-batch1"):
        OutboxTransport(blocker).send(batch(2))
    assert blocker.read_text() == "a file where the folder should be"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outbox"]
