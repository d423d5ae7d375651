"""API keys and scopes in the local SendGrid: GET /v3/scopes, 401 and 403 as SendGrid answers."""

from __future__ import annotations

import json

import pytest
import requests
from sendgrid_fixtures import API_KEY, mail_json, sendgrid_process, sg

from sender.devtools.local_sendgrid.api_keys import FULL_ACCESS, parse_key_flag
from sender.devtools.local_sendgrid.process import LocalSendGrid, local_sendgrid

__all__ = ["sendgrid_process", "sg"]  # fixtures used by name

READ_ONLY = "SG.read-only"


def scopes(sg: LocalSendGrid, key: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return requests.get(f"{sg.base_url}/v3/scopes", headers=headers, timeout=10)


def send(sg: LocalSendGrid, key: str) -> requests.Response:
    return requests.post(
        f"{sg.base_url}/v3/mail/send",
        data=json.dumps(mail_json(1)),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=10,
    )


def test_the_full_access_key_lists_its_scopes_with_mail_send(sg: LocalSendGrid) -> None:
    answer = scopes(sg, API_KEY)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    listed = answer.json()["scopes"]
    assert "mail.send" in listed
    assert set(listed) == FULL_ACCESS and listed == sorted(listed)


def test_an_unknown_key_gets_sendgrids_401_body(sg: LocalSendGrid) -> None:
    answer = scopes(sg, "SG.revoked")
    assert answer.status_code == 401
    assert answer.json() == {
        "errors": [
            {
                "message": "The provided authorization grant is invalid, expired, or revoked",
                "field": None,
            }
        ]
    }


def test_no_authorization_header_is_401_authorization_required(sg: LocalSendGrid) -> None:
    answer = scopes(sg, None)
    assert answer.status_code == 401
    assert answer.json()["errors"] == [{"message": "authorization required", "field": None}]
    basic = requests.get(
        f"{sg.base_url}/v3/scopes", headers={"Authorization": f"Basic {API_KEY}"}, timeout=10
    )
    assert basic.status_code == 401  # the key, but not as a bearer token


def test_a_key_without_mail_send_lists_its_scopes_but_cannot_send(sg: LocalSendGrid) -> None:
    sg.admin.add_key(READ_ONLY, ["stats.read", "suppression.read"])
    assert scopes(sg, READ_ONLY).json() == {"scopes": ["stats.read", "suppression.read"]}
    refused = send(sg, READ_ONLY)
    assert refused.status_code == 403
    assert refused.json()["errors"] == [{"message": "access forbidden", "field": None}]
    assert sg.admin.count() == 0  # nothing recorded
    assert send(sg, API_KEY).status_code == 202  # the full key still sends


def test_reset_forgets_keys_added_since_start(sg: LocalSendGrid) -> None:
    sg.admin.add_key(READ_ONLY, [])
    assert scopes(sg, READ_ONLY).json() == {"scopes": []}
    sg.admin.reset()
    assert scopes(sg, READ_ONLY).status_code == 401
    assert scopes(sg, API_KEY).status_code == 200


def test_a_bad_admin_key_request_is_400_and_changes_nothing(sg: LocalSendGrid) -> None:
    for payload in ({"key": READ_ONLY, "scopes": "mail.send"}, {"scopes": ["mail.send"]}):
        answer = requests.post(f"{sg.base_url}/_admin/keys", json=payload, timeout=10)
        assert answer.status_code == 400
    assert scopes(sg, READ_ONLY).status_code == 401


def test_restricted_keys_from_the_command_line_survive_a_reset() -> None:
    with local_sendgrid(api_key=API_KEY, keys={READ_ONLY: ["stats.read"], "SG.none": []}) as server:
        server.admin.reset()
        assert scopes(server, READ_ONLY).json() == {"scopes": ["stats.read"]}
        assert scopes(server, "SG.none").json() == {"scopes": []}
        assert send(server, "SG.none").status_code == 403
        assert server.admin.count() == 0


def test_a_malformed_key_flag_stops_the_server() -> None:
    with (
        pytest.raises(RuntimeError, match="exited with 2"),
        local_sendgrid(api_key=API_KEY, extra_args=["--key", "no-equals-sign"]),
    ):
        pass


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("SG.a=mail.send", ("SG.a", {"mail.send"})),
        ("SG.b= stats.read , mail.send ", ("SG.b", {"stats.read", "mail.send"})),
        ("SG.c=", ("SG.c", set())),
    ],
)
def test_key_flags_parse(flag: str, expected: tuple[str, set[str]]) -> None:
    assert parse_key_flag(flag) == (expected[0], frozenset(expected[1]))


@pytest.mark.parametrize("flag", ["SG.a", "=mail.send", " =x"])
def test_key_flags_without_a_key_are_refused(flag: str) -> None:
    with pytest.raises(ValueError, match="KEY=SCOPE"):
        parse_key_flag(flag)
