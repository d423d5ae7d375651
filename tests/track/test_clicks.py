"""The machine-click rules alone: one signal at a time, and people's browsers left alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sender.core.config import Settings
from sender.core.vocabulary import LinkTarget, MachineSign
from sender.track.clicks import (
    HUMAN,
    EarlierFetch,
    LinkFetch,
    Windows,
    classify,
    is_honeypot_url,
    is_scanner_agent,
    machine,
    taints,
)

SENT = datetime(2020, 12, 10, 9, 0, tzinfo=UTC)
WINDOWS = Windows(delivery=timedelta(seconds=30), burst=timedelta(seconds=5))
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
# People's browsers, including the awkward ones: a phone brand ending in "bot",
# an in-app browser, Outlook's embedded engine.
BROWSERS = (
    CHROME,
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.2 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
    "Mozilla/5.0 (Linux; Android 12; CUBOT KINGKONG 7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/119.0.6045.163 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/440.0.0.33.116]",
    "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; .NET4.0C; .NET4.0E; "
    "Microsoft Outlook 16.0.17029; ms-office; MSOffice 16)",
)
SCANNERS = (
    "python-requests/2.31.0",
    "curl/8.4.0",
    "Go-http-client/1.1",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; BarracudaCentral/1.0)",
    "Mimecast-URL-Protect/1.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/120.0.0.0 Safari/537.36",
    "",
    "   ",
)


def fetch(
    at: datetime,
    target: LinkTarget = LinkTarget.ACTION,
    method: str = "GET",
    agent: str | None = CHROME,
    earlier: tuple[EarlierFetch, ...] = (),
) -> LinkFetch:
    return LinkFetch(target, method, agent, at, (SENT,), earlier)


MINUTES_LATER = SENT + timedelta(minutes=12)


@pytest.mark.parametrize("agent", BROWSERS)
def test_no_persons_browser_is_taken_for_a_scanner(agent: str) -> None:
    assert not is_scanner_agent(agent)
    assert classify(fetch(MINUTES_LATER, agent=agent), WINDOWS) == HUMAN


@pytest.mark.parametrize("agent", SCANNERS)
def test_scanner_agents_script_libraries_and_no_agent_are_machines(agent: str) -> None:
    assert is_scanner_agent(agent)
    verdict = classify(fetch(MINUTES_LATER, agent=agent), WINDOWS)
    assert verdict == machine(MachineSign.SCANNER_AGENT)
    assert verdict.machine


def test_the_honeypot_is_always_a_machine() -> None:
    verdict = classify(fetch(MINUTES_LATER, target=LinkTarget.HONEYPOT), WINDOWS)
    assert verdict == machine(MachineSign.HONEYPOT)


def test_head_is_a_machine_even_from_a_browser_agent() -> None:
    verdict = classify(fetch(MINUTES_LATER, method="head"), WINDOWS)
    assert verdict == machine(MachineSign.HEAD_REQUEST)


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (timedelta(seconds=-1), machine(MachineSign.RIGHT_AFTER_DELIVERY)),  # before sent_at
        (timedelta(seconds=2), machine(MachineSign.RIGHT_AFTER_DELIVERY)),
        (timedelta(seconds=30), machine(MachineSign.RIGHT_AFTER_DELIVERY)),
        (timedelta(seconds=31), HUMAN),
    ],
)
def test_right_after_delivery(after: timedelta, expected: object) -> None:
    assert classify(fetch(SENT + after), WINDOWS) == expected


def test_the_latest_delivery_time_known_counts() -> None:
    delivered = SENT + timedelta(hours=3)  # the delivered event came much later
    late = LinkFetch(LinkTarget.ACTION, "GET", CHROME, delivered + timedelta(seconds=4))
    assert classify(late, WINDOWS) == HUMAN  # nothing known about delivery: a person
    known = LinkFetch(
        LinkTarget.ACTION, "GET", CHROME, delivered + timedelta(seconds=4), (SENT, delivered)
    )
    assert classify(known, WINDOWS) == machine(MachineSign.RIGHT_AFTER_DELIVERY)


def test_another_link_of_the_message_seconds_before_is_a_burst() -> None:
    unsubscribe = EarlierFetch(LinkTarget.UNSUBSCRIBE, MINUTES_LATER, machine=False)
    soon = fetch(MINUTES_LATER + timedelta(seconds=2), earlier=(unsubscribe,))
    assert classify(soon, WINDOWS) == machine(MachineSign.BURST)
    later = fetch(MINUTES_LATER + timedelta(seconds=6), earlier=(unsubscribe,))
    assert classify(later, WINDOWS) == HUMAN


def test_the_same_link_twice_is_a_burst_only_after_a_machine() -> None:
    person = EarlierFetch(LinkTarget.ACTION, MINUTES_LATER, machine=False)
    probe = EarlierFetch(LinkTarget.ACTION, MINUTES_LATER, machine=True)
    again = MINUTES_LATER + timedelta(seconds=1)
    assert classify(fetch(again, earlier=(person,)), WINDOWS) == HUMAN  # a double click
    assert classify(fetch(again, earlier=(probe,)), WINDOWS) == machine(MachineSign.BURST)


def test_evidence_taints_only_clicks_within_the_burst_window_before_it() -> None:
    click = MINUTES_LATER
    assert taints(click + timedelta(milliseconds=200), click, WINDOWS.burst)
    assert taints(click + timedelta(seconds=5), click, WINDOWS.burst)
    assert not taints(click + timedelta(seconds=6), click, WINDOWS.burst)
    assert not taints(click - timedelta(seconds=1), click, WINDOWS.burst)


def test_windows_come_from_the_settings() -> None:
    settings = Settings(click_delivery_window_seconds=2, click_burst_window_seconds=0.5)
    assert Windows.from_settings(settings) == Windows(timedelta(seconds=2), timedelta(seconds=0.5))


@pytest.mark.parametrize(
    ("url", "honeypot"),
    [
        ("https://act.example.org/a/tok123/x", True),
        ("https://act.example.org/a/tok123/x?utm=1", True),
        ("https://act.example.org/a/x", False),  # a token that happens to be "x"
        ("https://act.example.org/a/tok123", False),
        ("https://act.example.org/a/tok123/sent", False),
        ("https://elsewhere.example/a/tok123/x", False),
        (None, False),
    ],
)
def test_the_honeypot_url_is_the_action_link_plus_x(url: str | None, honeypot: bool) -> None:
    assert is_honeypot_url(url, "https://act.example.org") is honeypot
