"""The provider registry: names resolve to providers, nothing else does, and only the
SendGrid provider's own modules spell out its name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sender.core.errors import NotFound
from sender.core.vocabulary import ActionKind, EventType
from sender.track import providers
from sender.track.actions import event_key, link_key, reply_key
from sender.track.providers import sendgrid

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("sender", "bench", "worker.py")
# The SendGrid provider's own modules: the only places its name may be written.
OWN_MODULES = (
    "sender/track/providers/sendgrid.py",
    "sender/track/providers/sendgrid_signature.py",
    "sender/send/transport/sendgrid.py",
    "sender/devtools/local_sendgrid/",
)
LITERAL = re.compile(r"[\"']sendgrid[\"']")


def _hits() -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for name in SCANNED:
        top = ROOT / name
        files = [top] if top.is_file() else sorted(top.rglob("*"))
        for path in files:
            relative = path.relative_to(ROOT).as_posix()
            if not path.is_file() or "__pycache__" in relative or relative.startswith(OWN_MODULES):
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            lines = [n for n, line in enumerate(text.splitlines(), 1) if LITERAL.search(line)]
            if lines:
                found[relative] = lines
    return found


def test_no_sendgrid_literal_outside_its_own_modules() -> None:
    assert _hits() == {}, "use the registry (sender.track.providers) instead of the name"


def test_a_registered_name_resolves_to_its_provider() -> None:
    assert providers.get(sendgrid.NAME) is sendgrid.PROVIDER


@pytest.mark.parametrize("name", ["mailgun", "SendGrid", "", "sendgrid/../x"])
def test_an_unknown_provider_is_refused(name: str) -> None:
    with pytest.raises(NotFound, match="no mail provider"):
        providers.get(name)


def test_an_unknown_event_is_kept_as_unknown_with_its_raw_payload() -> None:
    raw = {"event": "sub_account_created", "sg_event_id": "e9", "timestamp": 1, "x": [1]}
    event = providers.get(sendgrid.NAME).translate(raw)
    assert (event.provider, event.event_type, event.raw_type) == (
        sendgrid.NAME,
        EventType.UNKNOWN,
        "sub_account_created",
    )
    assert event.raw == raw


def test_nothing_a_provider_posts_makes_its_translator_raise() -> None:
    for raw in ({}, {"event": None}, {"event": ["open"]}, {"timestamp": "soon", "type": 3}):
        assert providers.get(sendgrid.NAME).translate(raw).event_type is EventType.UNKNOWN


def test_action_keys_keep_the_formats_already_stored() -> None:
    # Stored keys dedupe retries only while the same event builds the same key.
    assert event_key(sendgrid.PROVIDER, "abc.123") == "sg:abc.123"
    assert link_key("42", ActionKind.CLICKED) == "link:42:clicked"
    assert link_key("t" + "0" * 32, ActionKind.LETTER_SENT) == "link:t" + "0" * 32 + ":letter_sent"
    assert reply_key(7) == "reply:7"
