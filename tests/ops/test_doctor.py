"""`campaign doctor`'s installation checks: each bad setting fed, its finding checked.

Settings are built whole; the SendGrid key is checked live against the local
SendGrid process and against real sockets that refuse, never answer or answer
wrongly. The campaign checks are in test_doctor_campaign.py.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from doctor_fixtures import NOW, PROBE, good_settings, one
from sendgrid_fixtures import API_KEY, Canned, canned, sendgrid_process, sg, silent_url

from sender.core import db
from sender.core.config import DEV_INBOUND_SECRET, DEV_SECRET, DEV_STAFF_PASSWORD
from sender.core.runmode import estimated_bits
from sender.devtools.local_sendgrid.process import LocalSendGrid
from sender.devtools.services import free_port
from sender.ops.doctor import Probe, Status, diagnose, worst
from sender.ops.doctor.settings_checks import (
    check_inbound_domain,
    check_public_url,
    check_secrets,
    check_sendgrid_host,
    check_sendgrid_key,
    check_webhook_key,
    database_finding,
)

__all__ = ["canned", "sendgrid_process", "sg", "silent_url"]  # fixtures used by name


# --- secrets -------------------------------------------------------------------------


def test_good_secrets_pass() -> None:
    (finding,) = check_secrets(good_settings(), PROBE)
    assert finding.status is Status.OK
    assert finding.detail == "long, random and not published"


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("secret_key", DEV_SECRET, "published in this repository"),
        ("staff_password", DEV_STAFF_PASSWORD, "published in this repository"),
        ("inbound_secret", DEV_INBOUND_SECRET, "published in this repository"),
        # The placeholders of .env.example are published values too.
        ("secret_key", "replace-with-a-long-random-string", "published in this repository"),
        ("inbound_secret", "replace-me", "published in this repository"),
        ("secret_key", "x", "1 bytes long; it needs at least 32"),
        ("inbound_secret", "", "is empty"),
        ("secret_key", "   ", "is empty"),
        ("staff_password", "correct-horse-battery", "21 bytes long"),
        ("inbound_secret", "ab" * 20, "too little entropy"),
        ("report_token", "a" * 40, "too little entropy"),
    ],
)
def test_each_weak_secret_fails_naming_it(name: str, value: str, says: str) -> None:
    findings = list(check_secrets(good_settings(**{name: value}), PROBE))
    (finding,) = findings
    assert finding.status is Status.FAIL
    assert finding.detail.startswith(name.upper()) and says in finding.detail
    # The run mode's own advice: a command that makes a good value.
    assert "campaign secret" in finding.fix or "secrets.token_urlsafe" in finding.fix


def test_every_weak_secret_is_named_at_once() -> None:
    settings = good_settings(
        secret_key=DEV_SECRET, staff_password="change-me", inbound_secret="short"
    )
    named = [f.detail.split()[0] for f in check_secrets(settings, PROBE)]
    assert named == ["SECRET_KEY", "STAFF_PASSWORD", "INBOUND_SECRET"]


def test_a_staff_password_hash_is_not_judged_by_its_length() -> None:
    hashed = good_settings(staff_password="scrypt:32768:8:1$salt$" + "ab" * 10)
    assert worst(check_secrets(hashed, PROBE)) is Status.OK


def test_entropy_estimate_tells_random_from_repeated() -> None:
    assert estimated_bits("a" * 64) == 0
    assert estimated_bits(good_settings().secret_key) > 150


# --- SendGrid --------------------------------------------------------------------------


def test_no_sendgrid_key_warns_that_mail_goes_to_the_outbox() -> None:
    (finding,) = check_sendgrid_key(good_settings(), PROBE)
    assert finding.status is Status.WARN
    assert "mail goes to the outbox folder (outbox/), nothing is sent" in finding.detail
    assert check_sendgrid_host(good_settings(), PROBE) == []


def test_a_key_with_mail_send_passes_and_sends_nothing(sg: LocalSendGrid) -> None:
    settings = good_settings(sendgrid_api_key=API_KEY, sendgrid_api_host=sg.base_url)
    (finding,) = check_sendgrid_key(settings, PROBE)
    assert finding.status is Status.OK, finding
    assert f"{sg.base_url} accepts the key, with mail.send" in finding.detail
    assert sg.admin.count() == 0


def test_a_revoked_key_fails_with_sendgrids_answer(sg: LocalSendGrid) -> None:
    settings = good_settings(sendgrid_api_key="SG.revoked", sendgrid_api_host=sg.base_url)
    (finding,) = check_sendgrid_key(settings, PROBE)
    assert finding.status is Status.FAIL
    assert "refused the key (401)" in finding.detail
    assert "invalid, expired, or revoked" in finding.detail
    assert "Settings > API Keys" in finding.fix


def test_a_key_without_mail_send_fails(sg: LocalSendGrid) -> None:
    sg.admin.add_key("SG.stats-only", ["stats.read", "suppression.read"])
    settings = good_settings(sendgrid_api_key="SG.stats-only", sendgrid_api_host=sg.base_url)
    (finding,) = check_sendgrid_key(settings, PROBE)
    assert finding.status is Status.FAIL
    assert "lacks the mail.send permission" in finding.detail
    assert "Mail Send: Full Access" in finding.fix


def test_a_host_that_refuses_connections_cannot_be_reached() -> None:
    host = f"http://127.0.0.1:{free_port()}"
    settings = good_settings(sendgrid_api_key=API_KEY, sendgrid_api_host=host)
    (finding,) = check_sendgrid_key(settings, PROBE)
    assert finding.status is Status.FAIL
    assert finding.detail.startswith(f"cannot reach {host}: ")
    assert "refused" in finding.detail
    assert "SENDGRID_API_HOST" in finding.fix


def test_a_host_that_never_answers_times_out_quickly(silent_url: str) -> None:
    settings = good_settings(sendgrid_api_key=API_KEY, sendgrid_api_host=silent_url)
    started = time.monotonic()
    (finding,) = check_sendgrid_key(settings, Probe(timeout_seconds=0.5))
    assert time.monotonic() - started < 5
    assert finding.status is Status.FAIL
    assert finding.detail.startswith(f"cannot reach {silent_url}: ")
    assert "timed out" in finding.detail


def test_a_host_answering_errors_fails_saying_what_it_answered(canned: Canned) -> None:
    canned.status, canned.body = 500, b'{"errors":[{"message":"internal error","field":null}]}'
    settings = good_settings(sendgrid_api_key=API_KEY, sendgrid_api_host=canned.url)
    (finding,) = check_sendgrid_key(settings, PROBE)
    assert finding.status is Status.FAIL
    assert finding.detail == f"{canned.url}: SendGrid answered 500: internal error"
    assert "try again" in finding.fix


def test_a_host_that_is_not_sendgrid_fails(canned: Canned) -> None:
    canned.body = b"<html>captive portal</html>"
    settings = good_settings(sendgrid_api_key=API_KEY, sendgrid_api_host=canned.url)
    (finding,) = check_sendgrid_key(settings, PROBE)
    assert finding.status is Status.FAIL
    assert "without a scopes list" in finding.detail


@pytest.mark.parametrize(
    "host",
    ["https://api.sendgrid.com", "HTTPS://API.sendgrid.com:443/", "https://api.eu.sendgrid.com"],
)
def test_sendgrids_own_hosts_pass_however_written(host: str) -> None:
    settings = good_settings(sendgrid_api_key=API_KEY, sendgrid_api_host=host)
    assert worst(check_sendgrid_host(settings, PROBE)) is Status.OK


@pytest.mark.parametrize("host", ["http://127.0.0.1:8025", "http://api.sendgrid.com"])
def test_another_host_is_a_warning(host: str) -> None:
    settings = good_settings(sendgrid_api_key=API_KEY, sendgrid_api_host=host)
    (finding,) = check_sendgrid_host(settings, PROBE)
    assert finding.status is Status.WARN
    assert "not SendGrid's" in finding.detail


# --- the webhook key --------------------------------------------------------------------


def _encoded(key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> str:
    der = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def test_sendgrids_p256_verification_key_passes(sg: LocalSendGrid) -> None:
    settings = good_settings(sendgrid_webhook_public_key=sg.public_key)
    (finding,) = check_webhook_key(settings, PROBE)
    assert finding.status is Status.OK
    assert "P-256" in finding.detail


def test_a_missing_webhook_key_fails_once_sendgrid_is_used() -> None:
    (without,) = check_webhook_key(good_settings(), PROBE)
    assert without.status is Status.WARN  # outbox mode: no events come anyway
    (with_key,) = check_webhook_key(good_settings(sendgrid_api_key=API_KEY), PROBE)
    assert with_key.status is Status.FAIL
    assert "event webhooks are refused" in with_key.detail
    assert "Signed Event Webhook" in with_key.fix


@pytest.mark.parametrize(
    ("encoded", "says"),
    [
        ("not base64 at all!", "not base64 DER"),
        (base64.b64encode(b"hello").decode(), "not base64 DER"),
        (_encoded(rsa.generate_private_key(65537, 2048).public_key()), "not an elliptic-curve key"),
        (_encoded(ec.generate_private_key(ec.SECP384R1()).public_key()), "secp384r1 key"),
    ],
)
def test_a_webhook_key_that_does_not_parse_as_sendgrids_fails(encoded: str, says: str) -> None:
    (finding,) = check_webhook_key(good_settings(sendgrid_webhook_public_key=encoded), PROBE)
    assert finding.status is Status.FAIL
    assert says in finding.detail


# --- addresses --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://act.example.org", "an example or local address"),
        ("http://act.rights.ngo", "unencrypted"),
        ("https://localhost:8000", "an example or local address"),
    ],
)
def test_public_url_must_be_https_and_not_an_example(url: str, says: str) -> None:
    (finding,) = check_public_url(good_settings(public_base_url=url), PROBE)
    assert finding.status is Status.FAIL
    assert says in finding.detail


def test_a_real_https_public_url_passes() -> None:
    assert worst(check_public_url(good_settings(), PROBE)) is Status.OK


def test_example_inbound_domain_fails_and_example_mailto_warns() -> None:
    settings = good_settings(inbound_domain="parse.example.org", unsubscribe_mailto="u@example.com")
    found = list(check_inbound_domain(settings, PROBE))
    assert [f.status for f in found] == [Status.FAIL, Status.WARN]
    assert "parse.example.org" in found[0].detail and "mx.sendgrid.net" in found[0].fix
    assert "u@example.com" in found[1].detail


def test_own_inbound_domain_passes() -> None:
    (finding,) = check_inbound_domain(good_settings(), PROBE)
    assert finding.status is Status.OK
    assert "reply+TOKEN@parse.rights.ngo" in finding.detail


# --- the database -----------------------------------------------------------------------


def test_a_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "nothing-here.db"
    found, engine = database_finding(good_settings(database_url=f"sqlite:///{path}"), db.get_engine)
    assert found.status is Status.WARN and engine is None
    assert "campaign db upgrade" in found.fix
    assert not path.exists()


def test_an_unreachable_database_fails_without_the_password() -> None:
    url = f"postgresql://campaign:hunter2hunter2@127.0.0.1:{free_port()}/campaign"
    found, engine = database_finding(good_settings(database_url=url), db.get_engine)
    assert found.status is Status.FAIL and engine is None
    assert found.detail.startswith("cannot open 127.0.0.1:")
    assert "hunter2" not in found.detail


def test_an_old_schema_stops_the_campaign_checks(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = db.get_engine(url)
    db.upgrade(engine, "0001")
    findings = diagnose(good_settings(database_url=url), NOW, engine_for=db.get_engine)
    found = one(findings, "database", Status.WARN)  # SQLite: any command upgrades it
    assert "schema at 0001" in found.detail
    assert not [f for f in findings if f.check.startswith("w4r")]
    assert db.current_revision(engine) == "0001"  # the doctor upgraded nothing
