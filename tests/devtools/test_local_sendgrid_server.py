"""The local SendGrid, over HTTP, as a real subprocess."""

from __future__ import annotations

import base64
import json
import time
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
import requests
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid_fixtures import API_KEY, Receiver, mail_json, receiver, sendgrid_process, sg

from sender.devtools.local_sendgrid.process import LocalSendGrid, local_sendgrid
from sender.devtools.local_sendgrid.rules import check_body
from sender.devtools.local_sendgrid.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER
from sender.devtools.waiting import wait_until

__all__ = ["receiver", "sendgrid_process", "sg"]  # fixtures used by name


def post(
    sg: LocalSendGrid, body: Any, key: str = API_KEY, timeout: float = 30
) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(
        f"{sg.base_url}/v3/mail/send",
        data=data,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=timeout,
    )


def test_valid_request_is_accepted_and_recorded(sg: LocalSendGrid) -> None:
    answer = post(sg, mail_json(2))
    assert answer.status_code == 202
    message_id = answer.headers["X-Message-Id"]
    rows = sg.admin.recipients()
    assert [r["email"] for r in rows] == ["p0@example.net", "p1@example.net"]
    assert rows[0]["message_id"] == message_id
    assert rows[0]["sg_message_id"].startswith(message_id)
    assert rows[1]["subject"] == "Hello P1"
    assert rows[1]["custom_args"] == {"message_id": "m1"}
    assert rows[1]["substitutions"] == {"-name-": "P1"}
    assert rows[0]["categories"] == ["w4r"]
    assert sg.admin.count(message_id=message_id) == 2


def test_message_level_custom_args_object_is_accepted(sg: LocalSendGrid) -> None:
    answer = post(sg, mail_json(1, custom_args={"campaign": "w4r"}))
    assert answer.status_code == 202
    assert sg.admin.recipients()[0]["custom_args"] == {"campaign": "w4r", "message_id": "m0"}


def _too_many_recipients() -> dict[str, Any]:
    body = mail_json(400)
    for i, item in enumerate(body["personalizations"]):
        item["cc"] = [{"email": f"cc{i}@example.net"}, {"email": f"cc{i}b@example.net"}]
    return body


def _with(change: Any) -> dict[str, Any]:
    body = mail_json(3)
    change(body)
    return body


INVALID = {
    "personalizations over 1000": (mail_json(1001), "personalizations"),
    "recipients over 1000": (_too_many_recipients(), "personalizations"),
    "address twice": (
        _with(lambda b: b["personalizations"][2]["to"].append({"email": "P0@example.net"})),
        "personalizations.2.to",
    ),
    "substitutions too big": (
        _with(lambda b: b["personalizations"][1]["substitutions"].update({"-x-": "x" * 10_000})),
        "personalizations.1.substitutions",
    ),
    "custom args too big": (
        _with(lambda b: b["personalizations"][0]["custom_args"].update({"k": "y" * 10_000})),
        "personalizations.0.custom_args",
    ),
    "custom arg not a string": (
        _with(lambda b: b["personalizations"][0]["custom_args"].update({"n": 5})),
        "personalizations.0.custom_args.n",
    ),
    "eleven categories": (
        _with(lambda b: b.update(categories=[f"c{i}" for i in range(11)])),
        "categories",
    ),
    "category too long": (_with(lambda b: b.update(categories=["c" * 256])), "categories.0"),
    "protected header": (
        _with(lambda b: b["personalizations"][0].update(headers={"Reply-To": "x@example.net"})),
        "personalizations.0.headers",
    ),
    "x-sg header": (_with(lambda b: b.update(headers={"X-SG-EID": "1"})), "headers"),
    "recipient without email": (
        _with(lambda b: b["personalizations"][1].update(to=[{"name": "No Address"}])),
        "personalizations.1.to.0",
    ),
    "no from": (_with(lambda b: b.pop("from")), None),
    "no content": (_with(lambda b: b.pop("content")), "content"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_each_limit_violated_is_400_with_field_and_nothing_recorded(
    sg: LocalSendGrid, case: str
) -> None:
    body, field = INVALID[case]
    answer = post(sg, body)
    assert answer.status_code == 400, answer.text
    errors = answer.json()["errors"]
    assert errors and errors[0]["message"]
    if field is not None:
        assert field in {e["field"] for e in errors}
    assert sg.admin.count() == 0
    # The server still takes a valid request afterwards.
    assert post(sg, mail_json(2)).status_code == 202
    assert sg.admin.count() == 2


def test_body_that_is_not_json_is_400(sg: LocalSendGrid) -> None:
    answer = post(sg, b"{not json")
    assert answer.status_code == 400
    assert "JSON" in answer.json()["errors"][0]["message"]


def test_bad_or_missing_key_is_401(sg: LocalSendGrid) -> None:
    assert post(sg, mail_json(1), key="SG.wrong").status_code == 401
    no_key = requests.post(f"{sg.base_url}/v3/mail/send", json=mail_json(1), timeout=10)
    assert no_key.status_code == 401
    assert "authorization" in no_key.json()["errors"][0]["message"]
    assert sg.admin.count() == 0


def test_body_over_30_mb_is_413(sg: LocalSendGrid) -> None:
    body = mail_json(1)
    body["content"][1]["value"] = "x" * (30 * 1024 * 1024 + 10)
    assert post(sg, body).status_code == 413
    assert sg.admin.count() == 0


def test_sandbox_mode_answers_200_and_records_nothing(sg: LocalSendGrid) -> None:
    answer = post(sg, mail_json(2, mail_settings={"sandbox_mode": {"enable": True}}))
    assert answer.status_code == 200
    assert sg.admin.count() == 0


@pytest.mark.parametrize(
    ("fault", "status"), [("rate_limited", 429), ("server_error", 500), ("unavailable", 503)]
)
def test_error_faults_answer_and_record_nothing(sg: LocalSendGrid, fault: str, status: int) -> None:
    sg.admin.set_faults(rates={fault: 1.0}, rate_limit_reset_seconds=5)
    answer = post(sg, mail_json(2))
    assert answer.status_code == status
    assert answer.json()["errors"]
    if status == 429:
        assert answer.headers["X-RateLimit-Remaining"] == "0"
        assert answer.headers["X-RateLimit-Limit"] == "600"
        assert 3 <= int(answer.headers["X-RateLimit-Reset"]) - time.time() <= 6
    assert sg.admin.count() == 0


def test_slow_fault_answers_late_but_accepts(sg: LocalSendGrid) -> None:
    sg.admin.set_faults(rates={"slow": 1.0}, slow_seconds=0.6)
    started = time.monotonic()
    answer = post(sg, mail_json(1))
    assert answer.status_code == 202
    assert time.monotonic() - started >= 0.6
    assert sg.admin.count() == 1


@pytest.mark.parametrize(("fault", "recorded"), [("hang", 0), ("accept_then_hang", 2)])
def test_hanging_faults_time_out_with_or_without_recording(
    sg: LocalSendGrid, fault: str, recorded: int
) -> None:
    sg.admin.set_faults(rates={fault: 1.0}, hang_seconds=1.5)
    with pytest.raises(requests.ReadTimeout):
        post(sg, mail_json(2), timeout=0.5)
    wait_until(lambda: sg.admin.stats()["counters"].get("dropped"), 10, "the hang to end")
    assert sg.admin.count() == recorded


@pytest.mark.parametrize(("fault", "recorded"), [("drop_before", 0), ("drop_after", 2)])
def test_dropped_connections_with_or_without_recording(
    sg: LocalSendGrid, fault: str, recorded: int
) -> None:
    sg.admin.set_faults(rates={fault: 1.0})
    with pytest.raises(requests.ConnectionError):
        post(sg, mail_json(2))
    assert sg.admin.count() == recorded
    assert sg.admin.stats()["counters"]["dropped"] == 1


def test_forced_status_for_one_address_only(sg: LocalSendGrid) -> None:
    sg.admin.set_faults(forced=[{"status": 400, "email": "p1@example.net"}])
    assert post(sg, mail_json(2)).status_code == 400
    other = mail_json(1)
    other["personalizations"][0]["to"][0]["email"] = "someone@example.net"
    assert post(sg, other).status_code == 202
    assert [r["email"] for r in sg.admin.recipients()] == ["someone@example.net"]


def test_forced_401_always_and_limited_forced_runs_out(sg: LocalSendGrid) -> None:
    sg.admin.set_faults(forced=[{"status": 401}])
    assert [post(sg, mail_json(1)).status_code for _ in range(3)] == [401, 401, 401]
    sg.admin.set_faults(forced=[{"status": 503, "remaining": 2}])
    assert [post(sg, mail_json(1)).status_code for _ in range(3)] == [503, 503, 202]
    sg.admin.set_faults(forced=[{"status": 429, "remaining": 1}], rate_limit_reset_seconds=7)
    limited = post(sg, mail_json(1))
    assert limited.status_code == 429
    assert 5 <= int(limited.headers["X-RateLimit-Reset"]) - time.time() <= 8


def test_faults_are_deterministic_with_a_seed(sg: LocalSendGrid) -> None:
    def run() -> list[int]:
        sg.admin.reset()
        sg.admin.set_faults(rates={"server_error": 0.3, "unavailable": 0.2}, seed=42)
        return [post(sg, mail_json(1)).status_code for _ in range(20)]

    first, second = run(), run()
    assert first == second
    assert {500, 503, 202} <= set(first)


def test_bad_fault_plan_is_refused_and_old_plan_kept(sg: LocalSendGrid) -> None:
    sg.admin.set_faults(rates={"server_error": 1.0})
    answer = requests.post(
        f"{sg.base_url}/_admin/faults", json={"rates": {"gremlins": 0.5}}, timeout=10
    )
    assert answer.status_code == 400
    assert post(sg, mail_json(1)).status_code == 500


def test_state_file_keeps_counts_across_restart(tmp_path: Path) -> None:
    state = tmp_path / "sg.sqlite"
    with local_sendgrid(api_key=API_KEY, state=state) as first:
        assert post(first, mail_json(3)).status_code == 202
    with local_sendgrid(api_key=API_KEY, state=state) as second:
        assert second.admin.count() == 3


def _verify(public_key: str, body: bytes, headers: dict[str, str]) -> bool:
    verifier = EventWebhook()
    key = verifier.convert_public_key_to_ecdsa(public_key)
    return bool(
        verifier.verify_signature(
            body.decode(), headers[SIGNATURE_HEADER], headers[TIMESTAMP_HEADER], key
        )
    )


def test_simulated_events_are_signed_and_carry_custom_args(
    sg: LocalSendGrid, receiver: Receiver
) -> None:
    message_id = post(sg, mail_json(3)).headers["X-Message-Id"]
    result = sg.admin.simulate(events_url=receiver.url, open_rate=1, click_rate=1, seed=1)
    assert result["batches"] == len(receiver.posts) == 1
    posted = receiver.posts[0]
    assert _verify(sg.public_key, posted.body, posted.headers)
    tampered = posted.body.replace(b"p0@example.net", b"px@example.net")
    assert not _verify(sg.public_key, tampered, posted.headers)
    events = json.loads(posted.body)
    processed = [e for e in events if e["event"] == "processed"]
    assert sorted(e["email"] for e in processed) == [
        "p0@example.net",
        "p1@example.net",
        "p2@example.net",
    ]
    assert all(e["sg_message_id"].startswith(message_id) for e in events)
    assert {e["message_id"] for e in processed} == {"m0", "m1", "m2"}
    kinds = {e["event"] for e in events}
    assert {"processed", "delivered", "open", "click"} <= kinds
    assert all(e["url"] == "https://act.example.org/x" for e in events if e["event"] == "click")
    assert all(e["sg_machine_open"] is False for e in events if e["event"] == "open")
    assert len({e["sg_event_id"] for e in events}) == len(events)
    assert all(e["category"] == "w4r" for e in events)  # one category comes as a string


def test_simulated_bounces_machine_opens_and_complaints(
    sg: LocalSendGrid, receiver: Receiver
) -> None:
    post(sg, mail_json(40))
    sg.admin.simulate(
        events_url=receiver.url, bounce_rate=0.5, machine_open_rate=1, spam_rate=0.3,
        unsubscribe_rate=0.3, seed=3,
    )  # fmt: skip
    events = [e for p in receiver.posts for e in json.loads(p.body)]
    bounced = {e["email"] for e in events if e["event"] == "bounce"}
    delivered = {e["email"] for e in events if e["event"] == "delivered"}
    assert bounced and delivered and not bounced & delivered
    assert {e["type"] for e in events if e["event"] == "bounce"} <= {"bounce", "blocked"}
    machine = [e for e in events if e["event"] == "open"]
    assert machine and all(e["sg_machine_open"] is True for e in machine)
    assert {e["email"] for e in machine} == delivered
    assert any(e["event"] == "spamreport" for e in events)
    assert any(e["event"] == "unsubscribe" for e in events)


def test_events_go_out_in_batches_under_768_kb(sg: LocalSendGrid, receiver: Receiver) -> None:
    body = mail_json(1000)
    for item in body["personalizations"]:
        item["custom_args"]["padding"] = "z" * 400
    assert post(sg, body).status_code == 202
    result = sg.admin.simulate(events_url=receiver.url, open_rate=1, seed=2)
    assert result["events"] == 3000
    assert len(receiver.posts) >= 2
    assert all(len(p.body) <= 768 * 1024 for p in receiver.posts)
    assert sum(len(json.loads(p.body)) for p in receiver.posts) == 3000
    assert all(_verify(sg.public_key, p.body, p.headers) for p in receiver.posts)


def test_simulate_without_url_is_refused(sg: LocalSendGrid) -> None:
    answer = requests.post(f"{sg.base_url}/_admin/simulate", json={"open_rate": 1}, timeout=10)
    assert answer.status_code == 409


def test_reply_posts_inbound_parse_form_to_reply_to(sg: LocalSendGrid, receiver: Receiver) -> None:
    post(sg, mail_json(2))
    sg.admin.reply(
        inbound_url=receiver.url, **{"from": "p1@example.net"}, text="I wrote my letter!"
    )
    (posted,) = receiver.posts
    content_type = posted.headers["Content-Type"]
    assert content_type.startswith("multipart/form-data")
    form = message_from_bytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + posted.body, policy=default
    )
    fields = {
        part.get_param("name", header="content-disposition"): part.get_content()
        for part in form.iter_parts()
    }
    assert fields["to"] == "reply+t@parse.example.org"
    assert fields["from"] == "p1@example.net"
    assert fields["text"] == "I wrote my letter!"
    assert fields["subject"] == "Re: Hello P1"
    assert json.loads(fields["envelope"])["to"] == ["reply+t@parse.example.org"]
    assert {"headers", "html", "charsets", "SPF", "dkim"} <= set(fields)


def test_reply_carries_basic_auth(receiver: Receiver) -> None:
    with local_sendgrid(
        api_key=API_KEY, inbound_url=receiver.url, inbound_auth=("parse", "s3cret")
    ) as server:
        post(server, mail_json(1))
        server.admin.reply(**{"from": "p0@example.net"}, text="hello")
    expected = "Basic " + base64.b64encode(b"parse:s3cret").decode()
    assert receiver.posts[0].headers["Authorization"] == expected


def test_reply_from_unknown_sender_is_404(sg: LocalSendGrid, receiver: Receiver) -> None:
    answer = requests.post(
        f"{sg.base_url}/_admin/reply",
        json={"from": "stranger@example.net", "text": "hi", "inbound_url": receiver.url},
        timeout=10,
    )
    assert answer.status_code == 404
    assert receiver.posts == []


def test_fault_rates_from_the_command_line() -> None:
    flags = ["--fault-rate", "unavailable=1.0", "--seed", "5"]
    with local_sendgrid(api_key=API_KEY, extra_args=flags) as server:
        assert post(server, mail_json(1)).status_code == 503
        assert server.admin.stats()["counters"]["fault_unavailable"] == 1
        assert server.admin.count() == 0


def test_unknown_fault_kind_on_the_command_line_stops_the_server() -> None:
    with (
        pytest.raises(RuntimeError, match="exited with 2"),
        local_sendgrid(api_key=API_KEY, extra_args=["--fault-rate", "gremlins=0.5"]),
    ):
        pass


@pytest.mark.parametrize("case", sorted(INVALID))
def test_sampled_schema_check_finds_the_same_errors(case: str) -> None:
    body, _ = INVALID[case]
    raw = json.dumps(body).encode()
    sampled, errors = check_body(raw, sample=2)
    full, full_errors = check_body(raw, sample=0)
    assert sampled is None and full is None
    assert {e.field for e in errors} == {e.field for e in full_errors}


def test_server_with_schema_sample_names_a_bad_personalization_outside_the_sample() -> None:
    bad = mail_json(60)
    bad["personalizations"][37]["to"][0]["email"] = "not-an-address"
    unlisted = mail_json(60)
    unlisted["personalizations"][41]["subject"] = ""
    with local_sendgrid(api_key=API_KEY, extra_args=["--schema-sample", "4"]) as server:
        answer = post(server, bad)
        assert answer.status_code == 400
        assert answer.json()["errors"][0]["field"] == "personalizations.37.to.0.email"
        answer = post(server, unlisted)
        assert answer.status_code == 400
        assert answer.json()["errors"][0]["field"] == "personalizations.41.subject"
        assert server.admin.count() == 0
        assert post(server, mail_json(60)).status_code == 202
        assert server.admin.count() == 60


def test_key_file_keeps_the_signing_key_across_restarts(tmp_path: Path) -> None:
    key_file = tmp_path / "events.pem"
    flags = ["--key-file", str(key_file)]
    with local_sendgrid(api_key=API_KEY, extra_args=flags) as first:
        made = first.public_key
    assert key_file.exists()
    with local_sendgrid(api_key=API_KEY, extra_args=flags) as second:
        assert second.public_key == made
    with local_sendgrid(api_key=API_KEY) as fresh:
        assert fresh.public_key != made


def test_store_totals_follow_what_was_recorded_and_reset(tmp_path: Path) -> None:
    from sender.devtools.local_sendgrid.store import Store

    store = Store(tmp_path / "state.sqlite")
    for n, message_id in ((3, "first"), (2, "second")):
        body = mail_json(n)
        store.record(message_id, body, json.dumps(body).encode())
    assert (store.count(), store.request_count()) == (5, 2)
    assert store.count(message_id="second") == 2
    assert Store(tmp_path / "state.sqlite").count() == 5  # read back from the file
    store.reset()
    assert (store.count(), store.request_count()) == (0, 0)


def test_a_comma_or_semicolon_name_is_accepted_then_dropped_as_invalid(
    sg: LocalSendGrid, receiver: Receiver
) -> None:
    # SendGrid takes the request (202) and drops the recipient afterwards.
    body = mail_json(4)
    body["personalizations"][0]["to"][0]["name"] = "Smith, Jr."
    body["personalizations"][1]["to"][0]["name"] = "Smith; PhD"
    body["personalizations"][2]["to"][0]["name"] = "Smith Jr. PhD"
    answer = post(sg, body)
    assert answer.status_code == 202
    rows = {r["email"]: r for r in sg.admin.recipients()}
    assert {e: r["dropped"] for e, r in rows.items()} == {
        "p0@example.net": "Invalid",
        "p1@example.net": "Invalid",
        "p2@example.net": None,
        "p3@example.net": None,
    }
    assert rows["p2@example.net"]["name"] == "Smith Jr. PhD"
    sg.admin.simulate(events_url=receiver.url, seed=1)
    events = [e for p in receiver.posts for e in json.loads(p.body)]
    dropped = [e for e in events if e["event"] == "dropped"]
    assert sorted(e["email"] for e in dropped) == ["p0@example.net", "p1@example.net"]
    assert all(e["reason"] == "Invalid" and e["message_id"] for e in dropped)
    assert all(e["sg_message_id"].startswith(answer.headers["X-Message-Id"]) for e in dropped)
    # A dropped recipient gets nothing else; the others are delivered as before.
    others = {e["email"] for e in events if e["event"] != "dropped"}
    assert others == {"p2@example.net", "p3@example.net"}
    delivered = {e["email"] for e in events if e["event"] == "delivered"}
    assert delivered == {"p2@example.net", "p3@example.net"}
