"""Two campaigns in one database: shared supporters, their own waves and reports.

Each campaign is a folder created with `create_from_folder`, its window taken
from the clock; the waves go through the real scheduler and pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from campaign_fixtures import campaign_yaml
from sending_fixtures import RecordingTransport, add_supporters, make_sender
from sqlalchemy import Engine, select

from sender.audience.assignment import Strategy, assign
from sender.campaign.campaigns import CampaignChoiceNeeded, CampaignClosed, resolve_campaign
from sender.campaign.cases import load_cases
from sender.campaign.folder import read_folder
from sender.campaign.registry import close_campaign, create_from_folder
from sender.campaign.waves import launch, pause
from sender.core.clock import MovableClock
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.errors import InvalidInput
from sender.core.models import Batch, Case, Message, Supporter, Wave
from sender.core.vocabulary import BatchStatus, MessageStatus, WaveStatus
from sender.report.campaigns import compare_campaigns
from sender.report.totals import Dimension, build_report
from sender.send.pipeline import send_batch
from sender.send.scheduler import InlineDispatcher, tick
from sender.track.unsubscribe import unsubscribe

SETTINGS = Settings(secret_key="test-secret-for-many-campaigns-0123456789")
NOW = datetime.now(UTC).replace(microsecond=0)

CASES = """cases:
  - slug: {slug}-case
    person: Person of {slug}
    country: MA
    status: active
    content:
      en:
        title: Free them
        summary: Jailed for speaking out.
        ask: Release them.
        authority: The minister
        authority_address: [Ministry, Rabat, Morocco]
        letter: Please release them.
"""
PLAN = """waves:
  - name: case-email
    kind: case_email
    start: '{start}'
    end: '{end}'
    window: "00:00-24:00"
    subjects: {{en: "Write today, {{{{ first_name }}}}"}}
"""


def _folder(tmp_path: Path, slug: str, cap: int | None = 48) -> Path:
    folder = tmp_path / slug
    folder.mkdir()
    (folder / "campaign.yaml").write_text(campaign_yaml(slug, NOW, frequency_cap_hours=cap))
    (folder / "cases.yaml").write_text(CASES.format(slug=slug))
    start, end = NOW - timedelta(minutes=5), NOW + timedelta(days=1)
    (folder / "plan.yaml").write_text(PLAN.format(start=start.isoformat(), end=end.isoformat()))
    return folder


def _open(engine: Engine, tmp_path: Path, slug: str, cap: int | None = 48) -> int:
    create_from_folder(engine, read_folder(_folder(tmp_path, slug, cap)))
    with session_scope(engine) as session:
        return session.scalars(select(Case.id).where(Case.slug == f"{slug}-case")).one()


def _launch(engine: Engine, slug: str) -> None:
    launch(engine, SETTINGS, "case-email", NOW, check=lambda _e, _s: [], campaign=slug)


def _tick(engine: Engine, transport: RecordingTransport, at: datetime = NOW) -> None:
    clock = MovableClock(at)
    dispatcher = InlineDispatcher(make_sender(engine, SETTINGS, transport, clock))
    tick(engine, SETTINGS, at, dispatcher)


def _mail(engine: Engine) -> dict[tuple[str, str | None], str]:
    """(campaign slug, email) -> message status, with the skip reason if any."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(Case.slug, Supporter.email, Message.status, Message.skip_reason)
            .join(Case, Case.id == Message.case_id)
            .join(Supporter, Supporter.id == Message.supporter_id)
        ).all()
    return {
        (case.removesuffix("-case"), email): status + (f":{reason}" if reason else "")
        for case, email, status, reason in rows
    }


@pytest.mark.parametrize("cap", [48, 0])
def test_a_supporter_in_both_campaigns_gets_mail_within_the_shared_cap(
    pg_engine: Engine, tmp_path: Path, cap: int
) -> None:
    first, second = _open(pg_engine, tmp_path, "w4r-a"), _open(pg_engine, tmp_path, "w4r-b", cap)
    add_supporters(pg_engine, [first, second], ["both@example.org"])
    add_supporters(pg_engine, [second], ["only-b@example.org"])
    _launch(pg_engine, "w4r-a")
    transport = RecordingTransport()
    _tick(pg_engine, transport)
    assert transport.emails() == ["both@example.org"]
    _launch(pg_engine, "w4r-b")
    _tick(pg_engine, transport, NOW + timedelta(minutes=1))
    mail = _mail(pg_engine)
    assert mail[("w4r-a", "both@example.org")] == MessageStatus.SENT
    assert mail[("w4r-b", "only-b@example.org")] == MessageStatus.SENT
    if cap:
        # The other campaign's email a minute ago counts against this one's cap:
        # the planner leaves that supporter out of this wave.
        assert ("w4r-b", "both@example.org") not in mail
        assert sorted(transport.emails()) == ["both@example.org", "only-b@example.org"]
    else:
        assert mail[("w4r-b", "both@example.org")] == MessageStatus.SENT
        assert sorted(transport.emails()).count("both@example.org") == 2
    # Each campaign's report counts its own mail only.
    assert build_report(pg_engine, campaign="w4r-a")["totals"]["sends"] == 1
    assert build_report(pg_engine, campaign="w4r-b")["totals"]["sends"] == (1 if cap else 2)


def test_an_unsubscribe_from_one_campaign_stops_the_other(
    pg_engine: Engine, tmp_path: Path
) -> None:
    first, second = _open(pg_engine, tmp_path, "w4r-a"), _open(pg_engine, tmp_path, "w4r-b", 0)
    add_supporters(pg_engine, [first, second], ["leaving@example.org", "staying@example.org"])
    _launch(pg_engine, "w4r-a")
    transport = RecordingTransport()
    _tick(pg_engine, transport)
    with session_scope(pg_engine) as session:
        leaving = session.scalars(
            select(Supporter).where(Supporter.email == "leaving@example.org")
        ).one()
        assert unsubscribe(session, leaving, "link", NOW)
    _launch(pg_engine, "w4r-b")
    _tick(pg_engine, transport, NOW + timedelta(minutes=1))
    assert sorted(transport.emails()) == [
        "leaving@example.org",
        "staying@example.org",
        "staying@example.org",
    ]


def test_pausing_one_campaign_leaves_the_other_sending(pg_engine: Engine, tmp_path: Path) -> None:
    first, second = _open(pg_engine, tmp_path, "w4r-a"), _open(pg_engine, tmp_path, "w4r-b")
    add_supporters(pg_engine, [first], ["a@example.org"])
    add_supporters(pg_engine, [second], ["b@example.org"])
    _launch(pg_engine, "w4r-a")
    _launch(pg_engine, "w4r-b")
    # The same wave name in both campaigns: --campaign says which one.
    assert pause(pg_engine, "case-email", campaign="w4r-a") == "wave case-email paused"
    transport = RecordingTransport()
    _tick(pg_engine, transport)
    assert transport.emails() == ["b@example.org"]
    with session_scope(pg_engine) as session:
        states = dict(session.execute(select(Wave.campaign_id, Wave.status)).all())
    assert sorted(states.values()) == [WaveStatus.DONE, WaveStatus.PAUSED]


def test_without_a_campaign_named_two_open_campaigns_are_listed(
    pg_engine: Engine, tmp_path: Path
) -> None:
    _open(pg_engine, tmp_path, "w4r-a")
    _open(pg_engine, tmp_path, "w4r-b")
    with session_scope(pg_engine) as session, pytest.raises(CampaignChoiceNeeded) as error:
        resolve_campaign(session, None)
    assert "2 campaigns are open (w4r-a, w4r-b): pass --campaign SLUG" in str(error.value)
    with pytest.raises(CampaignChoiceNeeded):
        pause(pg_engine, "case-email")
    with session_scope(pg_engine) as session:
        assert {w.status for w in session.scalars(select(Wave))} == {WaveStatus.DRAFT}


def test_a_closed_campaign_sends_nothing_and_refuses_every_change(
    pg_engine: Engine, tmp_path: Path
) -> None:
    first, second = _open(pg_engine, tmp_path, "w4r-a"), _open(pg_engine, tmp_path, "w4r-b")
    add_supporters(pg_engine, [first], ["a@example.org", "a2@example.org"])
    add_supporters(pg_engine, [second], ["b@example.org"])
    _launch(pg_engine, "w4r-a")
    _launch(pg_engine, "w4r-b")
    lines = close_campaign(pg_engine, "w4r-a", NOW)
    assert lines[0] == "wave case-email stopped (0 unsent batches dropped)"
    assert close_campaign(pg_engine, "w4r-a", NOW)[0].startswith("campaign w4r-a was already")
    transport = RecordingTransport()
    _tick(pg_engine, transport)
    assert transport.emails() == ["b@example.org"]  # the open campaign is now the only one
    refusals = [
        lambda: _launch(pg_engine, "w4r-a"),
        lambda: pause(pg_engine, "case-email", campaign="w4r-a"),
        lambda: load_cases(pg_engine, tmp_path / "w4r-a" / "cases.yaml", "w4r-a"),
        lambda: assign(pg_engine, Strategy.BALANCED, campaign_slug="w4r-a"),
        lambda: create_from_folder(pg_engine, read_folder(tmp_path / "w4r-a")),
    ]
    for refused in refusals:
        with pytest.raises(CampaignClosed, match="campaign 'w4r-a' is closed"):
            refused()
    with session_scope(pg_engine) as session:
        waves = {w.campaign_id: w.status for w in session.scalars(select(Wave))}
        assert WaveStatus.CANCELLED in waves.values()
        assert not session.scalars(select(Batch).where(Batch.status == BatchStatus.PENDING)).all()


def test_a_batch_of_a_campaign_closed_while_queued_never_sends(
    pg_engine: Engine, tmp_path: Path
) -> None:
    case = _open(pg_engine, tmp_path, "w4r-a")
    add_supporters(pg_engine, [case], ["a@example.org"])
    _launch(pg_engine, "w4r-a")
    # Plan and queue the batch, but lose the worker's send: the batch stays queued.
    tick(pg_engine, SETTINGS, NOW, _Dropping())
    close_campaign(pg_engine, "w4r-a", NOW)
    transport = RecordingTransport()
    sender = make_sender(pg_engine, SETTINGS, transport, MovableClock(NOW))
    with session_scope(pg_engine) as session:
        batch_id = session.scalars(select(Batch.id)).one()
    send_batch(batch_id, sender)
    assert transport.emails() == []
    with session_scope(pg_engine) as session:
        assert session.get_one(Batch, batch_id).status == BatchStatus.CANCELLED


class _Dropping:
    """A dispatcher whose broker loses every task."""

    def dispatch(self, batch_ids: Sequence[int]) -> None:
        del batch_ids


def test_two_campaigns_compared_side_by_side(pg_engine: Engine, tmp_path: Path) -> None:
    first, second = _open(pg_engine, tmp_path, "w4r-a"), _open(pg_engine, tmp_path, "w4r-b", 0)
    add_supporters(pg_engine, [first, second], ["both@example.org"])
    add_supporters(pg_engine, [second], ["only-b@example.org"])
    _launch(pg_engine, "w4r-a")
    _launch(pg_engine, "w4r-b")
    _tick(pg_engine, RecordingTransport())
    by_case = compare_campaigns(pg_engine, ["w4r-a", "w4r-b"])
    assert by_case["campaigns"] == ["w4r-a", "w4r-b"]
    cells = {row["key"]: row["campaigns"] for row in by_case["rows"]}
    # Each year's case lines up only with itself; the other year's column is empty.
    assert cells["w4r-a-case"]["w4r-b"] is None and cells["w4r-b-case"]["w4r-a"] is None
    assert cells["w4r-a-case"]["w4r-a"]["sends"] == 1
    assert cells["w4r-b-case"]["w4r-b"]["sends"] == 2
    by_wave = compare_campaigns(pg_engine, ["w4r-b", "w4r-a"], Dimension.WAVE)
    (wave_row,) = by_wave["rows"]  # the same wave name in both years is one row
    assert wave_row["key"] == "case-email"
    assert {slug: c["sends"] for slug, c in wave_row["campaigns"].items()} == {
        "w4r-a": 1,
        "w4r-b": 2,
    }
    assert {slug: t["sends"] for slug, t in by_wave["totals"].items()} == {"w4r-a": 1, "w4r-b": 2}


@pytest.mark.parametrize(
    ("slugs", "by", "why"),
    [
        (["w4r-a"], Dimension.CASE, "two or more different campaigns"),
        (["w4r-a", "w4r-a"], Dimension.CASE, "two or more different campaigns"),
        (["w4r-a", "w4r-b"], Dimension.DAY, "different days"),
    ],
)
def test_a_comparison_that_cannot_be_made_says_why(
    pg_engine: Engine, tmp_path: Path, slugs: list[str], by: Dimension, why: str
) -> None:
    _open(pg_engine, tmp_path, "w4r-a")
    _open(pg_engine, tmp_path, "w4r-b")
    with pytest.raises(InvalidInput, match=why):
        compare_campaigns(pg_engine, slugs, by)
