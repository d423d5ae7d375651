from __future__ import annotations

import pytest
from itsdangerous import URLSafeSerializer

from sender.core.errors import InvalidInput
from sender.core.tokens import MessageRef, ReplyRef, TokenSigner

SIGNER = TokenSigner("secret-a")
A = MessageRef(supporter_id=1, message_id=10, case_id=3, wave_id=2)
B = MessageRef(supporter_id=2, message_id=11, case_id=3, wave_id=2)


@pytest.mark.parametrize(
    "ref",
    [A, MessageRef(5, None, 1, None), MessageRef(2**40, 2**35, 99, 123456)],
)
def test_fast_tokens_are_exactly_what_itsdangerous_makes(ref: MessageRef) -> None:
    payload = [ref.supporter_id, ref.message_id, ref.case_id, ref.wave_id]
    assert SIGNER.action(ref) == URLSafeSerializer("secret-a", salt="action").dumps(payload)
    assert SIGNER.unsubscribe(ref) == URLSafeSerializer("secret-a", salt="unsubscribe").dumps(
        payload
    )
    assert SIGNER.read_action(SIGNER.action(ref)) == ref
    assert SIGNER.read_unsubscribe(SIGNER.unsubscribe(ref)) == ref


def test_reply_token_round_trip_and_case_folding() -> None:
    token = SIGNER.reply(ReplyRef(4, 7, "ar"))
    assert token == token.lower()
    assert SIGNER.read_reply(token.upper()) == ReplyRef(4, 7, "ar")


def test_a_message_reply_token_names_its_message_and_cannot_be_moved_to_another() -> None:
    ref = ReplyRef(4, 7, "es", 9001)
    token = SIGNER.reply(ref)
    assert token == token.lower() and token.count(".") == 4
    assert SIGNER.read_reply(token.upper()) == ref
    assert SIGNER.reply_for(4, 7, "es", 9001) == token
    wave, case, language, _message, signature = token.split(".")
    for forged in (
        f"{wave}.{case}.{language}.9002.{signature}",  # another supporter's message
        f"{wave}.{case}.{language}.{signature}",  # the message dropped: a variant token
        f"{wave}.8.{language}.9001.{signature}",  # another case
    ):
        with pytest.raises(InvalidInput):
            SIGNER.read_reply(forged)
    with pytest.raises(InvalidInput):
        TokenSigner("other-secret").read_reply(token)


def test_tampered_signature_refused() -> None:
    token = SIGNER.action(A)
    last = "A" if token[-1] != "A" else "B"
    with pytest.raises(InvalidInput):
        SIGNER.read_action(token[:-1] + last)
    assert SIGNER.read_action(token) == A  # the genuine one still reads


def test_supporter_a_token_cannot_be_edited_to_name_supporter_b() -> None:
    token_a, token_b = SIGNER.action(A), SIGNER.action(B)
    forged = token_b.split(".")[0] + "." + token_a.split(".")[1]  # B's payload, A's signature
    with pytest.raises(InvalidInput):
        SIGNER.read_action(forged)
    assert SIGNER.read_action(token_b).supporter_id == 2


def test_token_from_another_secret_refused() -> None:
    with pytest.raises(InvalidInput):
        SIGNER.read_unsubscribe(TokenSigner("other-secret").unsubscribe(A))


def test_action_token_cannot_be_used_to_unsubscribe() -> None:
    with pytest.raises(InvalidInput):
        SIGNER.read_unsubscribe(SIGNER.action(A))


def test_forged_payload_shapes_refused() -> None:
    serializer = URLSafeSerializer("secret-a", salt="action")
    for payload in ([True, 1, 1, 1], [1, 2, 3], {"s": 1}, ["1", 1, 1, 1]):
        with pytest.raises(InvalidInput):
            SIGNER.read_action(serializer.dumps(payload))


@pytest.mark.parametrize(
    "token",
    ["", "1.2.en", "1.2.en.deadbeef", "x.2.en.0000", "garbage", "1.2.en.x.0000", "1.2.en.3.4.5"],
)
def test_bad_reply_tokens_refused(token: str) -> None:
    with pytest.raises(InvalidInput):
        SIGNER.read_reply(token)


def test_reply_token_edited_to_another_wave_refused() -> None:
    token = SIGNER.reply(ReplyRef(4, 7, "en"))
    with pytest.raises(InvalidInput):
        SIGNER.read_reply("5" + token[1:])


def test_message_tokens_equal_the_single_calls() -> None:
    for ref in (A, B, MessageRef(3, None, 4, None)):
        assert SIGNER.message_tokens(ref) == (SIGNER.action(ref), SIGNER.unsubscribe(ref))


def test_long_secrets_sign_like_itsdangerous() -> None:
    secret = "s" * 500
    payload = [1, 2, 3, 4]
    token = TokenSigner(secret).action(MessageRef(1, 2, 3, 4))
    assert token == URLSafeSerializer(secret, salt="action").dumps(payload)


@pytest.mark.parametrize(
    ("supporter", "message", "case", "wave"),
    [(1, 10, 3, 2), (5, None, 1, None), (7, 8, 9, None), (7, None, 9, 4), (0, 0, 0, 0)],
)
def test_fast_tokens_read_back_by_plain_itsdangerous(
    supporter: int, message: int | None, case: int, wave: int | None
) -> None:
    action, unsubscribe = SIGNER.tokens_for(supporter, message, case, wave)
    expected = [supporter, message, case, wave]
    assert URLSafeSerializer("secret-a", salt="action").loads(action) == expected
    assert URLSafeSerializer("secret-a", salt="unsubscribe").loads(unsubscribe) == expected
    # ...and the other way round: what itsdangerous writes, the signer reads.
    made = URLSafeSerializer("secret-a", salt="unsubscribe").dumps(expected)
    assert SIGNER.read_unsubscribe(made) == MessageRef(supporter, message, case, wave)


def test_fast_token_with_edited_payload_refused() -> None:
    action, _ = SIGNER.tokens_for(1, 10, 3, 2)
    payload, signature = action.split(".")
    other_payload = SIGNER.tokens_for(2, 10, 3, 2)[0].split(".")[0]
    with pytest.raises(InvalidInput):
        SIGNER.read_action(f"{other_payload}.{signature}")
    with pytest.raises(InvalidInput):
        SIGNER.read_action(f"{payload}x.{signature}")
    assert SIGNER.read_action(action) == A  # the genuine token is untouched


def test_text_ids_cannot_reach_a_payload() -> None:
    with pytest.raises(TypeError):
        SIGNER.tokens_for("1,2", 10, 3, 2)  # type: ignore[arg-type]
    assert SIGNER.tokens_for(1, 10, 3, 2) == SIGNER.message_tokens(A)


@pytest.mark.parametrize("supporter", [0, 1, 2, 3, 99, 12345, 2**31, 2**62])
def test_each_signature_of_the_pair_is_its_own_digest(supporter: int) -> None:
    # The pair shares one base64 run; each half must still be exactly its own signature.
    for message, wave in ((7, 3), (None, None), (2**33, None)):
        action, unsubscribe = SIGNER.tokens_for(supporter, message, 5, wave)
        payload = [supporter, message, 5, wave]
        assert action == URLSafeSerializer("secret-a", salt="action").dumps(payload)
        assert unsubscribe == URLSafeSerializer("secret-a", salt="unsubscribe").dumps(payload)
