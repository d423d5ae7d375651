from __future__ import annotations

import pytest

from sender.core.errors import InvalidInput
from sender.staff import passwords


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("short-one", "too short"),
        ("password1234", "common passwords"),
        ("Password123!", "common passwords"),
        ("qwertyuiop123", "common passwords"),
        ("lena.kovac.rocks!", "own address"),
        ("aaaaaaaaaaaaaaaa", "easy to guess"),
    ],
)
def test_weak_passwords_are_refused_with_the_reason(password: str, why: str) -> None:
    problem = passwords.password_problem(password, "lena.kovac@example.org")
    assert problem is not None and why in problem
    with pytest.raises(InvalidInput, match=why):
        passwords.require_good_password(password, "lena.kovac@example.org")


def test_a_long_passphrase_is_accepted() -> None:
    assert passwords.password_problem("quiet-harbour-lantern-71", "lena@example.org") is None


def test_argon2_hash_verifies_only_the_right_password() -> None:
    stored = passwords.hash_password("quiet-harbour-lantern-71")
    assert stored.startswith("$argon2id$")
    assert passwords.password_matches(stored, "quiet-harbour-lantern-71")
    assert not passwords.password_matches(stored, "quiet-harbour-lantern-72")
    assert not passwords.password_matches("not a hash", "quiet-harbour-lantern-71")
    assert not passwords.needs_rehash(stored)
