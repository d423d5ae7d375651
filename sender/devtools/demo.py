"""`campaign demo`: a whole Write for Rights campaign on the embedded defaults.

Everything runs for real, on this machine, in under two minutes: a messy CRM
export goes through the importer, cases are assigned, every variant is
previewed, three waves go out on a compressed clock through the project's
local SendGrid-compatible server (a separate process speaking HTTP), which
then posts signed events and supporters' replies back to the web app; the
report, its chart and a static HTML page close the loop.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import requests
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import Engine, select

from sender.audience.assignment import AssignReport, Strategy, assign
from sender.audience.importer import ImportReport, import_supporters
from sender.campaign.cases import LoadReport
from sender.campaign.folder import read_folder
from sender.campaign.registry import create_from_folder
from sender.campaign.waves import launch
from sender.core import db
from sender.core.clock import MovableClock
from sender.core.config import Settings, get_settings, reset_settings
from sender.core.errors import CampaignError
from sender.core.models import Campaign, Case, Event, SubjectTest, Wave
from sender.core.speedups import collector_paused
from sender.core.subject_test import SubjectTestSpec
from sender.core.vocabulary import EventType, RunMode, SubjectState, WaveKind
from sender.devtools.crm_export import write_crm_export
from sender.devtools.local_sendgrid.process import LocalSendGrid, local_sendgrid
from sender.devtools.local_sendgrid.webhooks import USER_AGENTS
from sender.devtools.services import free_port
from sender.devtools.webapp import serving
from sender.render.identity import sender_identity
from sender.render.preview import check_all, preview
from sender.render.renderer import CaseContent, Renderer
from sender.report.charts import write_chart
from sender.report.totals import Dimension, build_report, catch_up
from sender.send.pipeline import BatchResult
from sender.send.scheduler import InlineDispatcher, TickReport, tick
from sender.send.subject_tests import decide_at
from sender.send.wiring import default_sender
from sender.web import create_app

PROJECT = Path(__file__).resolve().parents[2]
CAMPAIGN_DIR = PROJECT / "audiences" / "w4r-2020"
TICK = timedelta(hours=1)  # simulated time between scheduler ticks
DEMO_KEY = "SG.demo-local-key"
DEMO_INBOUND_SECRET = "demo-inbound-secret"  # noqa: S105 - local demo only

# Reader behaviour per wave, as the local server simulates it: reminders are
# read less, and a few people complain or leave each time.
SCENARIOS: dict[str, dict[str, float]] = {
    "case_email": {
        "open_rate": 0.55,
        "machine_open_rate": 0.3,
        "click_rate": 0.45,
        "bounce_rate": 0.02,
        "spam_rate": 0.002,
        "unsubscribe_rate": 0.01,
    },
    "action_reminder": {
        "open_rate": 0.4,
        "machine_open_rate": 0.3,
        "click_rate": 0.35,
        "bounce_rate": 0.005,
        "spam_rate": 0.002,
        "unsubscribe_rate": 0.01,
    },
    "last_chance": {
        "open_rate": 0.35,
        "machine_open_rate": 0.3,
        "click_rate": 0.3,
        "bounce_rate": 0.005,
        "spam_rate": 0.002,
        "unsubscribe_rate": 0.015,
    },
}
REPLIES = (
    "Stay strong. People all over the world are thinking of you and writing for you.",
    "Mucha fuerza. No estás sola: miles de personas escriben por ti.",
    "Courage ! Nous sommes nombreux à écrire pour vous.",
    "كل التضامن معك، لست وحدك.",
    "STOP",
    "Je suis absent du bureau jusqu'au 4 janvier.",
)


@dataclass(frozen=True)
class DemoPaths:
    root: Path

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.root / 'campaign.db'}"

    @property
    def crm_export(self) -> Path:
        return self.root / "crm-export.csv"

    @property
    def rejected(self) -> Path:
        return self.root / "rejected-rows.csv"

    @property
    def previews(self) -> Path:
        return self.root / "previews"

    @property
    def chart(self) -> Path:
        return self.root / "actions-per-case.png"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    @property
    def sendgrid_state(self) -> Path:
        return self.root / "local-sendgrid.sqlite"


@dataclass(frozen=True)
class WaveOutcome:
    name: str
    kind: str
    messages_planned: int
    requests: int
    recipients: int
    events: int
    replies: int
    letters: int


@dataclass(frozen=True)
class DemoSummary:
    paths: DemoPaths
    cases: LoadReport
    imported: ImportReport
    assigned: AssignReport
    previews: tuple[Path, ...]
    waves: tuple[WaveOutcome, ...]
    report: dict[str, Any]
    dashboard_hint: str


class Narrator(Protocol):
    """What the demo tells the person watching; the CLI implements it with rich."""

    def step(self, title: str) -> None: ...

    def wave_started(self, wave: str) -> None: ...

    def tick(self, wave: str, now: datetime, report: TickReport, sent: int) -> None: ...

    def wave_finished(self, wave: str) -> None: ...


def prepare(root: Path) -> DemoPaths:
    """A fresh demo folder: the demo always starts from nothing."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    return DemoPaths(root)


def configure(paths: DemoPaths, server: LocalSendGrid, web_port: int) -> Settings:
    """Point every part (CLI functions, tasks, web app) at the demo's own world."""
    os.environ.update(
        # Demo mode: its secrets are published and its web app is plain http on
        # 127.0.0.1, which production refuses (sender.core.runmode).
        CAMPAIGN_MODE=RunMode.DEMO.value,
        DATABASE_URL=paths.database_url,
        SENDGRID_API_KEY=server.api_key,
        SENDGRID_API_HOST=server.base_url,
        SENDGRID_WEBHOOK_PUBLIC_KEY=server.public_key,
        PUBLIC_BASE_URL=f"http://127.0.0.1:{web_port}",
        OUTBOX_DIR=str(paths.root / "outbox"),
        INBOUND_SECRET=DEMO_INBOUND_SECRET,
        # The demo compresses a month into seconds, so its readers click a moment after
        # delivery, which the machine-click rules would take for a link scanner
        # (docs/TRACKING.md). The other rules (honeypot, HEAD, agents, bursts) stay on.
        CLICK_DELIVERY_WINDOW_SECONDS="0",
    )
    os.environ.pop("REDIS_URL", None)  # the embedded default: tasks run in this process
    reset_settings()
    return get_settings()


def load_audience(
    paths: DemoPaths,
    engine: Engine,
    supporters: int,
    seed: int,
) -> tuple[LoadReport, ImportReport, AssignReport]:
    # The campaign folder holds the cases and the plan: its waves wait as drafts.
    cases = create_from_folder(engine, read_folder(CAMPAIGN_DIR)).cases
    write_crm_export(paths.crm_export, supporters, seed=seed, style="fr", messy=True)
    imported = import_supporters(
        engine, paths.crm_export, source="demo CRM export", errors_path=paths.rejected
    )
    assigned = assign(engine, Strategy.BALANCED, seed=seed)
    return cases, imported, assigned


# The case email runs as a subject test: readers click more on variant B's subject
# (audiences/w4r-2020/plan.yaml), which the decision rule has to find.
PLANTED_SUBJECTS = {
    "your letter could set someone free": 0.75,
    "tu carta podría liberar": 0.75,
    "votre lettre pourrait libérer": 0.75,
    "رسالتك قد تحرّر": 0.75,
}


def test_share_sent(engine: Engine, wave_id: int) -> bool:
    """The wave's subject test waits for its decision, every test batch being out."""
    with db.session_scope(engine) as session:
        wave = session.get_one(Wave, wave_id)
        declared = SubjectTestSpec.from_json(wave.subject_test)
        state = session.get(SubjectTest, wave_id)
        if declared is None or state is None or state.state != SubjectState.TESTING:
            return False
        return decide_at(session, wave, declared) is not None


def run_wave(
    engine: Engine,
    settings: Settings,
    server: LocalSendGrid,
    wave: Wave,
    seed: int,
    narrator: Narrator,
) -> WaveOutcome:
    """Tick hour by simulated hour from the wave's start until it is done."""
    before = server.admin.stats()
    now = wave.starts_at - TICK
    clock = MovableClock(now)
    # One sender: its renderer caches the variants.
    sender = default_sender(settings, clock, collector_paused)
    planned, simulated, tested = 0, 0, 0
    scenario: dict[str, Any] = {**SCENARIOS[wave.kind], "subject_click_rates": PLANTED_SUBJECTS}
    first = int(before.get("recipients", 0))
    while now <= wave.ends_at + TICK:
        clock.at = now
        dispatcher = InlineDispatcher(sender)
        report = tick(engine, settings, now, dispatcher)
        planned += sum(p.messages for p in report.planned)
        sent = sum(r.sent for r in dispatcher.results if isinstance(r, BatchResult))
        narrator.tick(wave.name, now, report, sent)
        if wave.name in report.finished:
            break
        if not simulated and test_share_sent(engine, wave.id):
            # The test share's readers react before the decision, as they would in the wait.
            simulated = int(server.admin.stats().get("recipients", 0))
            share = server.admin.simulate(seed=seed, after_id=first, **scenario)
            tested = int(share.get("events", 0))
        now += TICK
    after = server.admin.stats()
    rest = server.admin.simulate(seed=seed, after_id=simulated or first, **scenario)
    events = {"events": int(rest.get("events", 0)) + tested}
    replies = send_replies(server, first, seed)
    letters = follow_action_links(engine, wave.id, share=0.6, seed=seed)
    return WaveOutcome(
        wave.name,
        wave.kind,
        planned,
        int(after.get("accepted_requests", 0)) - int(before.get("accepted_requests", 0)),
        int(after.get("recipients", 0)) - int(before.get("recipients", 0)),
        int(events.get("events", 0)),
        replies,
        letters,
    )


def follow_action_links(engine: Engine, wave_id: int, share: float, seed: int) -> int:
    """Some readers who clicked go on to write: the built-in page records their letter.

    The click URLs come from the provider's click events, exactly what the
    reader's browser opened; the web app answers as it would for them.
    """
    with db.session_scope(engine) as session:
        urls = [
            str(event.raw.get("url"))
            for event in session.scalars(
                select(Event).where(Event.wave_id == wave_id, Event.event_type == EventType.CLICKED)
            )
        ]
    letters = 0
    # A person's browser: the link records a machine click for a script's agent.
    browser = {"User-Agent": USER_AGENTS[0]}
    for url in random.Random(seed).sample(urls, k=int(len(urls) * share)):
        page = requests.get(url, allow_redirects=False, timeout=10, headers=browser)
        if page.status_code == 200:  # a case without its own action page: the built-in one
            done = requests.post(f"{url}/sent", timeout=10, headers=browser)
            letters += done.status_code == 200
    return letters


def send_replies(server: LocalSendGrid, after_id: int, seed: int) -> int:
    """A handful of supporters answer the email they got, in their own words."""
    recipients = server.admin.recipients(after_id=after_id, limit=len(REPLIES) * 3)
    sent = 0
    for index, recipient in enumerate(recipients[seed % 3 :: 3][: len(REPLIES)]):
        text = REPLIES[index % len(REPLIES)]
        subject = "Réponse automatique : absent" if "absent" in text else None
        server.admin.reply(
            **{
                "from": recipient["email"],
                "text": text,
                **({"subject": subject} if subject else {}),
            }
        )
        sent += 1
    return sent


def write_html_report(
    path: Path, report: dict[str, Any], chart: Path, waves: Sequence[WaveOutcome]
) -> Path:
    """A static page staff can open or attach: the table, the waves, the chart."""
    environment = Environment(
        loader=FileSystemLoader(PROJECT / "templates"), autoescape=True, undefined=StrictUndefined
    )
    environment.filters["cell"] = _cell
    page = environment.get_template("reports/campaign.html").render(
        report=report, waves=waves, chart=chart.name
    )
    path.write_text(page, encoding="utf-8")
    return path


def _cell(value: object) -> str:
    return f"{value:.1%}" if isinstance(value, float) else str(value)


def waves_in_order(engine: Engine) -> list[Wave]:
    with db.session_scope(engine) as session:
        return list(session.scalars(select(Wave).order_by(Wave.starts_at)))


def finish_report(paths: DemoPaths, engine: Engine, waves: list[WaveOutcome]) -> dict[str, Any]:
    # As the scheduler's next tick would: actions recorded after the last one count too.
    catch_up(engine, datetime.now(UTC))
    report = build_report(engine, Dimension.CASE)
    write_chart(report, paths.chart)
    write_html_report(paths.report_html, report, paths.chart, waves)
    return report


def write_previews(paths: DemoPaths, engine: Engine, settings: Settings) -> tuple[Path, ...]:
    """One case in each of its campaign's languages, as staff would check it before launch."""
    problems = check_all(engine, settings)
    if problems:
        raise CampaignError("templates refuse to render: " + "; ".join(map(str, problems)))
    with db.session_scope(engine) as session:
        case = session.scalars(select(Case).order_by(Case.id)).first()
        if case is None:
            raise CampaignError("no cases loaded")
        content = CaseContent.from_row(case)
        campaign = session.get(Campaign, case.campaign_id)
        languages = tuple(campaign.languages) if campaign and campaign.languages else ()
        renderer = Renderer(settings, sender_identity(settings, campaign))
    paths.previews.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for language in languages or renderer.templates.languages:
        result = preview(renderer, WaveKind.CASE_EMAIL, content, language)
        stem = paths.previews / f"{content.slug}-{language}"
        stem.with_suffix(".html").write_text(result.html, encoding="utf-8")
        stem.with_suffix(".txt").write_text(result.text, encoding="utf-8")
        stem.with_suffix(".eml").write_bytes(result.eml)
        written.append(stem.with_suffix(".html"))
    return tuple(written)


def run_demo(
    root: Path,
    narrator: Narrator,
    supporters: int = 3000,
    seed: int = 2020,
) -> DemoSummary:
    paths = prepare(root)
    web_port = free_port()
    web_url = f"http://127.0.0.1:{web_port}"
    with local_sendgrid(
        api_key=DEMO_KEY,
        state=paths.sendgrid_state,
        events_url=f"{web_url}/webhooks/sendgrid/events",
        inbound_url=f"{web_url}/webhooks/sendgrid/inbound",
        inbound_auth=("inbound", DEMO_INBOUND_SECRET),
    ) as server:
        settings = configure(paths, server, web_port)
        engine = db.get_engine(settings.database_url)
        db.ensure_schema(engine)
        narrator.step("Loading the seven 2020 cases, importing a messy CRM export, assigning")
        cases, imported, assigned = load_audience(paths, engine, supporters, seed)
        narrator.step("Previewing every variant; writing one case in four languages")
        previews = write_previews(paths, engine, settings)
        outcomes: list[WaveOutcome] = []
        with serving(create_app(), web_port):
            for wave in waves_in_order(engine):
                narrator.step(f"Wave {wave.name} ({wave.kind}) from {wave.starts_at:%d %b %Y}")
                launch(engine, settings, wave.name, wave.starts_at - TICK)
                narrator.wave_started(wave.name)
                outcomes.append(run_wave(engine, settings, server, wave, seed, narrator))
                narrator.wave_finished(wave.name)
        narrator.step("Counting actions per case")
        report = finish_report(paths, engine, outcomes)
    return DemoSummary(
        paths,
        cases,
        imported,
        assigned,
        previews,
        tuple(outcomes),
        report,
        "CAMPAIGN_MODE=demo campaign serve, then open /dashboard "
        "(login from STAFF_USER/STAFF_PASSWORD)",
    )
