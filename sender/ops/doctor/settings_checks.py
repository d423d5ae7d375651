"""The installation's checks: secrets, SendGrid, webhooks, addresses, the database.

Each takes the settings (and the Probe for the one live call) and returns
Findings; SETTINGS_CHECKS lists them in the order they print.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from sender.core import db
from sender.core.config import Settings
from sender.core.errors import ConfigError, TransportError
from sender.core.runmode import production_problems
from sender.ops.doctor.findings import Finding, Probe, Status
from sender.send.transport.base import NotAuthorised
from sender.send.transport.sendgrid import MAIL_SEND_SCOPE, SendGridTransport, Unreachable
from sender.track.providers.sendgrid_signature import load_public_key

Check = Callable[[Settings, Probe], Iterable[Finding]]

# --- secrets --------------------------------------------------------------------

# The settings whose run-mode problems this check reports; the others
# (PUBLIC_BASE_URL, ...) have checks of their own below.
SECRETS = (
    "SECRET_KEY",
    "STAFF_PASSWORD",
    "INBOUND_SECRET",
    "REPORT_TOKEN",
    "METRICS_TOKEN",
    "FLOWER_BASIC_AUTH",
    "DATABASE_URL",
)


def _secret_findings(settings: Settings) -> list[Finding]:
    """Published, placeholder, short or guessable secrets: what production refuses.

    The run mode (sender.core.runmode.production_problems) judges them, so the
    doctor and the refusal to start always agree.
    """
    problems = [p for p in production_problems(settings) if p.setting in SECRETS]
    if not problems:
        return [Finding("secrets", Status.OK, "long, random and not published")]
    return [
        Finding("secrets", Status.FAIL, f"{problem.setting} {problem.wrong}", problem.fix)
        for problem in problems
    ]


def check_secrets(settings: Settings, probe: Probe) -> Iterable[Finding]:
    return _secret_findings(settings)


# --- SendGrid ---------------------------------------------------------------------

SENDGRID_HOSTS = ("https://api.sendgrid.com", "https://api.eu.sendgrid.com")
KEY_FIX = (
    "in SendGrid, Settings > API Keys: create a key with Mail Send access "
    "and set SENDGRID_API_KEY to it"
)


def normal_host(url: str) -> str:
    """`HTTPS://API.sendgrid.com:443/` and `https://api.sendgrid.com` are one host."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    default = {"https": 443, "http": 80}.get(parts.scheme.lower())
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme.lower()}://{host}{port}"


def check_sendgrid_host(settings: Settings, probe: Probe) -> Iterable[Finding]:
    if not settings.sendgrid_api_key:
        return []
    host = normal_host(settings.sendgrid_api_host)
    if host in SENDGRID_HOSTS:
        return [Finding("SendGrid host", Status.OK, f"mail goes out through {host}")]
    return [
        Finding(
            "SendGrid host",
            Status.WARN,
            f"SENDGRID_API_HOST is {settings.sendgrid_api_host}, not SendGrid's: "
            "mail goes to that server, fine for a test server only",
            f"for real mail set SENDGRID_API_HOST={SENDGRID_HOSTS[0]} "
            f"(EU subusers: {SENDGRID_HOSTS[1]})",
        )
    ]


def check_sendgrid_key(settings: Settings, probe: Probe) -> Iterable[Finding]:
    """A live call: SendGrid lists the key's scopes, and sending needs mail.send."""
    key, host = settings.sendgrid_api_key, settings.sendgrid_api_host.rstrip("/")
    if not key:
        detail = "SENDGRID_API_KEY is not set: mail goes to the outbox folder "
        detail += f"({settings.outbox_dir}/), nothing is sent"
        return [Finding("SendGrid key", Status.WARN, detail, KEY_FIX)]
    transport = SendGridTransport(key, host=host, timeout_seconds=probe.timeout_seconds)
    try:
        scopes = transport.scopes()
    except Unreachable as error:
        fix = "check SENDGRID_API_HOST, DNS and the firewall; SendGrid's host is "
        fix += f"{SENDGRID_HOSTS[0]} ({SENDGRID_HOSTS[1]} for EU subusers)"
        return [Finding("SendGrid key", Status.FAIL, str(error), fix)]
    except NotAuthorised as error:
        detail = f"{host} refused the key ({error.status_code}): {error}"
        return [Finding("SendGrid key", Status.FAIL, detail, KEY_FIX)]
    except TransportError as error:
        fix = "try again in a few minutes; if it persists, see status.sendgrid.com"
        return [Finding("SendGrid key", Status.FAIL, f"{host}: {error}", fix)]
    if MAIL_SEND_SCOPE not in scopes:
        detail = f"{host} knows the key, but it lacks the {MAIL_SEND_SCOPE} permission: "
        detail += "every batch would be refused (403)"
        fix = "in SendGrid, Settings > API Keys: edit the key, Mail Send: Full Access"
        return [Finding("SendGrid key", Status.FAIL, detail, fix)]
    detail = f"{host} accepts the key, with {MAIL_SEND_SCOPE} among its {len(scopes)} scopes"
    return [Finding("SendGrid key", Status.OK, detail)]


def check_webhook_key(settings: Settings, probe: Probe) -> Iterable[Finding]:
    """The Event Webhook's verification key parses as the verifier reads it."""
    # Without SendGrid no events come, so a missing key only matters once mail goes out.
    missing = Status.FAIL if settings.sendgrid_api_key else Status.WARN
    encoded = settings.sendgrid_webhook_public_key
    fix = "in SendGrid, Settings > Mail Settings > Event Webhook: turn on Signed Event "
    fix += "Webhook and copy its Verification Key into SENDGRID_WEBHOOK_PUBLIC_KEY"
    if not encoded:
        detail = "SENDGRID_WEBHOOK_PUBLIC_KEY is not set: event webhooks are refused, so no "
        detail += "delivery, open, bounce or unsubscribe event is recorded"
        return [Finding("webhook key", missing, detail, fix)]
    try:
        key = load_public_key(encoded)
    except ConfigError as error:
        return [Finding("webhook key", Status.FAIL, str(error), fix)]
    if key.curve.name != "secp256r1":
        detail = f"SENDGRID_WEBHOOK_PUBLIC_KEY is a {key.curve.name} key; SendGrid signs "
        detail += "with P-256, so no batch would verify"
        return [Finding("webhook key", Status.FAIL, detail, fix)]
    detail = "an ECDSA P-256 key: signed event batches can be verified"
    return [Finding("webhook key", Status.OK, detail)]


# --- addresses --------------------------------------------------------------------

# RFC 2606 / RFC 6761: names that can never be someone's real domain.
RESERVED_NAMES = ("example", "test", "invalid", "localhost")
RESERVED_DOMAINS = ("example.org", "example.com", "example.net")


def is_example_domain(domain: str) -> bool:
    name = domain.lower().rstrip(".")
    if name in RESERVED_DOMAINS or any(name.endswith(f".{d}") for d in RESERVED_DOMAINS):
        return True
    return name.rsplit(".", 1)[-1] in RESERVED_NAMES


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().lower().rstrip(".")


def check_public_url(settings: Settings, probe: Probe) -> Iterable[Finding]:
    url = settings.public_base_url
    parts = urlsplit(url)
    fix = "set PUBLIC_BASE_URL to the https address where the web app is reachable"
    if is_example_domain(parts.hostname or ""):
        detail = f"PUBLIC_BASE_URL is {url}, an example or local address: every action and "
        detail += "unsubscribe link in the emails would lead nowhere"
        return [Finding("public URL", Status.FAIL, detail, fix)]
    if parts.scheme.lower() != "https":
        detail = f"PUBLIC_BASE_URL is {url}: links, tokens and staff logins would "
        detail += "travel unencrypted, and mailbox providers distrust http links"
        return [Finding("public URL", Status.FAIL, detail, fix)]
    return [Finding("public URL", Status.OK, f"links point at {url}")]


def check_inbound_domain(settings: Settings, probe: Probe) -> Iterable[Finding]:
    """Replies go to reply+TOKEN@INBOUND_DOMAIN, and a mail to UNSUBSCRIBE_MAILTO unsubscribes."""
    findings = []
    domain = settings.inbound_domain
    if is_example_domain(domain):
        detail = f"INBOUND_DOMAIN is {domain}, an example domain: replies and STOP "
        detail += "mails reach nobody"
        fix = "set INBOUND_DOMAIN to a subdomain you own (e.g. parse.<from domain>), with "
        fix += "an MX record to mx.sendgrid.net and an entry in SendGrid's Inbound Parse"
        findings.append(Finding("inbound domain", Status.FAIL, detail, fix))
    mailto = settings.unsubscribe_mailto
    if is_example_domain(domain_of(mailto)):
        detail = f"UNSUBSCRIBE_MAILTO is {mailto}: unsubscribing by mail reaches nobody"
        fix = "set UNSUBSCRIBE_MAILTO to an address at a domain routed to Inbound Parse"
        findings.append(Finding("inbound domain", Status.WARN, detail, fix))
    if not findings:
        detail = f"replies go to reply+TOKEN@{domain}, unsubscribe mails to {mailto}"
        findings.append(Finding("inbound domain", Status.OK, detail))
    return findings


SETTINGS_CHECKS: tuple[Check, ...] = (
    check_secrets,
    check_sendgrid_host,
    check_sendgrid_key,
    check_webhook_key,
    check_public_url,
    check_inbound_domain,
)


# --- the database -------------------------------------------------------------------


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL, None for other databases or an in-memory one."""
    normal = db.normalise_url(url)
    if not normal.startswith("sqlite:///") or ":memory:" in normal:
        return None
    return Path(normal[len("sqlite:///") :])


def database_finding(
    settings: Settings, engine_for: Callable[[str], Engine]
) -> tuple[Finding, Engine | None]:
    """Whether the database opens at this release's schema; its engine only if so."""
    url = settings.database_url
    where = db.normalise_url(url).rpartition("@")[2]  # never print a password
    file = sqlite_file(url)
    if file is not None and not file.exists():  # opening it would create it
        detail = f"no database at {file} yet: the campaign checks need one"
        return Finding("database", Status.WARN, detail, "campaign db upgrade"), None
    try:
        engine = engine_for(url)
        current, head = db.current_revision(engine), db.head_revision()
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        fix = "check DATABASE_URL and that the database server is running"
        return Finding("database", Status.FAIL, f"cannot open {where}: {reason}", fix), None
    if current != head:
        # Any command brings SQLite up to date by itself; PostgreSQL waits for staff.
        status = Status.WARN if db.is_sqlite(engine) else Status.FAIL
        detail = f"schema at {current or 'nothing'}, this release needs {head}: "
        detail += "the campaign checks wait for it"
        return Finding("database", status, detail, "campaign db upgrade"), None
    return Finding("database", Status.OK, f"{where}, schema up to date"), engine
