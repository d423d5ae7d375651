"""Each fast path gives what its plain twin gives (sender.core.speedups)."""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import render_fixtures as fx
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import URLSafeSerializer

from sender.core import speedups
from sender.core.mail import Address, Recipient
from sender.core.speedups import (
    SWITCH_INTERVAL,
    FastReplySignature,
    FastTokenPair,
    KeptValues,
    collector_paused,
    fast_recipient,
    freeze_start_up_heap,
    made_afresh,
    plain_recipient,
    plain_reference_code,
    plain_reply_signature,
    plain_token_pair,
    prompt_switches,
    reference_code,
)
from sender.core.vocabulary import WaveKind
from sender.render.renderer import RecipientData, Renderer

ids = st.integers(min_value=0, max_value=2**63)
optional_ids = st.none() | ids


def _serializers(secret: str) -> tuple[URLSafeSerializer, URLSafeSerializer]:
    return URLSafeSerializer(secret, salt="action"), URLSafeSerializer(secret, salt="unsubscribe")


SERIALIZERS = _serializers("secret-a")
PAIR = FastTokenPair(*SERIALIZERS)


@given(supporter=ids, message=optional_ids, case=ids, wave=optional_ids)
def test_fast_token_pair_is_what_itsdangerous_writes(
    supporter: int, message: int | None, case: int, wave: int | None
) -> None:
    fast = PAIR(supporter, message, case, wave)
    assert fast == plain_token_pair(*SERIALIZERS, supporter, message, case, wave)
    payload = [supporter, message, case, wave]
    for serializer, token in zip(SERIALIZERS, fast, strict=True):
        assert serializer.loads(token) == payload
        made = serializer.dumps(payload)
        # ...and `dumps` itself, unless it compressed this payload.
        assert made.startswith(".") or token == made


@settings(max_examples=25)  # each example derives a key
@given(
    secret=st.text(min_size=1, max_size=300),
    wave=ids,
    case=ids,
    language=st.sampled_from(["en", "es", "fr", "ar"]),
    message=optional_ids,
)
def test_fast_reply_signature_is_what_itsdangerous_signs(
    secret: str, wave: int, case: int, language: str, message: int | None
) -> None:
    reply = URLSafeSerializer(secret, salt="reply")
    payload = f"{wave}.{case}.{language}" + ("" if message is None else f".{message}")
    fast = FastReplySignature(reply)(payload)
    assert fast == plain_reply_signature(reply, payload)
    assert re.fullmatch(r"[0-9a-f]{20}", fast)


@settings(max_examples=25)  # each example derives two keys
@given(secret=st.text(min_size=1, max_size=300), supporter=ids, message=optional_ids)
def test_fast_token_pair_agrees_for_any_secret(
    secret: str, supporter: int, message: int | None
) -> None:
    action, unsubscribe = _serializers(secret)
    fast = FastTokenPair(action, unsubscribe)(supporter, message, 3, 4)
    assert fast == plain_token_pair(action, unsubscribe, supporter, message, 3, 4)
    assert action.loads(fast[0]) == unsubscribe.loads(fast[1]) == [supporter, message, 3, 4]


def test_fast_token_pair_refuses_a_serializer_it_does_not_mirror() -> None:
    sha256 = URLSafeSerializer(
        "secret-a", salt="action", signer_kwargs={"digest_method": hashlib.sha256}
    )
    with pytest.raises(ValueError, match="no longer matches itsdangerous"):
        FastTokenPair(sha256, SERIALIZERS[1])
    derived = URLSafeSerializer("secret-a", salt="action", signer_kwargs={"key_derivation": "hmac"})
    with pytest.raises(ValueError, match="no longer matches itsdangerous"):
        FastTokenPair(derived, SERIALIZERS[1])


def test_fast_token_pair_refuses_to_start_when_it_drifts(monkeypatch: pytest.MonkeyPatch) -> None:
    right = FastTokenPair.__call__

    def drifted(self: FastTokenPair, *ids: int | None) -> tuple[str, str]:
        action, unsubscribe = right(self, *ids)  # type: ignore[arg-type]
        return action, unsubscribe[:-1] + "A"

    monkeypatch.setattr(FastTokenPair, "__call__", drifted)
    with pytest.raises(ValueError, match="no longer matches itsdangerous"):
        FastTokenPair(*SERIALIZERS)


def test_text_cannot_reach_a_token_payload() -> None:
    with pytest.raises(TypeError):
        PAIR("1,2", 10, 3, 2)  # type: ignore[arg-type]


@given(message=st.none() | st.integers(min_value=0, max_value=2**80), supporter=ids)
def test_reference_code_is_the_plain_base32_code(message: int | None, supporter: int) -> None:
    assert reference_code(message, supporter) == plain_reference_code(message, supporter)


@pytest.mark.parametrize("edge", [0, 1, 31, 32, 2**10 - 1, 2**10, 2**20 - 1, 2**20, 2**30 - 1])
def test_reference_code_agrees_at_the_table_edges(edge: int) -> None:
    for number in (edge, edge + 1):
        assert reference_code(number, 1) == plain_reference_code(number, 1)
        assert reference_code(None, number) == plain_reference_code(None, number)


def test_negative_ids_have_no_reference_code() -> None:
    for make in (reference_code, plain_reference_code):
        with pytest.raises(ValueError, match="not negative"):
            make(-1, 1)


@given(
    email=st.text(max_size=30),
    name=st.none() | st.text(max_size=30),
    values=st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
)
def test_fast_recipient_is_the_plain_frozen_value(
    email: str, name: str | None, values: dict[str, str]
) -> None:
    fast = fast_recipient(email, name, values, {"k": "v"}, {})
    plain = plain_recipient(email, name, values, {"k": "v"}, {})
    assert fast == plain and repr(fast) == repr(plain) and hash(fast.to) == hash(plain.to)
    assert type(fast) is Recipient and type(fast.to) is Address
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.to = plain.to  # type: ignore[misc]


def test_fast_recipient_refuses_a_value_whose_fields_changed() -> None:
    with pytest.raises(TypeError, match="fields changed"):
        speedups._slot_setters(Recipient, ("to", "substitutions", "custom_args"))


@pytest.fixture
def unfreeze() -> Iterator[None]:
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfreeze")
def test_freezing_moves_the_live_heap_out_of_collections() -> None:
    gc.unfreeze()
    freeze_start_up_heap()
    assert gc.get_freeze_count() > 1000  # at least this test process's modules
    assert gc.get_count()[0] < 100  # and it collected first


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(fx.settings())


names = st.none() | st.text(max_size=20)


@pytest.mark.usefixtures("unfreeze")
@settings(max_examples=20)
@given(first=names, last=names, message=optional_ids, supporter=ids)
def test_a_batch_is_the_same_with_the_heap_frozen_or_not(
    renderer: Renderer, first: str | None, last: str | None, message: int | None, supporter: int
) -> None:
    variant = renderer.variant(WaveKind.CASE_EMAIL, fx.case(), "en")
    row = RecipientData(
        supporter_id=supporter,
        email="a@example.org",
        first_name=first,
        last_name=last,
        message_id=message,
        case_id=7,
        wave_id=3,
    )
    gc.unfreeze()
    plain = renderer.recipients(variant, [row], 7, 3)
    freeze_start_up_heap()
    with collector_paused():
        assert renderer.recipients(variant, [row], 7, 3) == plain


def test_paused_collector_restores_its_state() -> None:
    was = gc.isenabled()
    try:
        for state in (True, False):
            (gc.enable if state else gc.disable)()
            with collector_paused():
                assert not gc.isenabled()
            assert gc.isenabled() is state
    finally:
        (gc.enable if was else gc.disable)()


@given(previous=st.integers(min_value=100, max_value=50_000))
def test_prompt_switches_sets_the_interval_and_restores_any_other(previous: int) -> None:
    before = sys.getswitchinterval()
    try:
        # CPython keeps whole microseconds, rounded down: each round trip may lose one.
        sys.setswitchinterval(previous / 1e6)
        kept = sys.getswitchinterval()
        with prompt_switches():
            assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
        assert sys.getswitchinterval() == pytest.approx(kept, abs=2.5e-6)
        with pytest.raises(OSError), prompt_switches():
            raise OSError("disk went away")
        assert sys.getswitchinterval() == pytest.approx(kept, abs=2.5e-6)
    finally:
        sys.setswitchinterval(before)


_PROCESS_WIDE = re.compile(
    r"\bgc\.|setswitchinterval|prompt_switches\(|freeze_start_up_heap\(|\bcollector_paused\b"
)


def test_only_the_process_sets_the_collector_and_the_switch_interval() -> None:
    # Library code may not call these; the processes that want them do.
    root = Path(speedups.__file__).resolve().parents[1]
    callers = {
        path.relative_to(root.parent).as_posix()
        for path in root.rglob("*.py")
        if path.name != "speedups.py" and _PROCESS_WIDE.search(path.read_text(encoding="utf-8"))
    }
    # The worker (celery_app, tasks), the commands that send or import in-process
    # (serve ticks the scheduler itself without Redis), the demo, and the local
    # SendGrid server, a process of its own.
    assert callers == {
        "sender/celery_app.py",
        "sender/cli/serve.py",
        "sender/cli/supporters.py",
        "sender/cli/wave.py",
        "sender/tasks.py",
        "sender/devtools/demo.py",
        "sender/devtools/local_sendgrid/server.py",
    }


@given(st.lists(st.integers(0, 6), max_size=40), st.integers(1, 4))
def test_kept_values_give_what_made_afresh_gives(keys: list[int], size: int) -> None:
    kept: KeptValues[tuple[int, int]] = KeptValues(size)
    made: list[int] = []

    def make_for(key: int) -> tuple[int, int]:
        made.append(key)
        return (key, key * key)

    for key in keys:
        fast = kept.get(key, lambda key=key: make_for(key))  # type: ignore[misc]
        assert fast == made_afresh(key, lambda key=key: (key, key * key))  # type: ignore[misc]
    # Each key is made once while it stays among the `size` last asked for.
    assert len(made) <= len(keys) and set(made) == set(keys)
    assert len(kept._values) <= size


def test_kept_values_keep_the_last_asked_and_forget_on_demand() -> None:
    kept: KeptValues[object] = KeptValues(2)
    a, b, c = object(), object(), object()
    assert kept.get("a", lambda: a) is a and kept.get("b", lambda: b) is b
    assert kept.get("a", object) is a  # kept; "a" is now the last asked for
    assert kept.get("c", lambda: c) is c  # "b" goes
    assert kept.get("b", object) is not b and kept.get("a", object) is not a
    kept.forget("c")
    assert kept.get("c", object) is not c
