"""The dashboard's subject-test panel: per variant, people apart from machines."""

from __future__ import annotations

import re
from datetime import timedelta

from sending_fixtures import DEC1, RecordingTransport, make_sender
from sqlalchemy import Engine
from subject_test_fixtures import add_test_wave, audience, declared_test, recipients, signal
from web_fixtures import log_in, make_app

from sender.core.clock import MovableClock
from sender.core.config import Settings
from sender.core.vocabulary import ActionKind
from sender.send.scheduler import InlineDispatcher, tick

SETTINGS = Settings(secret_key="test")


def test_the_dashboard_shows_each_variant_with_its_rate_and_interval(pg_engine: Engine) -> None:
    audience(pg_engine, SETTINGS, per_stratum=25)
    wave = add_test_wave(pg_engine, SETTINGS, declared_test(share=0.4))
    clock = MovableClock(DEC1 + timedelta(hours=9))
    sender = make_sender(pg_engine, SETTINGS, RecordingTransport(), clock)
    tick(pg_engine, SETTINGS, clock.at, InlineDispatcher(sender))
    b_side = [s for s, (variant, *_) in recipients(pg_engine, wave).items() if variant == "B"]
    signal(pg_engine, wave, b_side[:5], ActionKind.CLICKED)
    signal(pg_engine, wave, b_side, ActionKind.CLICKED_MACHINE)
    client = make_app(pg_engine).test_client()
    assert log_in(client) == 302
    html = client.get("/dashboard/").get_data(as_text=True)
    # The figures are the running totals: the signals since the last tick are not in them yet.
    assert "Figures as of 2020-12-01 09:00 UTC." in html
    assert re.search(
        r'<tr data-variant="B">\s*<td>B</td>\s*<td>test</td>\s*<td>20</td>'
        r"\s*<td>0</td><td>0</td>\s*<td>0</td>",
        html,
    )
    clock.advance(minutes=30)
    tick(pg_engine, SETTINGS, clock.at, InlineDispatcher(sender))  # counts them
    html = client.get("/dashboard/").get_data(as_text=True)
    assert "subject test of A, B on human_clicks, 40% test share" in html
    assert "Figures as of 2020-12-01 09:30 UTC." in html
    row = re.search(r'<tr data-variant="B">(.*?)</tr>', html, re.S)
    assert row is not None
    cells = re.findall(r"<td>(.*?)</td>", row.group(1), re.S)
    # variant, part, sent, human opens, machine opens, human clicks, machine clicks, actions
    assert cells[1:8] == ["test", "20", "0", "0", "5", "20", "0"]
    assert cells[8].startswith("25.0%") and re.fullmatch(r"\d+\.\d–\d+\.\d%", cells[9])
