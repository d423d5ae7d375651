"""The password rule and argon2 hashing.

The rule: at least MIN_LENGTH characters, not one of the common passwords
that attackers try first (zxcvbn's list of the 30,000 most used), not built
on the account's own address, and not guessable by zxcvbn's estimate. A
refusal says which, in words a campaigner can act on.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from sender.core.errors import InvalidInput

MIN_LENGTH = 12
MAX_LENGTH = 200  # argon2 takes any length; a bound keeps one login cheap
GOOD_ENOUGH_SCORE = 3  # zxcvbn: 3 = "safely unguessable", about 10^8 guesses and more

_hasher = PasswordHasher()  # argon2id with the library's current recommended cost


@cache
def _common() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # loaded only when a password is set

    return frozenset(FREQUENCY_LISTS["passwords"])


def password_problem(password: str, email: str = "") -> str | None:
    """Why this password may not be used, or None."""
    if len(password) < MIN_LENGTH:
        return f"the password is too short: use at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"the password is too long: use at most {MAX_LENGTH} characters"
    folded = password.lower()
    if folded in _common() or folded.rstrip("0123456789!.") in _common():
        return "the password is on the list of common passwords that are tried first"
    local = email.split("@", 1)[0].lower()
    if len(local) >= 4 and local in folded:
        return "the password contains the account's own address"
    from zxcvbn import zxcvbn

    estimate = zxcvbn(password[:100], user_inputs=[email, local, "campaign", "amnesty"])
    if int(estimate["score"]) < GOOD_ENOUGH_SCORE:
        warning = str(estimate["feedback"].get("warning") or "it is easy to guess")
        why = warning.rstrip(".").lower()
        return f"the password is too easy to guess ({why}): use a longer passphrase"
    return None


def require_good_password(password: str, email: str = "") -> None:
    problem = password_problem(password, email)
    if problem is not None:
        raise InvalidInput(problem)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


# Verified when no account matches, so an unknown address costs as long as a known one.
DUMMY_HASH = _hasher.hash("no account has this password")
