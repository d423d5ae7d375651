"""The run mode, and the settings production refuses to start with.

Production (CAMPAIGN_MODE unset or ``production``) is everything but the demo
and the test suite: the web app, Celery workers, beat and Flower all call
`refuse_unsafe_start` before they serve or send; `production_problems` is the
list a health check (`campaign doctor`) shows. The checks are pure: settings
in, a list of problems out, each naming the setting, what is wrong with it and
how to make a good value, so a refusal can name every bad setting at once.

What is refused, whatever SendGrid host is configured (the web app signs
cookies and unsubscribe links with SECRET_KEY even with no API key):

* a secret equal to a value this repository publishes (the development
  defaults, the placeholders of ``.env.example``, the demo's);
* a secret shorter than 32 bytes, or whose characters carry too little
  entropy (a crude estimate: it catches repeats and tiny alphabets, not
  dictionary words; `campaign secret` makes values far above it);
* a PUBLIC_BASE_URL that is not https, or still the example address: links
  in email carry tokens that must not travel in clear text.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from werkzeug.security import check_password_hash

from sender.core.config import DEV_INBOUND_SECRET, DEV_SECRET, DEV_STAFF_PASSWORD, Settings
from sender.core.errors import ConfigError

MIN_SECRET_BYTES = 32
# 96 bits: well under what `campaign secret` prints (~200), well over a short
# word repeated to length (`changeme` four times estimates at ~87).
MIN_ESTIMATED_BITS = 96.0
# werkzeug's generate_password_hash output; STAFF_PASSWORD may hold one.
PASSWORD_HASH_PREFIXES = ("scrypt:", "pbkdf2:")

# Every secret value anyone can read in this repository (settings defaults,
# .env.example placeholders, the demo's and the documentation's). Compared
# ignoring case and surrounding blanks. tests/core/test_runmode.py checks that
# each secret of .env.example is here.
PUBLISHED_SECRETS = frozenset(
    value.lower()
    for value in (
        DEV_SECRET,
        DEV_INBOUND_SECRET,
        DEV_STAFF_PASSWORD,
        "replace-with-a-long-random-string",
        "replace-me",
        "a-token-for-read-only-report-access",
        "demo-inbound-secret",
        "staff",
        "campaign",
        "secret",
        "password",
        "SG.xxxxx",
    )
)
# Database passwords of the README and .env.example (compose's postgres).
PUBLISHED_DATABASE_PASSWORDS = frozenset({"campaign", "pass", "password", "postgres", "change-me"})
# RFC 2606 / RFC 6761 names: an address under one of them is a placeholder.
PLACEHOLDER_HOSTS = ("example.org", "example.com", "example.net", "localhost")
PLACEHOLDER_SUFFIXES = (".example", ".invalid", ".test", ".localhost")

# Advice, not a secret (hence the noqa for the hard-coded-password rule).
HOW_TO_MAKE_A_SECRET = "the output of `campaign secret` (or: python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"  # noqa: E501, S105


@dataclass(frozen=True)
class Problem:
    """One setting production will not run with."""

    setting: str
    wrong: str
    fix: str

    def line(self) -> str:
        return f"{self.setting} {self.wrong}; to fix: {self.fix}"


class UnsafeSettings(ConfigError):
    """Production refused to start; `problems` holds every reason."""

    def __init__(self, process: str, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__(refusal_text(process, self.problems))


def estimated_bits(value: str) -> float:
    """Length times the Shannon entropy of the value's own characters."""
    if not value:
        return 0.0
    counts = Counter(value)
    size = len(value)
    per_char = -sum(n / size * math.log2(n / size) for n in counts.values())
    return per_char * size


def secret_weakness(value: str | None) -> str | None:
    """Why this value is no secret, or None when it will do."""
    if value is None or not value.strip():
        return "is empty"
    if value.strip().lower() in PUBLISHED_SECRETS:
        return "is a value published in this repository, so anyone can use it"
    size = len(value.encode())
    if size < MIN_SECRET_BYTES:
        return f"is {size} bytes long; it needs at least {MIN_SECRET_BYTES}"
    if estimated_bits(value) < MIN_ESTIMATED_BITS:
        return "has too little entropy (repeated or too few distinct characters)"
    return None


def is_password_hash(value: str) -> bool:
    return value.startswith(PASSWORD_HASH_PREFIXES)


def _password_hash_weakness(stored: str) -> str | None:
    """A werkzeug hash hides the password's length: refuse only what can be told."""
    if stored.count("$") != 2:
        return "looks like a password hash but is not one werkzeug can check"
    for published in (DEV_STAFF_PASSWORD, "replace-me", "staff", "password"):
        if check_password_hash(stored, published):
            return "is the hash of a password published in this repository"
    return None


def _secret(setting: str, value: str | None, why: str, fix: str | None = None) -> Iterator[Problem]:
    weakness = secret_weakness(value)
    if weakness is not None:
        how = fix or f"set {setting} to {HOW_TO_MAKE_A_SECRET}"
        yield Problem(setting, f"{weakness} ({why})", how)


def _staff_password(settings: Settings) -> Iterator[Problem]:
    why = "it opens the dashboard and the staff API"
    fix = (
        "set a passphrase of 32 or more bytes, or better its hash: "
        "`campaign secret --password-hash` asks for it and prints the hash"
    )
    stored = settings.staff_password
    if is_password_hash(stored):
        weakness = _password_hash_weakness(stored)
        if weakness is not None:
            yield Problem("STAFF_PASSWORD", f"{weakness} ({why})", fix)
        return
    yield from _secret("STAFF_PASSWORD", stored, why, fix)


def _flower(settings: Settings, flower: bool) -> Iterator[Problem]:
    value = settings.flower_basic_auth
    fix = "set FLOWER_BASIC_AUTH=user:password with the password from `campaign secret`"
    why = "Flower can revoke tasks and shows every queued batch"
    if value is None:
        if flower:
            yield Problem("FLOWER_BASIC_AUTH", f"is not set ({why})", fix)
        return
    for pair in value.split(","):
        user, _, password = pair.partition(":")
        if not user or not password:
            yield Problem("FLOWER_BASIC_AUTH", "is not a list of user:password pairs", fix)
            return
        weakness = secret_weakness(password)
        if weakness is not None:
            yield Problem("FLOWER_BASIC_AUTH", f"password of {user!r} {weakness} ({why})", fix)


def _public_base_url(settings: Settings) -> Iterator[Problem]:
    fix = "set PUBLIC_BASE_URL to the https:// address where supporters reach the web app"
    parts = urlsplit(settings.public_base_url.strip())
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.scheme.lower() != "https":
        yield Problem(
            "PUBLIC_BASE_URL",
            "is not https (links in every email carry tokens and would travel in clear text)",
            fix,
        )
    elif not host:
        yield Problem("PUBLIC_BASE_URL", "names no host", fix)
    elif host in PLACEHOLDER_HOSTS or host.endswith(
        tuple(f".{h}" for h in PLACEHOLDER_HOSTS) + PLACEHOLDER_SUFFIXES
    ):
        yield Problem("PUBLIC_BASE_URL", f"is still the placeholder host {host}", fix)


def _database_password(settings: Settings) -> Iterator[Problem]:
    try:
        password = make_url(settings.database_url).password
    except ArgumentError:
        return  # not ours to judge here: the engine refuses it with a clearer message
    published = PUBLISHED_DATABASE_PASSWORDS | PUBLISHED_SECRETS
    if password is not None and str(password).strip().lower() in published:
        yield Problem(
            "DATABASE_URL",
            "carries a database password published in this repository",
            "give the database user a password from `campaign secret` (POSTGRES_PASSWORD "
            "under docker compose) and put it in DATABASE_URL",
        )


def production_problems(settings: Settings, *, flower: bool = False) -> list[Problem]:
    """Every setting production refuses, in a stable order; empty when all is well.

    Pure: reads only `settings`. ``flower=True`` adds what only Flower needs
    (its basic-auth credentials must be set).
    """
    return [
        *_secret(
            "SECRET_KEY",
            settings.secret_key,
            "it signs staff sessions and every supporter's action and unsubscribe link",
        ),
        *_staff_password(settings),
        *_secret(
            "INBOUND_SECRET",
            settings.inbound_secret,
            "it lets a sender post replies; SendGrid's Inbound Parse URL carries it too",
        ),
        *(
            _secret("REPORT_TOKEN", settings.report_token, "it reads the report API")
            if settings.report_token is not None
            else ()
        ),
        *(
            _secret("METRICS_TOKEN", settings.metrics_token, "it reads /metrics")
            if settings.metrics_token is not None
            else ()
        ),
        *_flower(settings, flower),
        *_public_base_url(settings),
        *_database_password(settings),
    ]


def refusal_text(process: str, problems: Iterable[Problem]) -> str:
    lines = [f"{process} refuses to start in production mode (CAMPAIGN_MODE=production):"]
    lines += [f"  - {problem.line()}" for problem in problems]
    lines.append(
        "Only on a machine that reaches no real supporter (the demo, development): "
        "CAMPAIGN_MODE=dev."
    )
    return "\n".join(lines)


def refuse_unsafe_start(settings: Settings, process: str, *, flower: bool = False) -> None:
    """Raise UnsafeSettings naming every problem, in production mode only."""
    if not settings.is_production:
        return
    problems = production_problems(settings, flower=flower)
    if problems:
        raise UnsafeSettings(process, problems)
