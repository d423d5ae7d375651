"""This year's campaign beside the 2020 one, made and run only through the CLI.

The 2020 campaign comes from `audiences/w4r-2020/` and sends its case email
on the 2020 clock (`--now`, in this process), as a database upgraded from
that year holds it. The 2026 campaign is `campaign init` plus the edits a
user makes to its files, and its window is around today. Its three waves and
a thank-you go through two real Celery workers to the local SendGrid, while
supporters act and leave through the real web app.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from faults.fault_fixtures import ROOT, World, delivery, recorded, wave_of
from sender.core.db import session_scope
from sender.core.models import Campaign, Supporter, Wave
from sender.core.vocabulary import SupporterStatus, WaveStatus
from sender.report.totals import build_report

pytest_plugins = ("faults.fault_fixtures",)
CAMPAIGN = Path(sys.executable).with_name("campaign")
PEOPLE = [f"person{n}@example.net" for n in range(12)]
WRITERS = PEOPLE[:3]  # send their letter after the case email
LEAVER = PEOPLE[11]  # unsubscribes with the link of their 2020 email
NOW = datetime.now(UTC)


def _cli(world: World, *args: str, redis: bool = True) -> str:
    env = world.worker_env()
    if not redis:  # the embedded default: the tick runs in this command
        env.pop("REDIS_URL")
    done = subprocess.run(
        [str(CAMPAIGN), *args], cwd=world.directory, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def _plan_2026(now: datetime) -> str:
    def wave(name: str, kind: str, minutes: int, audience: str) -> str:
        start = (now - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
        end = (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return (
            f"  - name: {name}\n    kind: {kind}\n    audience: {audience}\n"
            f"    start: {start}\n    end: {end}\n    window: '00:00-24:00'\n"
            f"    subjects: {{en: '{name} for {{{{ first_name }}}}'}}\n"
        )

    return "campaign: w4r-2026\nwaves:\n" + "".join(
        [
            wave("case-email", "case_email", 9, "all_assigned"),
            wave("reminder", "action_reminder", 8, "not_acted"),
            wave("last-chance", "last_chance", 7, "not_acted"),
            wave("thank-you", "thank_you", 6, "acted"),
        ]
    )


def _wave_id(world: World, slug: str, name: str) -> int:
    with session_scope(world.engine) as session:
        return session.scalars(
            select(Wave.id).join(Campaign).where(Campaign.slug == slug, Wave.name == name)
        ).one()


def _links(world: World, wave_id: int, email: str, marker: str) -> str:
    for row in recorded(world.sg):
        same_wave = str((row.get("custom_args") or {}).get("wave_id")) == str(wave_id)
        if same_wave and row["email"] == email:
            return next(link for link in row["links"] if marker in link and "/x" not in link)
    raise AssertionError(f"no mail of wave {wave_id} to {email}")


def _run(world: World, name: str) -> int:
    _cli(world, "wave", "launch", name, "--campaign", "w4r-2026")
    wave_id = _wave_id(world, "w4r-2026", name)
    world.drive(wave_id, timeout=90)
    return wave_id


@pytest.mark.slow
def test_this_years_campaign_runs_beside_2020_through_the_workers(world: World) -> None:
    # The supporters of both years, from one CRM export: shared by the campaigns.
    export = world.directory / "crm.csv"
    export.write_text(
        "email,first_name,country,language,timezone,consent\n"
        + "".join(f"{e},P{n},GB,en,UTC,yes\n" for n, e in enumerate(PEOPLE))
    )
    _cli(world, "supporters", "import", str(export), "--source", "crm")

    # 2020, on its own clock, in this process (its window ended years ago).
    _cli(world, "campaigns", "create", str(ROOT / "audiences" / "w4r-2020"))
    _cli(world, "assign", "--campaign", "w4r-2020", "--seed", "2020")
    then = "2020-12-01T09:30:00Z"
    _cli(world, "wave", "launch", "case-email", "--campaign", "w4r-2020", "--now", then,
         redis=False)  # fmt: skip
    _cli(world, "tick", "--now", then, redis=False)  # the subject test's share first
    _cli(world, "wave", "pick", "case-email", "B", "--campaign", "w4r-2020", "--now", then,
         redis=False)  # fmt: skip
    _cli(world, "tick", "--now", "2020-12-01T10:00:00Z", redis=False)  # the rest, with B
    old_wave = _wave_id(world, "w4r-2020", "case-email")
    delivery(world.sg, old_wave, PEOPLE).assert_exactly_once()

    # 2026: `campaign init`, the user's edits to its files, `campaigns create`.
    folder = world.directory / "w4r-2026"
    _cli(world, "init", str(folder))
    settings = folder / "campaign.yaml"
    # A compressed campaign: four waves within minutes, so no frequency cap.
    settings.write_text(
        settings.read_text().replace("frequency_cap_hours: 48", "frequency_cap_hours: 0")
    )
    (folder / "plan.yaml").write_text(_plan_2026(NOW))
    assert "campaign w4r-2026: created" in _cli(world, "campaigns", "create", str(folder))
    _cli(world, "assign", "--campaign", "w4r-2026")
    world.start_workers(2)

    first = _run(world, "case-email")
    delivery(world.sg, first, PEOPLE).assert_exactly_once()
    for email in WRITERS:  # the built-in action page: "I have sent my letter"
        answer = requests.post(_links(world, first, email, "/a/") + "/sent", timeout=10)
        assert answer.status_code == 200
    leave = requests.post(
        _links(world, old_wave, LEAVER, "/unsubscribe/"),
        data={"List-Unsubscribe": "One-Click"},
        timeout=10,
    )
    assert leave.status_code == 200

    rest = set(PEOPLE) - set(WRITERS) - {LEAVER}
    reminder = _run(world, "reminder")
    delivery(world.sg, reminder, sorted(rest)).assert_exactly_once()
    last = _run(world, "last-chance")
    delivery(world.sg, last, sorted(rest)).assert_exactly_once()
    thanks = _run(world, "thank-you")
    delivery(world.sg, thanks, WRITERS).assert_exactly_once()

    # An unsubscribe from the 2020 email stopped the 2026 mail too.
    with session_scope(world.engine) as session:
        leaver = session.scalars(select(Supporter).where(Supporter.email == LEAVER)).one()
        assert leaver.status == SupporterStatus.UNSUBSCRIBED
    # Reports stay apart: each counts its own mail.
    old, new = (build_report(world.engine, campaign=s)["totals"] for s in ("w4r-2020", "w4r-2026"))
    assert old["sends"] == len(PEOPLE) and old["acted"] == 0
    assert new["sends"] == len(PEOPLE) + 2 * len(rest) + len(WRITERS)
    assert new["acted"] == len(WRITERS) and new["letters"] == len(WRITERS)
    assert wave_of(world.engine, old_wave).status == WaveStatus.DONE
    assert all(w.alive() for w in world.workers)
