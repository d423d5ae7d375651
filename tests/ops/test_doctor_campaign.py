"""`campaign doctor`'s campaign checks: which campaigns, window, domains, waves, cases.

Campaigns, waves and cases are real rows on PostgreSQL and SQLite; every run
checks that the doctor left them as they were.
"""

from __future__ import annotations

from datetime import timedelta

from doctor_fixtures import (
    NOW,
    PROBE,
    add_campaign,
    add_case,
    add_wave,
    good_settings,
    of,
    one,
    run,
    run_unchanged,
    text_in,
)
from sendgrid_fixtures import API_KEY, sendgrid_process, sg
from sqlalchemy import Engine

from sender.core.vocabulary import CampaignStatus, WaveStatus
from sender.devtools.local_sendgrid.process import LocalSendGrid
from sender.ops.doctor import Status

__all__ = ["sendgrid_process", "sg"]  # fixtures used by name

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


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
