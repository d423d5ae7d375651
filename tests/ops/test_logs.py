"""JSON/plain output, context ids and address masking."""

from __future__ import annotations

import io
import json
import logging
import threading
from datetime import timedelta

import pytest
from rich.logging import RichHandler
from sending_fixtures import (
    DEC1,
    RecordingTransport,
    add_case,
    add_supporters,
    add_wave,
    make_sender,
)
from sqlalchemy import Engine

from sender.core.clock import MovableClock
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.ops import logs
from sender.send import store as repo
from sender.send.batch import BatchOutcome
from sender.send.pipeline import send_batch
from sender.send.planner import plan_wave
from sender.send.transport.base import Rejected


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def root_restored() -> object:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield root
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def _json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_when_not_a_terminal_with_context_ids(root_restored: object) -> None:
    stream = io.StringIO()
    logs.configure_logging(Settings(), stream)
    with logs.log_context(wave_id=4, batch_id=17):
        with logs.log_context(case_id=2):
            logging.getLogger("sender.test").info("batch %s sent", 17)
        logging.getLogger("sender.test").warning("outside the case")
    logging.getLogger("sender.test").info("no context")
    first, second, third = _json_lines(stream)
    assert first["message"] == "batch 17 sent"
    assert (first["wave_id"], first["batch_id"], first["case_id"]) == (4, 17, 2)
    assert first["level"] == "INFO" and first["logger"] == "sender.test"
    assert (second["wave_id"], second["case_id"]) == (4, None)
    assert third["wave_id"] is None


def test_plain_output_on_a_terminal_and_setting_overrides(root_restored: object) -> None:
    tty = _Tty()
    logs.configure_logging(Settings(), tty)
    logging.getLogger("sender.test").info("hello operator")
    assert "hello operator" in tty.getvalue()
    with pytest.raises(json.JSONDecodeError):
        json.loads(tty.getvalue().splitlines()[0])
    assert logs.wants_json(Settings(log_json=True), _Tty()) is True
    assert logs.wants_json(Settings(log_json=False), io.StringIO()) is False


def test_text_to_a_file_is_plain_lines_not_a_terminal_layout(root_restored: object) -> None:
    stream = io.StringIO()
    logs.configure_logging(Settings(log_json=False), stream)
    with logs.log_context(batch_id=3):
        logging.getLogger("sender.test").info("batch %s sent to ann@example.org", 3)
    (line,) = stream.getvalue().splitlines()
    assert line.endswith("INFO sender.test: batch 3 sent to a***@example.org")
    assert not isinstance(logging.getLogger().handlers[-1], RichHandler)


def test_configure_twice_keeps_one_handler(root_restored: object) -> None:
    stream = io.StringIO()
    logs.configure_logging(Settings(), stream)
    logs.configure_logging(Settings(), stream)
    logging.getLogger("sender.test").info("once")
    assert len(_json_lines(stream)) == 1


def test_addresses_masked_at_info_and_kept_at_debug(root_restored: object) -> None:
    stream = io.StringIO()
    logs.configure_logging(Settings(), stream, level=logging.DEBUG)
    log = logging.getLogger("sender.test")
    log.info("bounce for %s", "jane.doe@example.org", extra={"recipient": "x.y@mail.example.com"})
    log.debug("debug %s", "jane.doe@example.org")
    try:
        raise ValueError("cannot send to bob@example.net")
    except ValueError:
        log.exception("send failed")
    info, debug, error = _json_lines(stream)
    assert info["message"] == "bounce for j***@example.org"
    assert info["recipient"] == "x***@mail.example.com"
    assert debug["message"] == "debug jane.doe@example.org"
    assert "bob@example.net" not in json.dumps(error)
    assert "b***@example.net" in str(error["exc_info"])


def test_mask_keeps_ordinary_text() -> None:
    assert logs.mask_emails("wave 3: 1,000 sent @ 10/s") == "wave 3: 1,000 sent @ 10/s"
    assert logs.mask_emails("a@b.co and zed+tag@x.org") == "a***@b.co and z***@x.org"


def test_context_is_per_thread_and_unknown_fields_refused(root_restored: object) -> None:
    stream = io.StringIO()
    logs.configure_logging(Settings(), stream)
    with logs.log_context(wave_id=1):
        thread = threading.Thread(target=lambda: logging.getLogger("t").info("other thread"))
        thread.start()
        thread.join()
    assert _json_lines(stream)[0]["wave_id"] is None
    with pytest.raises(ValueError, match="supporter"), logs.log_context(supporter="x@y.org"):
        pass
    assert logs.current_context() == {}


def test_bound_adapter_tags_records(root_restored: object) -> None:
    stream = io.StringIO()
    logs.configure_logging(Settings(), stream)
    logs.bind(logging.getLogger("sender.test"), wave_id=9, batch_id=3).info("bound")
    line = _json_lines(stream)[0]
    assert (line["wave_id"], line["batch_id"]) == (9, 3)


def test_scope_adds_ids_later_and_resets_them_all(root_restored: object) -> None:
    stream = io.StringIO()
    logs.configure_logging(Settings(), stream)
    with logs.log_context(batch_id=5) as scope:
        logging.getLogger("sender.test").info("claimed")
        scope.add(wave_id=2, case_id=8)
        logging.getLogger("sender.test").info("read")
        with pytest.raises(ValueError, match="email"):
            scope.add(email="a@b.org")
    assert logs.current_context() == {}
    claimed, read = _json_lines(stream)
    assert (claimed["batch_id"], claimed["wave_id"]) == (5, None)
    assert (read["wave_id"], read["batch_id"], read["case_id"]) == (2, 5, 8)


def test_send_batch_lines_carry_their_ids_and_no_address(
    root_restored: object, any_engine: Engine
) -> None:
    """A refused batch's reason quotes an address: the INFO line shows it masked."""
    settings = Settings(secret_key="test", batch_size=5)
    case = add_case(any_engine, settings)
    add_supporters(any_engine, [case], ["jane.doe@example.org", "omar@example.net"])
    wave = add_wave(any_engine, settings)
    plan_wave(any_engine, settings, wave, DEC1)
    nine = DEC1 + timedelta(hours=9)
    with session_scope(any_engine) as session:
        (batch,) = repo.release_due(session, nine, 10)
    refusal = Rejected("invalid address jane.doe@example.org", status_code=400)
    transport = RecordingTransport(script=[refusal])
    sender = make_sender(any_engine, settings, transport, MovableClock(nine))
    stream = io.StringIO()
    logs.configure_logging(Settings(log_json=True), stream)
    assert send_batch(batch, sender).outcome is BatchOutcome.FAILED
    (line,) = [x for x in _json_lines(stream) if x["logger"] == "sender.send.pipeline"]
    assert (line["wave_id"], line["batch_id"], line["case_id"]) == (wave, batch, case)
    assert "j***@example.org" in str(line["message"])
    assert "jane.doe@example.org" not in stream.getvalue()
    assert "omar@example.net" not in stream.getvalue()
    assert logs.current_context() == {}
