"""Signed, short tokens for links and addresses in every email.

itsdangerous signs compact payloads with the configured secret, each purpose
with its own salt, so a token made for one use (an unsubscribe) cannot be
replayed as another (an action link) or edited to name another supporter.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

from sender.errors import InvalidInput


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

    def action(self, ref: MessageRef) -> str:
        return str(self._action.dumps(_ref_list(ref)))

    def unsubscribe(self, ref: MessageRef) -> str:
        return str(self._unsubscribe.dumps(_ref_list(ref)))

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


def _ref_list(ref: MessageRef) -> list[int | None]:
    return [ref.supporter_id, ref.message_id, ref.case_id, ref.wave_id]


def _ref_from(value: object) -> MessageRef:
    if not (isinstance(value, list) and len(value) == 4):
        raise InvalidInput("token payload has the wrong shape")
    supporter, message, case, wave = value
    if not isinstance(supporter, int) or not isinstance(case, int):
        raise InvalidInput("token payload has the wrong shape")
    return MessageRef(
        supporter,
        message if isinstance(message, int) else None,
        case,
        wave if isinstance(wave, int) else None,
    )


def _loads(serializer: URLSafeSerializer, token: str) -> object:
    try:
        return serializer.loads(token)
    except BadSignature as error:
        raise InvalidInput("token is not valid") from error


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
