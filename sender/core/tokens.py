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
from sender.core.speedups import FastReplySignature, FastTokenPair, plain_reply_signature


@dataclass(frozen=True)
class MessageRef:
    """Who got which message: carried by action and unsubscribe tokens."""

    supporter_id: int
    message_id: int | None  # None for previews and staff tests
    case_id: int
    wave_id: int | None


@dataclass(frozen=True)
class ReplyRef:
    """What a reply-to address names: the wave, case and language, and the message.

    Every email carries its own Reply-To (a SendGrid substitution: docs/SENDGRID.md),
    so the token names the message and with it the supporter. Without a message id
    (previews, proofs, mail sent before 0.2) it names only the variant, and the
    supporter must be found by the sender's address (sender.track.inbound).
    """

    wave_id: int
    case_id: int
    language: str
    message_id: int | None = None


class TokenSigner:
    def __init__(self, secret: str) -> None:
        self._action = URLSafeSerializer(secret, salt="action")
        self._unsubscribe = URLSafeSerializer(secret, salt="unsubscribe")
        self._reply = URLSafeSerializer(secret, salt="reply")
        # Public for the one loop that signs a million pairs (Renderer.recipients).
        self.pair = FastTokenPair(self._action, self._unsubscribe)
        self._reply_signature = FastReplySignature(self._reply)

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
        """`wave.case.language[.message].signature`: lower-case letters, digits and dots.

        Some mail systems fold the case of local parts, so the signature travels as hex.
        """
        return self.reply_for(ref.wave_id, ref.case_id, ref.language, ref.message_id)

    def reply_for(self, wave_id: int, case_id: int, language: str, message_id: int | None) -> str:
        """`reply` without building a ReplyRef: called once per email sent."""
        if message_id is None:
            payload = f"{wave_id}.{case_id}.{language}"
        else:
            payload = f"{wave_id}.{case_id}.{language}.{message_id}"
        return f"{payload}.{self._reply_signature(payload)}"

    def read_action(self, token: str) -> MessageRef:
        return _ref_from(_loads(self._action, token))

    def read_unsubscribe(self, token: str) -> MessageRef:
        return _ref_from(_loads(self._unsubscribe, token))

    def read_reply(self, token: str) -> ReplyRef:
        parts = token.lower().split(".")
        if len(parts) not in (4, 5):
            raise InvalidInput("malformed reply token")
        *fields, signature = parts
        payload = ".".join(fields)
        try:
            numbers = [int(value) for value in (fields[0], fields[1], *fields[3:])]
        except ValueError as error:
            raise InvalidInput("malformed reply token") from error
        expected = plain_reply_signature(self._reply, payload)
        if not _same(signature, expected):
            raise InvalidInput("reply token signature does not match")
        message = numbers[2] if len(numbers) == 3 else None
        return ReplyRef(numbers[0], numbers[1], fields[2], message)


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
