"""`campaign doctor`'s checks: each bad configuration fed, its finding checked.

Settings are built whole; campaigns, waves and cases are real rows on PostgreSQL
and SQLite; the SendGrid key is checked live against the local SendGrid process.
"""

from __future__ import annotations

import base64
import time
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from doctor_fixtures import (
    NOW,
    add_campaign,
    add_case,
    add_wave,
    database_url,
    good_settings,
    of,
    one,
    rows,
    text_in,
)
from sendgrid_fixtures import API_KEY, Canned, canned, sendgrid_process, sg, silent_url
from sqlalchemy import Engine

from sender.core import db
from sender.core.config import DEV_INBOUND_SECRET, DEV_SECRET, DEV_STAFF_PASSWORD, Settings
from sender.core.vocabulary import CampaignStatus, WaveStatus
from sender.devtools.local_sendgrid.process import LocalSendGrid
from sender.devtools.services import free_port
from sender.ops.doctor import Finding, Probe, Status, diagnose, worst
from sender.ops.doctor.settings_checks import (
    check_inbound_domain,
    check_public_url,
    check_secrets,
    check_sendgrid_host,
    check_sendgrid_key,
    check_webhook_key,
    database_finding,
    estimated_bits,
)

__all__ = ["canned", "sendgrid_process", "sg", "silent_url"]  # fixtures used by name

PROBE = Probe(timeout_seconds=5)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def run(
    engine: Engine,
    settings: Settings | None = None,
    slug: str | None = None,
    probe: Probe = PROBE,
) -> list[Finding]:
    """The doctor over `engine`, with the good settings unless others are given."""
    chosen = (settings or good_settings()).model_copy(update={"database_url": database_url(engine)})
    return diagnose(chosen, NOW, slug=slug, probe=probe, engine_for=lambda url: engine)


def run_unchanged(engine: Engine, slug: str | None = None) -> list[Finding]:
    """The doctor, checking that it left every row as it was."""
    before = rows(engine)
    findings = run(engine, slug=slug)
    assert rows(engine) == before
    return findings


# --- secrets -------------------------------------------------------------------------


def test_good_secrets_pass() -> None:
    (finding,) = check_secrets(good_settings(), PROBE)
    assert finding.status is Status.OK
    assert "SECRET_KEY, STAFF_PASSWORD, INBOUND_SECRET" in finding.detail


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("secret_key", DEV_SECRET, "published in this repository"),
        ("staff_password", DEV_STAFF_PASSWORD, "published in this repository"),
        ("inbound_secret", DEV_INBOUND_SECRET, "published in this repository"),
        ("secret_key", "replace-with-a-long-random-string", "placeholder"),
        ("inbound_secret", "replace-me", "placeholder"),
        ("secret_key", "x", "1 bytes long; at least 32"),
        ("inbound_secret", "", "is empty"),
        ("secret_key", "   ", "is empty"),
        ("staff_password", "correct-horse-battery", "21 bytes long"),
        ("inbound_secret", "ab" * 20, "too few characters"),
        ("report_token", "a" * 40, "too few characters"),
    ],
)
def test_each_weak_secret_fails_naming_it(name: str, value: str, says: str) -> None:
    findings = list(check_secrets(good_settings(**{name: value}), PROBE))
    (finding,) = findings
    assert finding.status is Status.FAIL
    assert finding.detail.startswith(name.upper()) and says in finding.detail
    assert "secrets.token_urlsafe" in finding.fix


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


# --- campaigns: which are checked ---------------------------------------------------------


def test_no_open_campaign_warns_and_names_the_closed_ones(any_engine: Engine) -> None:
    add_campaign(any_engine, "w4r-2020", status=CampaignStatus.CLOSED)
    found = one(run_unchanged(any_engine), "campaign", Status.WARN)
    assert "no open campaign (campaigns: w4r-2020)" in found.detail
    assert "campaign init DIR" in found.fix


def test_an_unknown_campaign_fails_naming_those_there_are(any_engine: Engine) -> None:
    add_campaign(any_engine, "w4r-2020")
    add_campaign(any_engine, "w4r-2026")
    found = one(run_unchanged(any_engine, slug="w4r-2025"), "campaign", Status.FAIL)
    assert "no campaign 'w4r-2025' here (campaigns: w4r-2020, w4r-2026)" in found.detail


def test_every_open_campaign_is_checked_without_a_slug(any_engine: Engine) -> None:
    add_campaign(any_engine, "w4r-2026")
    add_campaign(any_engine, "de-2026")
    add_campaign(any_engine, "w4r-2020", status=CampaignStatus.CLOSED)
    checked = {f.check.split(":")[0] for f in run_unchanged(any_engine) if ":" in f.check}
    assert checked == {"w4r-2026", "de-2026"}
    named = {f.check.split(":")[0] for f in run(any_engine, slug="w4r-2020") if ":" in f.check}
    assert named == {"w4r-2020"}


def test_a_closed_campaign_is_only_reported_closed(any_engine: Engine) -> None:
    campaign = add_campaign(any_engine, "w4r-2020", status=CampaignStatus.CLOSED)
    add_wave(any_engine, campaign, "late", WaveStatus.DRAFT, NOW - 3 * DAY, NOW - DAY)
    findings = [f for f in run(any_engine, slug="w4r-2020") if f.check.startswith("w4r")]
    assert [(f.check, f.status) for f in findings] == [("w4r-2020: window", Status.OK)]
    assert "closed" in findings[0].detail


# --- the window ------------------------------------------------------------------------


def test_a_running_window_says_how_long_is_left(any_engine: Engine) -> None:
    add_campaign(any_engine)
    found = one(run_unchanged(any_engine), "w4r-2026: window", Status.OK)
    assert found.detail == "running until 2026-12-23 09:00 Europe/London: 20 days left"


def test_a_window_not_started_warns_with_its_date(any_engine: Engine) -> None:
    add_campaign(any_engine, window_start=NOW + 3 * DAY, window_end=NOW + 30 * DAY)
    found = one(run_unchanged(any_engine), "w4r-2026: window", Status.WARN)
    assert "opens 2026-12-06 09:00 Europe/London, 3 days from now" in found.detail


def test_an_ended_window_still_open_warns_to_close_it(any_engine: Engine) -> None:
    add_campaign(any_engine, window_start=NOW - 60 * DAY, window_end=NOW - 2 * HOUR)
    found = one(run_unchanged(any_engine), "w4r-2026: window", Status.WARN)
    assert "ended 2026-12-03 07:00 Europe/London, 2 hours ago, but is still open" in found.detail
    assert "`campaign campaigns close w4r-2026`" in found.fix


# --- the domains ------------------------------------------------------------------------


def test_a_reply_domain_under_the_from_domain_aligns(any_engine: Engine) -> None:
    add_campaign(any_engine)  # INBOUND_DOMAIN parse.rights.ngo, From rights.ngo
    found = one(run_unchanged(any_engine), "w4r-2026: domains", Status.OK)
    assert "under the From domain rights.ngo" in found.detail


def test_a_campaign_reply_domain_elsewhere_warns_and_explains(any_engine: Engine) -> None:
    add_campaign(any_engine, reply_domain="replies.other-host.net")
    found = one(run_unchanged(any_engine), "w4r-2026: domains", Status.WARN)
    assert "replies go to replies.other-host.net (sender.reply_domain)" in found.detail
    assert "DMARC" in found.detail and "parse.rights.ngo" in found.fix


def test_the_installation_inbound_domain_is_used_when_the_campaign_has_none(
    any_engine: Engine,
) -> None:
    add_campaign(any_engine, from_email="team@amnesty.de")
    found = one(run(any_engine), "w4r-2026: domains", Status.WARN)
    assert "from amnesty.de but replies go to parse.rights.ngo (INBOUND_DOMAIN)" in found.detail


def test_an_example_from_address_fails(any_engine: Engine) -> None:
    add_campaign(any_engine, from_email="campaigns@example.org")
    found = one(run_unchanged(any_engine), "w4r-2026: domains", Status.FAIL)
    assert "Sender Authentication" in found.fix


# --- the waves --------------------------------------------------------------------------


def test_waves_that_would_be_missed_are_each_named(any_engine: Engine) -> None:
    campaign = add_campaign(any_engine)
    add_wave(any_engine, campaign, "gone", WaveStatus.SCHEDULED, NOW - 3 * DAY, NOW - HOUR)
    add_wave(any_engine, campaign, "due", WaveStatus.SCHEDULED, NOW - HOUR, NOW + DAY)
    add_wave(any_engine, campaign, "forgotten", WaveStatus.DRAFT, NOW - HOUR, NOW + DAY)
    add_wave(any_engine, campaign, "expired", WaveStatus.DRAFT, NOW - 3 * DAY, NOW - DAY)
    add_wave(any_engine, campaign, "soon", WaveStatus.DRAFT, NOW + 3 * HOUR, NOW + DAY)
    add_wave(any_engine, campaign, "late", WaveStatus.DRAFT, NOW + 10 * DAY, NOW + 25 * DAY)
    found = of(run_unchanged(any_engine), "w4r-2026: waves")
    by_wave = {f.detail.split("wave ")[1].split()[0]: f for f in found}
    assert sorted(by_wave) == ["due", "expired", "forgotten", "gone", "late", "soon"]
    assert by_wave["gone"].status is Status.FAIL and "no scheduler" in by_wave["gone"].detail
    assert "celery -A worker beat" in by_wave["gone"].fix
    assert by_wave["due"].status is Status.FAIL and "still not planned" in by_wave["due"].detail
    assert by_wave["forgotten"].status is Status.FAIL
    assert "`campaign wave launch forgotten`" in by_wave["forgotten"].fix
    assert "can never send" in by_wave["expired"].detail
    assert by_wave["soon"].status is Status.WARN
    assert "starts 2026-12-03 12:00 Europe/London, 3 hours from now" in by_wave["soon"].detail
    assert by_wave["late"].status is Status.FAIL
    assert "outside the campaign window" in by_wave["late"].detail


def test_waves_on_course_pass(any_engine: Engine) -> None:
    campaign = add_campaign(any_engine)
    add_wave(any_engine, campaign, "sent", WaveStatus.DONE, NOW - 5 * DAY, NOW - 3 * DAY, NOW)
    add_wave(any_engine, campaign, "going", WaveStatus.SENDING, NOW - HOUR, NOW + DAY, NOW)
    add_wave(
        any_engine,
        campaign,
        "just-due",
        WaveStatus.SCHEDULED,
        NOW - timedelta(minutes=1),
        NOW + DAY,
    )
    add_wave(any_engine, campaign, "launched", WaveStatus.SCHEDULED, NOW + DAY, NOW + 2 * DAY)
    add_wave(any_engine, campaign, "later", WaveStatus.DRAFT, NOW + 3 * DAY, NOW + 4 * DAY)
    add_wave(any_engine, campaign, "dropped", WaveStatus.CANCELLED, NOW - 3 * DAY, NOW - DAY)
    found = one(run_unchanged(any_engine), "w4r-2026: waves", Status.OK)
    assert found.detail == "6 waves, none at risk of being missed"


def test_no_waves_warns(any_engine: Engine) -> None:
    add_campaign(any_engine)
    found = one(run_unchanged(any_engine), "w4r-2026: waves", Status.WARN)
    assert "campaign plan apply" in found.fix


# --- the cases --------------------------------------------------------------------------


def test_cases_without_a_declared_language_are_named(any_engine: Engine) -> None:
    campaign = add_campaign(any_engine, languages=["en", "es", "fa"])
    add_case(any_engine, campaign, "nassima", text_in("en", "es", "fa"))
    add_case(any_engine, campaign, "jani", text_in("en"))
    add_case(any_engine, campaign, "germain", text_in("en", "es"))
    found = of(run_unchanged(any_engine), "w4r-2026: cases")
    assert [(f.status, f.detail) for f in found] == [
        (Status.WARN, "case germain has no text in fa: supporters reading it get English"),
        (Status.WARN, "case jani has no text in es, fa: supporters reading those get English"),
    ]
    assert "content.es" in found[1].fix and "campaign cases load" in found[1].fix


def test_a_case_missing_a_field_or_english_fails(any_engine: Engine) -> None:
    campaign = add_campaign(any_engine, languages=["en", "es"])
    partial = text_in("en", "es")
    del partial["es"]["letter"]
    add_case(any_engine, campaign, "nassima", partial)
    add_case(any_engine, campaign, "jani", text_in("es"))
    found = of(run_unchanged(any_engine), "w4r-2026: cases")
    details = {f.detail: f.status for f in found}
    assert details == {
        "case jani: no content in 'en' nor in English": Status.FAIL,
        "case nassima: content.es lacks field 'letter'": Status.FAIL,
    }


def test_cases_in_every_language_pass(any_engine: Engine) -> None:
    campaign = add_campaign(any_engine)
    add_case(any_engine, campaign, "nassima", text_in("en", "es"))
    found = one(run_unchanged(any_engine), "w4r-2026: cases", Status.OK)
    assert found.detail == "1 case, each with text in every declared language (en, es)"


def test_no_languages_fails_and_no_cases_warns(any_engine: Engine) -> None:
    add_campaign(any_engine, "bare", languages=[])
    add_campaign(any_engine, "empty")
    findings = run_unchanged(any_engine)
    assert "declares no languages" in one(findings, "bare: cases", Status.FAIL).detail
    assert "campaign cases load" in one(findings, "empty: cases", Status.WARN).fix


def test_a_well_kept_installation_has_nothing_to_fix(any_engine: Engine, sg: LocalSendGrid) -> None:
    campaign = add_campaign(any_engine)
    add_case(any_engine, campaign, "nassima", text_in("en", "es"))
    add_wave(any_engine, campaign, "case-email", WaveStatus.SCHEDULED, NOW + DAY, NOW + 3 * DAY)
    settings = good_settings(
        sendgrid_api_key=API_KEY,
        sendgrid_api_host=sg.base_url,
        sendgrid_webhook_public_key=sg.public_key,
    )
    findings = run(any_engine, settings, probe=PROBE)
    not_ok = [(f.check, f.status) for f in findings if f.status is not Status.OK]
    assert not_ok == [("SendGrid host", Status.WARN)]  # the local server is not SendGrid's
    assert sg.admin.count() == 0
