from __future__ import annotations

import pytest

from sender.core.speedups import reference_code
from sender.render.merge import MergeValues, personalise, read_reference

VALUES = MergeValues(
    first_name='<b>Zoë & "Jo"</b>',
    full_name="Zoë O'Hara",
    unsubscribe_url="https://act.example.org/unsubscribe/a.b",
    action_url="https://act.example.org/a/c.d",
    reference="M1Z2",
)


def test_html_tags_get_escaped_values_and_text_tags_raw_values() -> None:
    subs = VALUES.substitutions()
    assert subs["-first_name-"] == "&lt;b&gt;Zoë &amp; &quot;Jo&quot;&lt;/b&gt;"
    assert subs["-first_name_text-"] == '<b>Zoë & "Jo"</b>'
    assert subs["-full_name-"] == "Zoë O&#x27;Hara"
    assert subs["-action_url_text-"] == "https://act.example.org/a/c.d"


def test_personalise_fills_every_tag_longest_first() -> None:
    body = "Hi -first_name- / -first_name_text- <a href='-action_url-'>go</a> -reference_text-"
    out = personalise(body, VALUES.substitutions())
    assert out == (
        'Hi &lt;b&gt;Zoë &amp; &quot;Jo&quot;&lt;/b&gt; / <b>Zoë & "Jo"</b> '
        "<a href='https://act.example.org/a/c.d'>go</a> M1Z2"
    )


def test_values_are_never_expanded_again() -> None:
    subs = {"-first_name-": "-reference-", "-reference-": "M1"}
    assert personalise("-first_name- -reference-", subs) == "-reference- M1"


def test_unknown_tags_are_left_alone() -> None:
    assert personalise("-nope- and -first_name-", {"-first_name-": "A"}) == "-nope- and A"
    assert personalise("plain", {}) == "plain"


@pytest.mark.parametrize(
    "message_id",
    [0, 1, 31, 32, 1023, 1024, 9001, 2**20 - 1, 2**20, 10**7, 2**30 - 1, 2**30, 2**40],
)
def test_reference_code_round_trip(message_id: int) -> None:
    code = reference_code(message_id, supporter_id=5)
    assert code.startswith("M") and len(code) <= 12
    assert read_reference(code) == ("M", message_id)
    assert read_reference(code.lower()) == ("M", message_id)


def test_reference_code_without_message_names_the_supporter() -> None:
    assert read_reference(reference_code(None, 77)) == ("S", 77)


def test_reference_code_typo_is_caught() -> None:
    code = reference_code(9001, 1)
    typo = code[0] + ("1" if code[1] != "1" else "2") + code[2:]
    with pytest.raises(ValueError, match="check"):
        read_reference(typo)
    with pytest.raises(ValueError):
        read_reference("X12")


def test_personalise_is_stable_across_calls_and_key_orders() -> None:
    body = "a -x- b -y- c -x-"
    assert personalise(body, {"-x-": "1", "-y-": "2"}) == "a 1 b 2 c 1"
    assert personalise(body, {"-y-": "Y", "-x-": "X"}) == "a X b Y c X"
    assert personalise(body, {"-x-": "3", "-y-": "4"}) == "a 3 b 4 c 3"  # cached split, new values
    assert personalise("no tags here", {"-x-": "1"}) == "no tags here"


def _plain_base32(number: int) -> str:
    digits = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    code = ""
    while True:
        number, rest = divmod(number, 32)
        code = digits[rest] + code
        if not number:
            return code


@pytest.mark.parametrize("start", [0, 2**10 - 40, 2**20 - 40, 10**7, 2**30 - 40, 2**45])
def test_reference_codes_are_plain_base32_with_a_check_symbol(start: int) -> None:
    checks = "0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U"
    for number in range(start, start + 80):
        assert reference_code(number, 1) == f"M{_plain_base32(number)}{checks[number % 37]}"
        assert reference_code(None, number) == f"S{_plain_base32(number)}{checks[number % 37]}"
