"""Signed, short tokens for links and addresses in every email.

itsdangerous signs compact payloads with the configured secret, each purpose
with its own salt, so a token made for one use (an unsubscribe) cannot be
replayed as another (an action link) or edited to name another supporter.

Every email carries two message tokens, so a wave of a million emails signs
two million of them: sender.core.speedups.FastTokenPair writes the very bytes
itsdangerous signs, in a tenth of its time. Reading always goes through
itsdangerous.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

from sender.core.errors import InvalidInput
from sender.core.speedups import FastTokenPair


@dataclass(frozen=True)
class MessageRef:
    """Who got which message: carried by action and unsubscribe tokens."""

    supporter_id: int
    message_id: int | None  # None for previews and staff tests
    case_id: int
    wave_id: int | None


@dataclass(frozen=True)
class ReplyRef:
    """What a reply-to address names: the request's wave, case and language."""

    wave_id: int
    case_id: int
    language: str


class TokenSigner:
    def __init__(self, secret: str) -> None:
        self._action = URLSafeSerializer(secret, salt="action")
        self._unsubscribe = URLSafeSerializer(secret, salt="unsubscribe")
        self._reply = URLSafeSerializer(secret, salt="reply")
        # Public for the one loop that signs a million pairs (Renderer.recipients).
        self.pair = FastTokenPair(self._action, self._unsubscribe)

    def action(self, ref: MessageRef) -> str:
        return self.message_tokens(ref)[0]

    def unsubscribe(self, ref: MessageRef) -> str:
        return self.message_tokens(ref)[1]

    def message_tokens(self, ref: MessageRef) -> tuple[str, str]:
        """(action, unsubscribe) for one message, encoding the payload once."""
        return self.tokens_for(ref.supporter_id, ref.message_id, ref.case_id, ref.wave_id)

    def tokens_for(
        self, supporter_id: int, message_id: int | None, case_id: int, wave_id: int | None
    ) -> tuple[str, str]:
        """`message_tokens` without building a MessageRef: called once per email sent."""
        return self.pair(supporter_id, message_id, case_id, wave_id)

    def reply(self, ref: ReplyRef) -> str:
        # Lower-case letters and digits only: some mail systems fold the case of
        # local parts, so the signature travels as hex.
        payload = f"{ref.wave_id}.{ref.case_id}.{ref.language}"
        signature = self._reply.make_signer().get_signature(payload).hex()[:20]
        return f"{payload}.{signature}"

    def read_action(self, token: str) -> MessageRef:
        return _ref_from(_loads(self._action, token))

    def read_unsubscribe(self, token: str) -> MessageRef:
        return _ref_from(_loads(self._unsubscribe, token))

    def read_reply(self, token: str) -> ReplyRef:
        try:
            wave, case, language, signature = token.lower().split(".")
            payload = f"{wave}.{case}.{language}"
            expected = self._reply.make_signer().get_signature(payload).hex()[:20]
            if not _same(signature, expected):
                raise InvalidInput("reply token signature does not match")
            return ReplyRef(int(wave), int(case), language)
        except ValueError as error:
            raise InvalidInput("malformed reply token") from error


def _ref_from(value: object) -> MessageRef:
    if not (isinstance(value, list) and len(value) == 4):
        raise InvalidInput("token payload has the wrong shape")
    supporter, message, case, wave = value
    if not _is_id(supporter) or not _is_id(case):
        raise InvalidInput("token payload has the wrong shape")
    return MessageRef(
        supporter,
        message if _is_id(message) else None,
        case,
        wave if _is_id(wave) else None,
    )


def _is_id(value: object) -> bool:
    # bool is an int subclass: a signed `true` is not a supporter id.
    return isinstance(value, int) and not isinstance(value, bool)


def _loads(serializer: URLSafeSerializer, token: str) -> object:
    try:
        return serializer.loads(token)
    except BadSignature as error:
        raise InvalidInput("token is not valid") from error


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
