"""The fast paths, each beside its plain twin: one place to read, test and measure them.

A trick lives here only while it pays: `python -m bench.speedups` times each
one alone against its twin, tests/core/test_speedups.py checks with
Hypothesis that the two give the same result, and `python -m bench.render`
times them together. A trick goes when its plain twin is as fast; the three
small ones below (reference codes, recipient values, the per-batch pause)
each save 0.2-0.4 µs an email, but together ~1 µs of the ~4.6 µs it takes to
personalise one, so they stay (docs/PERFORMANCE.md has the figures). The
per-variant freeze and the inlined reference-code path measured nothing and
went. Kept:

- Token signing. Every email carries an action and an unsubscribe token, so a
  million-email wave signs two million. `FastTokenPair` writes the very bytes
  itsdangerous signs (its plain twin, `plain_token_pair`) from pre-keyed
  HMAC-SHA1 states; reading tokens always goes through itsdangerous
  (sender.core.tokens). `FastReplySignature` does the same for the
  per-recipient reply token (its twin, `plain_reply_signature`).
- Reference codes. `reference_code` turns ids into Crockford base32 with
  table look-ups instead of `plain_reference_code`'s digit loop.
- Recipient values. `fast_recipient` builds the frozen Recipient and its
  Address through the slots' descriptors, `plain_recipient` by calling them.
- The collector in workers. `freeze_start_up_heap` exempts the heap a worker
  holds from start-up from every later collection, and `collector_paused`
  holds collections off while one batch is sent; the plain twin of each is
  not to call it. Only processes call them (sender.celery_app, sender.tasks),
  never library code.
- The switch interval during an import. `prompt_switches` shortens it while
  the import command runs; the plain twin is CPython's default. Only the import
  command uses it (sender.cli.supporters): in the worker's import task it
  measured nothing (bench.workspace_pages, docs/PERFORMANCE.md).
- Values kept per process. `KeptValues` keeps the last few values made per
  key for the life of the process; the plain twin, `made_afresh`, makes one
  each time. The web app keeps its renderers so (sender.render.renderer,
  `kept_renderer`): a renderer renders each variant once, and the launch check
  on the preview page renders every variant of every campaign (5 s, 224
  variants with premailer, where a kept renderer answers in milliseconds).
"""

from __future__ import annotations

import binascii
import gc
import hashlib
import sys
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from typing import Any, Generic, TypeVar

from itsdangerous import URLSafeSerializer, base64_encode

from sender.core.mail import Address, Recipient

# Token signing ---------------------------------------------------------------


def plain_token_pair(
    action: URLSafeSerializer,
    unsubscribe: URLSafeSerializer,
    supporter_id: int,
    message_id: int | None,
    case_id: int,
    wave_id: int | None,
) -> tuple[str, str]:
    """(action token, unsubscribe token) as itsdangerous signs them: the definition.

    The payload is itsdangerous's compact JSON in base64, never compressed:
    `dumps` would zlib the rare payload that repeats a long run of digits
    (`[999900,null,999900,null]`), and `loads` reads either form.
    """
    ids = [supporter_id, message_id, case_id, wave_id]
    payload = base64_encode(action.serializer.dumps(ids, **action.serializer_kwargs))
    return (
        action.make_signer().sign(payload).decode(),
        unsubscribe.make_signer().sign(payload).decode(),
    )


class FastTokenPair:
    """`plain_token_pair(action, unsubscribe, ...)`, byte for byte, in a tenth of the time.

    itsdangerous spends ~10 µs a token on generic JSON, a compression attempt
    and key derivation. Here the payload is formatted once for both tokens, and
    each signature is HMAC-SHA1 by its definition (RFC 2104) from two SHA-1
    states keyed once: copying a hashlib state is cheaper than setting up an
    HMAC per call, stdlib `hmac` objects' `copy()` included.
    """

    def __init__(self, action: URLSafeSerializer, unsubscribe: URLSafeSerializer) -> None:
        self._action_inner, self._action_outer = _prekeyed(action)
        self._unsubscribe_inner, self._unsubscribe_outer = _prekeyed(unsubscribe)
        # Checked once against itsdangerous itself, so an upgrade that changes its
        # digest or format fails loudly here instead of minting unreadable links.
        if self(1, None, 2, 3) != plain_token_pair(action, unsubscribe, 1, None, 2, 3):
            raise ValueError("fast token signing no longer matches itsdangerous")

    def __call__(
        self, supporter_id: int, message_id: int | None, case_id: int, wave_id: int | None
    ) -> tuple[str, str]:
        payload = _payload(supporter_id, message_id, case_id, wave_id)
        inner = self._action_inner.copy()
        inner.update(payload)
        outer = self._action_outer.copy()
        outer.update(inner.digest())
        action_digest = outer.digest()
        inner = self._unsubscribe_inner.copy()
        inner.update(payload)
        outer = self._unsubscribe_outer.copy()
        outer.update(inner.digest())
        # Both signatures in one base64 run: a 20-byte digest and a zero byte are
        # seven whole 3-byte groups, so characters 0-26 are the action signature
        # as it encodes alone (minus its "=" padding) and 28-54 the unsubscribe one.
        both = _b2a(action_digest + b"\0" + outer.digest(), newline=False).translate(_URLSAFE)
        text, signatures = payload.decode(), both.decode()
        return f"{text}.{signatures[:27]}", f"{text}.{signatures[28:55]}"


def _prekeyed(serializer: URLSafeSerializer) -> tuple[Any, Any]:
    """The inner and outer SHA-1 states of HMAC with the serializer's derived key."""
    signer = serializer.make_signer()
    if signer.key_derivation != "django-concat":  # the itsdangerous default we mirror
        raise ValueError("fast token signing no longer matches itsdangerous")
    key = signer.derive_key()
    if len(key) > _SHA1_BLOCK:
        key = hashlib.sha1(key).digest()  # noqa: S324 - HMAC-SHA1, as itsdangerous
    key = key.ljust(_SHA1_BLOCK, b"\0")
    return (
        hashlib.sha1(key.translate(_IPAD)),  # noqa: S324 - HMAC, not a bare hash
        hashlib.sha1(key.translate(_OPAD)),  # noqa: S324 - HMAC, not a bare hash
    )


def _payload(supporter_id: int, message_id: int | None, case_id: int, wave_id: int | None) -> bytes:
    # itsdangerous's compact JSON, in base64 without padding, as `plain_token_pair`.
    # `%d` refuses anything that is not a number, so no text can slip in.
    if message_id is not None and wave_id is not None:
        text = b"[%d,%d,%d,%d]" % (supporter_id, message_id, case_id, wave_id)
    else:
        message = b"null" if message_id is None else b"%d" % message_id
        wave = b"null" if wave_id is None else b"%d" % wave_id
        text = b"[%d,%s,%d,%s]" % (supporter_id, message, case_id, wave)
    return _b2a(text, newline=False).translate(_URLSAFE).rstrip(b"=")


def plain_reply_signature(reply: URLSafeSerializer, payload: str) -> str:
    """A reply token's signature: itsdangerous's for `payload`, as 20 hex digits.

    Lower-case hex, because some mail systems fold the case of local parts. The
    definition; `FastReplySignature` computes the same in a fifth of the time.
    """
    return reply.make_signer().get_signature(payload).hex()[:20]


class FastReplySignature:
    """`plain_reply_signature(reply, payload)` from pre-keyed SHA-1 states.

    Every email carries its own reply token (sender.render.renderer), so a
    million-email wave signs a million: key derivation per call is most of the
    plain cost. The 20 hex digits are the first 10 base64 characters.
    """

    def __init__(self, reply: URLSafeSerializer) -> None:
        self._inner, self._outer = _prekeyed(reply)
        if self("1.2.en.3") != plain_reply_signature(reply, "1.2.en.3"):
            raise ValueError("fast reply signing no longer matches itsdangerous")

    def __call__(self, payload: str) -> str:
        inner = self._inner.copy()
        inner.update(payload.encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return _b2a(outer.digest(), newline=False).translate(_URLSAFE)[:10].hex()


_SHA1_BLOCK = 64
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))
_b2a = binascii.b2a_base64
_URLSAFE = bytes.maketrans(b"+/", b"-_")


# Reference codes -------------------------------------------------------------

# Crockford's base32: no I, L, O or U, so a code read out on the phone survives.
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CHECK_SYMBOLS = CROCKFORD + "*~$=U"  # Crockford's mod-37 check symbols


def plain_reference_code(message_id: int | None, supporter_id: int) -> str:
    """ "M" + base32(message id) + check symbol, or "S" + the supporter's: the definition."""
    prefix, number = ("S", supporter_id) if message_id is None else ("M", message_id)
    if number < 0:
        raise ValueError("ids are not negative")
    digits = CROCKFORD[number % 32]
    rest = number // 32
    while rest:
        rest, digit = divmod(rest, 32)
        digits = CROCKFORD[digit] + digits
    return prefix + digits + CHECK_SYMBOLS[number % 37]


def reference_code(message_id: int | None, supporter_id: int) -> str:
    """A short code naming the message (or, in previews, the supporter); not a secret.

    `plain_reference_code` with table look-ups for the base32 digits; typos are
    caught by the check symbol (sender.render.merge.read_reference).
    """
    if message_id is None:
        return "S" + _base32(supporter_id) + CHECK_SYMBOLS[supporter_id % 37]
    return "M" + _base32(message_id) + CHECK_SYMBOLS[message_id % 37]


_PAIRS = tuple(a + b for a in CROCKFORD for b in CROCKFORD)  # 10 bits -> two symbols
# The leading pair of a code, its zeros already dropped ("" for 0, "Z" for 31).
_HEAD = tuple(pair.lstrip("0") for pair in _PAIRS)


def _base32(number: int) -> str:
    if number < 0:
        raise ValueError("ids are not negative")
    if number < 1 << 10:
        return _HEAD[number] or "0"
    if number < 1 << 20:
        return _HEAD[number >> 10] + _PAIRS[number & 1023]
    if number < 1 << 30:  # every id below a billion: three table look-ups, no loop
        return _HEAD[number >> 20] + _PAIRS[(number >> 10) & 1023] + _PAIRS[number & 1023]
    chunks = []
    while number:
        number, rest = divmod(number, 1024)
        chunks.append(_PAIRS[rest])
    return "".join(reversed(chunks)).lstrip("0")


# Recipient values ------------------------------------------------------------


def plain_recipient(
    email: str,
    name: str | None,
    substitutions: dict[str, str],
    custom_args: dict[str, str],
    headers: dict[str, str],
) -> Recipient:
    """One recipient's value, built by the dataclasses' own __init__: the definition."""
    return Recipient(Address(email, name), substitutions, custom_args, headers)


def _slot_setters(cls: type, names: tuple[str, ...]) -> tuple[Any, ...]:
    # Refuses to start if the value gained, lost or reordered a field, so the
    # fast builder below can never leave one unset.
    if tuple(f.name for f in fields(cls)) != names:
        raise TypeError(f"{cls.__name__} fields changed: update its fast builder")
    return tuple(vars(cls)[name].__set__ for name in names)


_new = object.__new__
_set_email, _set_name = _slot_setters(Address, ("email", "name"))
_set_to, _set_substitutions, _set_custom_args, _set_headers = _slot_setters(
    Recipient, ("to", "substitutions", "custom_args", "headers")
)


def fast_recipient(
    email: str,
    name: str | None,
    substitutions: dict[str, str],
    custom_args: dict[str, str],
    headers: dict[str, str],
) -> Recipient:
    """`plain_recipient`, the same frozen values, through the slots' own descriptors.

    A frozen dataclass's __init__ stores each field through
    `object.__setattr__`; the descriptors store them in half the time.
    """
    to = _new(Address)
    _set_email(to, email)
    _set_name(to, name)
    recipient = _new(Recipient)
    _set_to(recipient, to)
    _set_substitutions(recipient, substitutions)
    _set_custom_args(recipient, custom_args)
    _set_headers(recipient, headers)
    return recipient


# The collector ---------------------------------------------------------------


def freeze_start_up_heap() -> None:
    """Collect once, then exempt every object alive now from later collections.

    A worker holds a large, permanent heap from start-up (SQLAlchemy, Celery,
    lxml/premailer, Jinja2), and every batch it builds sets off collections
    that would walk all of it again. Frozen (`gc.freeze`), they skip it: the
    standard remedy for long-lived CPython services, which also keeps forked
    children from touching, and so copying, the parent's pages.
    """
    gc.collect()
    gc.freeze()


@contextmanager
def collector_paused() -> Iterator[None]:
    """No collections inside the block; the collector's previous state after it.

    Nothing a send batch allocates can form a cycle (strings, dicts of strings,
    frozen values), so a worker holds the collector off while it sends one
    (sender.tasks). The plain twin is to leave it on.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# The switch interval ---------------------------------------------------------

SWITCH_INTERVAL = 0.0005  # seconds; see prompt_switches


@contextmanager
def prompt_switches() -> Iterator[None]:
    """Let a thread waiting on the network have the GIL back soon after its wait.

    The importer's database thread sends each chunk by COPY in ~100 small
    writes, and after each one waits for the GIL, held by the reading thread,
    for up to CPython's switch interval (5 ms): that alone tripled the time of
    staging a chunk (200,000 rows: 5.4 s instead of 2.0 s at 0.5 ms).
    Process-wide, so restored on the way out.
    """
    previous = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


# Values kept per process ----------------------------------------------------------

V = TypeVar("V")


def made_afresh(key: Hashable, make: Callable[[], V]) -> V:
    """The plain twin of KeptValues.get: a new value every time."""
    return make()


class KeptValues(Generic[V]):
    """The `size` values last asked for, by key, kept while the process lives.

    For values that cost much to make and that a key names completely: the
    caller puts in the key everything the value is made from. A thread may make
    a value another is making; the last one made is kept, either is right.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._values: OrderedDict[Hashable, V] = OrderedDict()

    def get(self, key: Hashable, make: Callable[[], V]) -> V:
        try:
            value = self._values[key]
        except KeyError:
            value = self._values[key] = make()
        self._values.move_to_end(key)
        while len(self._values) > self.size:
            self._values.popitem(last=False)
        return value

    def forget(self, key: Hashable) -> None:
        self._values.pop(key, None)
