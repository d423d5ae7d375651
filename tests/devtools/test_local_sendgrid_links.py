"""The local SendGrid's click tracking and its simulated link scanner, over HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from sendgrid_fixtures import API_KEY, Receiver, mail_json, receiver, sendgrid_process, sg

from sender.devtools.local_sendgrid.process import LocalSendGrid, local_sendgrid
from sender.devtools.waiting import wait_until

__all__ = ["receiver", "sendgrid_process", "sg"]  # fixtures used by name

# A body as the project sends it (every href a whole substitution tag), plus the
# literal links an editor might paste in. SendGrid's docs ("Click Tracking: HTML
# best practices") say only hrefs beginning with http:// or https:// as sent are
# rewritten; mailto: and tags are left alone.
HTML = (
    '<p><a href="-action_url-">Write now</a></p>'
    '<p><a href="https://amnesty.example.org/about">About</a>'
    " <a href='http://old.example.org/faq'>FAQ</a>"
    ' <a href="mailto:help@example.org">Help</a></p>'
    '<div style="display:none" aria-hidden="true"><a href="-action_url-/x" tabindex="-1"></a></div>'
    '<p><a href="-unsubscribe_url-">Unsubscribe</a></p>'
)
TEXT = "Write now: -action_url_text-\nAbout us: https://amnesty.example.org/about\n"


def _body(tracking: dict[str, Any] | None) -> dict[str, Any]:
    body = mail_json(2)
    for i, item in enumerate(body["personalizations"]):
        item["substitutions"] = {
            "-action_url-": f"https://act.example.org/a/tok{i}",
            "-action_url_text-": f"https://act.example.org/a/tok{i}",
            "-unsubscribe_url-": f"https://act.example.org/unsubscribe/u{i}",
        }
    body["content"] = [{"type": "text/plain", "value": TEXT}, {"type": "text/html", "value": HTML}]
    if tracking is not None:
        body["tracking_settings"] = {"click_tracking": tracking}
    return body


def _send(server: LocalSendGrid, body: dict[str, Any]) -> list[dict[str, Any]]:
    answer = requests.post(
        f"{server.base_url}/v3/mail/send",
        data=json.dumps(body),
        headers={"Authorization": f"Bearer {server.api_key}"},
        timeout=10,
    )
    assert answer.status_code == 202, answer.text
    rows = server.admin.recipients()
    return [server.admin.message(row["id"]) for row in rows[-2:]]


def _tracked(server: LocalSendGrid, links: list[str]) -> list[str]:
    return [link for link in links if link.startswith(f"{server.base_url}/wf/click/")]


@pytest.fixture
def tracking_on_account(receiver: Receiver) -> Iterator[LocalSendGrid]:
    with local_sendgrid(
        api_key=API_KEY, events_url=receiver.url, extra_args=["--click-tracking"]
    ) as server:
        yield server


def test_tracking_on_rewrites_literal_http_links_and_never_tags(sg: LocalSendGrid) -> None:
    first, second = _send(sg, _body({"enable": True, "enable_text": False}))
    assert len(_tracked(sg, first["links"])) == 2  # about, faq
    untouched = [link for link in first["links"] if not link.startswith(sg.base_url)]
    assert untouched == [
        "https://act.example.org/a/tok0",
        "mailto:help@example.org",
        "https://act.example.org/a/tok0/x",
        "https://act.example.org/unsubscribe/u0",
    ]
    assert "https://amnesty.example.org/about" not in first["html"]
    assert "https://amnesty.example.org/about" in first["text"]  # enable_text is off
    assert _tracked(sg, second["links"]) != _tracked(sg, first["links"])  # per recipient


def test_text_tracking_rewrites_text_urls_but_not_tags(sg: LocalSendGrid) -> None:
    [mail, _] = _send(sg, _body({"enable": True, "enable_text": True}))
    assert "https://amnesty.example.org/about" not in mail["text"]
    assert "Write now: https://act.example.org/a/tok0\n" in mail["text"]  # a tag: untracked


@pytest.mark.parametrize("tracking", [{"enable": False}, None], ids=["off", "account-default"])
def test_with_tracking_off_nothing_is_rewritten(
    sg: LocalSendGrid, tracking: dict[str, Any] | None
) -> None:
    # The module's server is an account with click tracking off.
    for mail in _send(sg, _body(tracking)):
        assert _tracked(sg, mail["links"]) == []
        assert "https://amnesty.example.org/about" in mail["html"]
        assert "http://old.example.org/faq" in mail["html"]


def test_an_account_default_on_applies_unless_the_request_says_off(
    tracking_on_account: LocalSendGrid,
) -> None:
    server = tracking_on_account
    [default, _] = _send(server, _body(None))
    assert len(_tracked(server, default["links"])) == 2
    [off, _] = _send(server, _body({"enable": False}))
    assert _tracked(server, off["links"]) == []


def test_a_tracked_link_posts_a_click_and_redirects(
    tracking_on_account: LocalSendGrid, receiver: Receiver
) -> None:
    server = tracking_on_account
    [mail, _] = _send(server, _body(None))
    about = _tracked(server, mail["links"])[0]
    agent = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
    answer = requests.get(about, headers={"User-Agent": agent}, allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    assert answer.headers["Location"] == "https://amnesty.example.org/about"
    wait_until(lambda: receiver.posts, 10, "the click event")
    [event] = json.loads(receiver.posts[0].body)
    assert (event["event"], event["url"], event["useragent"]) == (
        "click",
        "https://amnesty.example.org/about",
        agent,
    )
    assert event["message_id"] == "m0" and event["sg_event_id"]
    bad = about.rsplit("/", 1)[0] + "/99"
    assert requests.get(bad, allow_redirects=False, timeout=10).status_code == 404
    assert len(receiver.posts) == 1  # the unknown link posted nothing


@pytest.fixture
def site() -> Iterator[tuple[str, list[tuple[str, str, str]]]]:
    """A web site that notes every fetch: (method, path, user agent)."""
    seen: list[tuple[str, str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def _note(self) -> None:
            seen.append((self.command, self.path, self.headers.get("User-Agent", "")))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_HEAD = _note

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", seen
    server.shutdown()
    server.server_close()


def test_the_scanner_fetches_every_link_of_every_message(
    sg: LocalSendGrid, site: tuple[str, list[tuple[str, str, str]]]
) -> None:
    url, seen = site
    body = _body(None)
    for item in body["personalizations"]:
        item["substitutions"] = {
            tag: value.replace("https://act.example.org", url)
            for tag, value in item["substitutions"].items()
        }
    html = HTML.replace("https://amnesty.example.org", url).replace("http://old.example.org", url)
    body["content"][1]["value"] = html
    _send(sg, body)
    result = sg.admin.scan()
    # Per message: the action link, the honeypot, the unsubscribe page and the two
    # literal links (about and faq), each HEAD then GET; mailto: is not fetched.
    assert (result["messages"], result["fetches"]) == (2, 20)
    assert result["seconds"] < 2.0
    assert len(seen) == 20
    paths = {path for _, path, _ in seen}
    assert paths == {
        "/a/tok0", "/a/tok0/x", "/unsubscribe/u0", "/a/tok1", "/a/tok1/x", "/unsubscribe/u1",
        "/about", "/faq",
    }  # fmt: skip
    assert {(method, "Mimecast" in agent) for method, _, agent in seen} == {
        ("HEAD", True),
        ("GET", False),
    }
    assert sg.admin.scan(emails=["p1@example.net"], methods=["GET"])["fetches"] == 5
