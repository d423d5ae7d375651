"""SendGridTransport against the local SendGrid process: every answer mapped."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from sendgrid_fixtures import (
    API_KEY,
    Canned,
    batch,
    canned,
    recipient,
    sendgrid_process,
    sg,
    silent_url,
)
from sending_fixtures import DEC1, add_case, add_supporters, add_wave
from sqlalchemy import Engine

from sender.core.clock import MovableClock
from sender.core.config import Settings, get_settings
from sender.core.db import session_scope
from sender.core.mail import Address, Recipient
from sender.devtools.local_sendgrid.process import LocalSendGrid
from sender.devtools.services import free_port
from sender.devtools.waiting import wait_until
from sender.send import store as repo
from sender.send.batch import BatchOutcome
from sender.send.batch_store import SqlSendStore
from sender.send.pipeline import Sender, send_batch
from sender.send.planner import plan_wave
from sender.send.ratelimit import LocalTokenBucket
from sender.send.transport.base import Accepted, NotAuthorised, OutcomeUnknown, Rejected, RetryLater
from sender.send.transport.outbox import OutboxTransport
from sender.send.transport.select import transport_for
from sender.send.transport.sendgrid import (
    MAIL_SEND_SCOPE,
    MAX_NAME_LENGTH,
    SendGridTransport,
    TrackingSettings,
    Unreachable,
    ascii_categories,
    error_for_status,
    mail_body,
    safe_name,
)

__all__ = ["canned", "sendgrid_process", "sg", "silent_url"]  # fixtures used by name


def transport(sg: LocalSendGrid, *, timeout: float = 10.0, key: str = API_KEY) -> SendGridTransport:
    return SendGridTransport(key, host=sg.base_url, timeout_seconds=timeout)


def test_202_is_accepted_with_the_message_id(sg: LocalSendGrid) -> None:
    result = transport(sg).send(batch(3))
    assert isinstance(result, Accepted)
    assert result.status_code == 202
    rows = sg.admin.recipients()
    assert {r["message_id"] for r in rows} == {result.provider_message_id}


def test_personalizations_keep_the_batch_order_and_parts(sg: LocalSendGrid) -> None:
    order = [7, 2, 9, 0, 5]
    outgoing = batch(recipients=tuple(recipient(i) for i in order))
    transport(sg).send(outgoing)
    rows = sg.admin.recipients()
    assert [r["email"] for r in rows] == [f"supporter{i}@example.net" for i in order]
    first = rows[0]
    assert first["subject"] == "Name7, a letter can free someone"
    assert first["custom_args"] == {"message_id": "m7", "wave_id": "w1"}
    assert first["headers"]["List-Unsubscribe"] == "<https://act.example.org/u/7>"
    assert first["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert first["links"] == ["https://act.example.org/a/7"]
    assert first["reply_to"] == "reply+tok123@parse.example.org"
    assert first["from"] == "campaigns@example.org"
    assert first["categories"] == ["w4r-2020", "wave-1"]


def test_non_ascii_parts_arrive_as_written(sg: LocalSendGrid) -> None:
    # The body is UTF-8 from orjson, not json.dumps' \u escapes: both must read the same.
    subject = "-first_name-، رسالة واحدة قد تغيّر حياة"
    outgoing = batch(1, subject=subject, recipients=(recipient(0, **{"-city-": "Zürich"}),))
    transport(sg).send(outgoing)
    first = sg.admin.recipients()[0]
    assert first["subject"] == "Name0، رسالة واحدة قد تغيّر حياة"
    assert first["substitutions"]["-city-"] == "Zürich"


def test_the_clients_debug_log_names_the_body_size_not_its_addresses(
    sg: LocalSendGrid, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("DEBUG", logger="python_http_client"):
        transport(sg).send(batch(2))
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "bytes of JSON>" in logged
    assert "supporter0@example.net" not in logged


def test_body_shape_text_before_html() -> None:
    body = mail_body(batch(2))
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert body["from"] == {"email": "campaigns@example.org", "name": "Write for Rights"}
    assert all(len(p["to"]) == 1 for p in body["personalizations"])


def test_429_is_retry_later_with_the_wait_from_reset(sg: LocalSendGrid) -> None:
    sg.admin.set_faults(rates={"rate_limited": 1.0}, rate_limit_reset_seconds=30)
    with pytest.raises(RetryLater) as caught:
        transport(sg).send(batch(2))
    assert caught.value.status_code == 429
    assert caught.value.wait_seconds is not None
    assert 28 <= caught.value.wait_seconds <= 31
    assert sg.admin.count() == 0


def test_429_reset_in_the_past_waits_zero() -> None:
    err = error_for_status(429, b"", {"X-RateLimit-Reset": "100"}, now=200.0)
    assert isinstance(err, RetryLater)
    assert err.wait_seconds == 0


@pytest.mark.parametrize(("plan", "status"), [
    ({"rates": {"server_error": 1.0}}, 500),
    ({"forced": [{"status": 502}]}, 502),
    ({"rates": {"unavailable": 1.0}}, 503),
    ({"forced": [{"status": 504}]}, 504),
])  # fmt: skip
def test_5xx_is_retry_later(sg: LocalSendGrid, plan: dict[str, object], status: int) -> None:
    sg.admin.set_faults(**plan)
    with pytest.raises(RetryLater) as caught:
        transport(sg).send(batch(2))
    assert caught.value.status_code == status
    assert caught.value.wait_seconds is None


def test_connection_refused_is_retry_later() -> None:
    nobody = SendGridTransport(API_KEY, host=f"http://127.0.0.1:{free_port()}", timeout_seconds=2)
    with pytest.raises(RetryLater, match="could not hand the request"):
        nobody.send(batch(1))


@pytest.mark.parametrize(("fault", "recorded"), [("hang", 0), ("accept_then_hang", 2)])
def test_read_timeout_is_outcome_unknown(sg: LocalSendGrid, fault: str, recorded: int) -> None:
    sg.admin.set_faults(rates={fault: 1.0}, hang_seconds=1.5)
    dropped = _dropped(sg)
    started = time.monotonic()
    with pytest.raises(OutcomeUnknown, match="may have been accepted"):
        transport(sg, timeout=0.5).send(batch(2))
    assert time.monotonic() - started < 1.4  # the transport gave up; it did not wait it out
    wait_until(lambda: _dropped(sg) > dropped, 10, "the server to finish hanging")
    assert sg.admin.count() == recorded  # why a timeout cannot be retried blindly


def _dropped(sg: LocalSendGrid) -> int:
    return int(sg.admin.stats()["counters"].get("dropped", 0))


@pytest.mark.parametrize(("fault", "recorded"), [("drop_before", 0), ("drop_after", 2)])
def test_dropped_connection_after_sending_is_outcome_unknown(
    sg: LocalSendGrid, fault: str, recorded: int
) -> None:
    sg.admin.set_faults(rates={fault: 1.0})
    with pytest.raises(OutcomeUnknown):
        transport(sg).send(batch(2))
    assert sg.admin.count() == recorded


def test_400_is_rejected_with_the_providers_messages(sg: LocalSendGrid) -> None:
    dup = recipient(1)
    with pytest.raises(Rejected) as caught:
        transport(sg).send(batch(recipients=(recipient(0), dup, dup)))
    assert caught.value.status_code == 400
    assert "personalizations.2.to" in str(caught.value)
    assert "unique" in str(caught.value)
    assert sg.admin.count() == 0
    assert isinstance(transport(sg).send(batch(2)), Accepted)  # the next batch still goes


def test_forced_400_for_one_address(sg: LocalSendGrid) -> None:
    sg.admin.set_faults(forced=[{"status": 400, "email": "supporter1@example.net"}])
    with pytest.raises(Rejected, match="forced answer 400"):
        transport(sg).send(batch(3))
    assert transport(sg).send(batch(1)).status_code == 202


def test_413_is_rejected(sg: LocalSendGrid) -> None:
    huge = batch(1, html="<p>" + "x" * (30 * 1024 * 1024) + "</p>")
    with pytest.raises(Rejected) as caught:
        transport(sg, timeout=60).send(huge)
    assert caught.value.status_code == 413


def test_bad_key_is_not_authorised(sg: LocalSendGrid) -> None:
    with pytest.raises(NotAuthorised) as caught:
        transport(sg, key="SG.wrong").send(batch(1))
    assert caught.value.status_code == 401
    assert sg.admin.count() == 0


def test_403_is_not_authorised(sg: LocalSendGrid) -> None:
    sg.admin.set_faults(forced=[{"status": 403}])
    with pytest.raises(NotAuthorised) as caught:
        transport(sg).send(batch(1))
    assert caught.value.status_code == 403


def test_too_many_categories_are_refused_before_sending(sg: LocalSendGrid) -> None:
    before = sg.admin.stats()["counters"].get("requests", 0)
    with pytest.raises(Rejected, match="at most 10"):
        transport(sg).send(batch(1, categories=tuple(f"c{i}" for i in range(11))))
    with pytest.raises(Rejected, match="at most 255"):
        transport(sg).send(batch(1, categories=("c" * 256,)))
    assert sg.admin.stats()["counters"].get("requests", 0) == before


def test_sandbox_200_counts_as_accepted(sg: LocalSendGrid) -> None:
    sandboxed = SendGridTransport(API_KEY, host=sg.base_url, timeout_seconds=10, sandbox=True)
    result = sandboxed.send(batch(2))
    assert result.status_code == 200
    assert result.provider_message_id
    assert sg.admin.count() == 0  # validated, not delivered


def test_transport_for_picks_sendgrid_with_a_key(env: pytest.MonkeyPatch) -> None:
    env.setenv("SENDGRID_API_KEY", "SG.abc")
    env.setenv("SENDGRID_API_HOST", "http://127.0.0.1:9")
    chosen = transport_for(get_settings())
    assert isinstance(chosen, SendGridTransport)
    assert chosen.name == "sendgrid"


def test_transport_for_defaults_to_the_outbox(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("OUTBOX_DIR", str(tmp_path / "mail"))
    chosen = transport_for(get_settings())
    assert isinstance(chosen, OutboxTransport)
    assert chosen.directory == tmp_path / "mail"


@pytest.mark.parametrize(
    "host", ["https://api.sendgrid.com", "https://api.eu.sendgrid.com", "http://127.0.0.1:8025"]
)
@pytest.mark.parametrize("key", ["SG.real", None])
def test_production_sends_nothing_with_the_development_secret(
    host: str, key: str | None, tmp_path: Path
) -> None:
    """Attack: forged links. Whatever the host, and to the outbox too, nothing goes out."""
    import secrets

    from sender.core.config import DEV_SECRET, Settings
    from sender.core.runmode import UnsafeSettings
    from sender.send.transport.select import transport_for

    chosen = {
        "campaign_mode": "production",
        "sendgrid_api_key": key,
        "sendgrid_api_host": host,
        "outbox_dir": str(tmp_path / "outbox"),
        "staff_password": secrets.token_urlsafe(32),
        "inbound_secret": secrets.token_urlsafe(32),
        "public_base_url": "https://act.amnesty-demo.org",
    }
    with pytest.raises(UnsafeSettings, match="SECRET_KEY"):
        transport_for(Settings.model_validate({**chosen, "secret_key": DEV_SECRET}))
    good = transport_for(
        Settings.model_validate({**chosen, "secret_key": secrets.token_urlsafe(32)})
    )
    assert good.name == ("sendgrid" if key else "outbox")
    assert not (tmp_path / "outbox").exists() or not any((tmp_path / "outbox").iterdir())


# -- what the request carries (issue 12) ------------------------------------


def test_a_name_with_comma_and_semicolon_arrives_with_a_safe_to_name(sg: LocalSendGrid) -> None:
    odd = Recipient(
        to=Address("smith@example.net", "Smith, Jr.; PhD"),
        substitutions={"-first_name-": "Smith, Jr.; PhD", "-action_url-": "https://a/1"},
        custom_args={"message_id": "m-smith"},
    )
    result = transport(sg).send(batch(recipients=(recipient(0), odd, recipient(2))))
    assert isinstance(result, Accepted)
    rows = {r["email"]: r for r in sg.admin.recipients()}
    smith = rows["smith@example.net"]
    assert smith["name"] == "Smith Jr. PhD" and smith["dropped"] is None
    # The body's name is the supporter's own, as given.
    assert smith["substitutions"]["-first_name-"] == "Smith, Jr.; PhD"
    assert smith["subject"] == "Smith, Jr.; PhD, a letter can free someone"
    # The others are untouched.
    assert rows["supporter0@example.net"]["name"] == "Supporter 0"
    assert rows["supporter2@example.net"]["name"] == "Supporter 2"
    assert not any(r["dropped"] for r in rows.values())


@pytest.mark.parametrize(("given", "sent"), [
    ("Smith, Jr.; PhD", "Smith Jr. PhD"),
    ('Ana "Nita" <Rios>', "Ana Nita Rios"),
    ("Ana\r\nBcc: evil@example.com", "Ana Bcc: evil@example.com"),
    ("Ana\x00\x1b[31m\u2028Rios\u200b", "Ana [31m Rios"),
    ("  Zoë   Ñúñez  ", "Zoë Ñúñez"),
    ("Jean-Luc O'Brien", "Jean-Luc O'Brien"),
])  # fmt: skip
def test_safe_name_removes_what_sendgrid_or_the_header_cannot_take(given: str, sent: str) -> None:
    assert safe_name(given) == sent


def test_an_over_long_name_is_cut_and_an_empty_one_is_left_out() -> None:
    long_name = "Ana " + "x" * 300
    empty = Recipient(to=Address("e@example.net", ',;<>"\t'), substitutions={}, custom_args={})
    long = Recipient(
        to=Address("l@example.net", long_name), substitutions={"-n-": long_name}, custom_args={}
    )
    body = mail_body(batch(recipients=(long, empty, recipient(3))))
    first, second, third = (p["to"][0] for p in body["personalizations"])
    assert len(first["name"]) == MAX_NAME_LENGTH and first["name"].startswith("Ana xx")
    assert body["personalizations"][0]["substitutions"]["-n-"] == long_name  # body keeps it
    assert second == {"email": "e@example.net"}
    assert third == {"email": "supporter3@example.net", "name": "Supporter 3"}


def test_categories_are_ascii_unique_and_in_order() -> None:
    given = ("w4r-ménage", "case_email", "w4r-ménage", "", "ünï", "case-7")
    assert ascii_categories(given) == ("w4r-menage", "case_email", "uni", "case-7")
    body = mail_body(batch(categories=given))
    assert body["categories"] == ["w4r-menage", "case_email", "uni", "case-7"]
    assert all(c.isascii() for c in body["categories"])


def test_tracking_settings_are_explicit_on_every_request(sg: LocalSendGrid) -> None:
    body = mail_body(batch(2))
    assert body["tracking_settings"] == {
        "click_tracking": {"enable": False, "enable_text": False},
        "open_tracking": {"enable": True},
        "subscription_tracking": {"enable": False},
    }
    quiet = mail_body(batch(2), tracking=TrackingSettings(open_tracking=False))
    assert quiet["tracking_settings"]["open_tracking"] == {"enable": False}
    # The local server checks bodies against SendGrid's schema: the shape is valid.
    assert isinstance(transport(sg).send(batch(2)), Accepted)
    assert sg.admin.count() == 2


def test_open_tracking_follows_the_setting(env: pytest.MonkeyPatch) -> None:
    env.setenv("SENDGRID_API_KEY", API_KEY)
    env.setenv("SENDGRID_API_HOST", "http://127.0.0.1:9")
    env.setenv("SENDGRID_OPEN_TRACKING", "false")
    chosen = transport_for(get_settings())
    assert isinstance(chosen, SendGridTransport)
    assert chosen._tracking == TrackingSettings(open_tracking=False)


def test_a_wave_reaches_smith_jr_phd_with_the_name_as_given_and_no_case_slug(
    pg_engine: Engine, sg: LocalSendGrid
) -> None:
    settings = Settings(secret_key="test", batch_size=3)
    case = add_case(pg_engine, settings, slug="nassima-tazi")
    add_supporters(pg_engine, [case], ["p0@example.net", "p2@example.net"])
    add_supporters(pg_engine, [case], ["smith@example.net"], first_name="Smith, Jr.; PhD")
    wave = add_wave(pg_engine, settings)
    plan_wave(pg_engine, settings, wave, DEC1)
    nine = DEC1 + timedelta(hours=9)
    with session_scope(pg_engine) as session:
        (batch_id,) = repo.release_due(session, nine, 100)
    sender = Sender(
        store=SqlSendStore.from_settings(pg_engine, settings),
        settings=settings,
        transport=SendGridTransport(API_KEY, host=sg.base_url, timeout_seconds=5),
        bucket=LocalTokenBucket(),
        clock=MovableClock(nine),
        sleep=lambda _: None,
    )
    assert send_batch(batch_id, sender).outcome is BatchOutcome.SENT
    rows = {r["email"]: r for r in sg.admin.recipients()}
    assert set(rows) == {"p0@example.net", "p2@example.net", "smith@example.net"}
    smith = rows["smith@example.net"]
    assert smith["name"] == "Smith Jr. PhD" and smith["dropped"] is None
    assert smith["substitutions"]["-first_name-"] == "Smith, Jr.; PhD"
    assert smith["substitutions"]["-full_name-"] == "Smith, Jr.; PhD"
    assert rows["p0@example.net"]["substitutions"]["-first_name-"] == "P0"
    categories = smith["categories"]
    assert categories == [categories[0], categories[1], f"case-{case}"]
    assert not any("nassima" in c for c in categories)


# --- the key's scopes (GET /v3/scopes), as `campaign doctor` asks -------------------


def test_scopes_of_a_full_access_key_include_mail_send(sg: LocalSendGrid) -> None:
    transport = SendGridTransport(API_KEY, host=sg.base_url, timeout_seconds=10)
    found = transport.scopes()
    assert MAIL_SEND_SCOPE in found
    assert sg.admin.count() == 0  # asking sends nothing


def test_scopes_of_a_restricted_key_lack_mail_send(sg: LocalSendGrid) -> None:
    sg.admin.add_key("SG.stats-only", ["stats.read"])
    transport = SendGridTransport("SG.stats-only", host=sg.base_url, timeout_seconds=10)
    assert transport.scopes() == frozenset({"stats.read"})


def test_scopes_with_a_revoked_key_is_not_authorised(sg: LocalSendGrid) -> None:
    transport = SendGridTransport("SG.revoked", host=sg.base_url, timeout_seconds=10)
    with pytest.raises(NotAuthorised, match="authorization grant is invalid") as refused:
        transport.scopes()
    assert refused.value.status_code == 401


def test_scopes_from_a_host_that_refuses_connections_is_unreachable() -> None:
    host = f"http://127.0.0.1:{free_port()}"
    transport = SendGridTransport(API_KEY, host=host, timeout_seconds=5)
    with pytest.raises(Unreachable, match=f"cannot reach {host}: .*refused") as failed:
        transport.scopes()
    assert failed.value.host == host and failed.value.status_code is None


def test_scopes_from_a_host_that_never_answers_times_out(silent_url: str) -> None:
    transport = SendGridTransport(API_KEY, host=silent_url, timeout_seconds=0.5)
    started = time.monotonic()
    with pytest.raises(Unreachable, match=f"cannot reach {silent_url}: .*timed out"):
        transport.scopes()
    assert time.monotonic() - started < 5


def test_scopes_when_the_host_is_down_is_retry_later(canned: Canned) -> None:
    canned.status, canned.body = 503, b'{"errors":[{"message":"service unavailable","field":null}]}'
    transport = SendGridTransport(API_KEY, host=canned.url, timeout_seconds=5)
    with pytest.raises(RetryLater, match="SendGrid answered 503: service unavailable") as later:
        transport.scopes()
    assert not isinstance(later.value, Unreachable)


@pytest.mark.parametrize("body", [b"<html>proxy login</html>", b'{"scopes": "mail.send"}', b"[]"])
def test_scopes_answer_without_a_scopes_list_is_rejected(canned: Canned, body: bytes) -> None:
    canned.body = body
    transport = SendGridTransport(API_KEY, host=canned.url, timeout_seconds=5)
    with pytest.raises(Rejected, match="answered 200 without a scopes list"):
        transport.scopes()
