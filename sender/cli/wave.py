"""`campaign wave ...`, `campaign tick` and `campaign run`: staff controls for waves.

Without REDIS_URL every command does its work in this process; with it, the
sending is left to the workers (the tick is enqueued).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, TypeVar

import typer
from sqlalchemy import Engine

from sender.campaign import waves
from sender.campaign.plan_file import wave_spec
from sender.celery_app import TICK_TASK
from sender.cli.common import (
    CampaignOption,
    audited_change,
    campaign_id,
    campaign_slug,
    console,
    current_actor,
    fitted_tables,
    open_database,
)
from sender.core.clock import MovableClock
from sender.core.config import get_settings
from sender.core.db import session_scope
from sender.core.errors import InvalidInput
from sender.core.speedups import collector_paused
from sender.send.pipeline import Sender
from sender.send.scheduler import InlineDispatcher, TickReport, tick
from sender.send.transport.select import transport_for
from sender.send.wiring import default_sender
from sender.staff import audit
from sender.staff.actions import What

T = TypeVar("T")

app = typer.Typer(
    help="Timed waves: declare, launch, pause, resume, cancel, proof.", no_args_is_help=True
)

NowOption = Annotated[
    str | None,
    typer.Option("--now", help="Act as if it were this instant (ISO 8601, UTC if no zone)."),
]


def parse_instant(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise InvalidInput(f"{text!r} is not an ISO 8601 instant") from error
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _pairs(values: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key.strip() or not text.strip():
            raise InvalidInput(f"{what} {value!r} is not LANG=TEXT")
        out[key.strip()] = text.strip()
    return out


@app.command()
def create(
    name: str,
    kind: Annotated[
        str, typer.Option(help="an email kind: case_email, action_reminder, ... (docs/KINDS.md)")
    ],
    start: Annotated[str, typer.Option(help="ISO 8601 start")],
    end: Annotated[str, typer.Option(help="ISO 8601 end")],
    subject: Annotated[list[str], typer.Option(help="LANG=TEXT, repeatable")],
    audience: Annotated[
        str | None,
        typer.Option(help="all_assigned, not_acted, opened_not_acted, acted, case_assigned"),
    ] = None,
    window: Annotated[
        str | None,
        typer.Option(help="local send window HH:MM-HH:MM (default: the campaign's)"),
    ] = None,
    rate: Annotated[int | None, typer.Option(help="messages per hour")] = None,
    variant: Annotated[
        list[str] | None,
        typer.Option(
            help="a subject test variant's subject, NAME:LANG=TEXT, repeatable (2-4 variants)"
        ),
    ] = None,
    variant_preheader: Annotated[
        list[str] | None, typer.Option(help="a variant's preheader, NAME:LANG=TEXT, repeatable")
    ] = None,
    test_share: Annotated[float, typer.Option(help="share of the audience tested")] = 0.2,
    test_metric: Annotated[
        str, typer.Option(help="human_clicks, actions or human_opens")
    ] = "human_clicks",
    test_wait_hours: Annotated[float, typer.Option(help="wait after the test share")] = 4,
    test_seed: Annotated[int, typer.Option(help="seed of the test share's draw")] = 0,
    test_default: Annotated[
        str | None, typer.Option(help="variant sent when none wins (default: the first)")
    ] = None,
    test_min_sends: Annotated[int, typer.Option(help="fewest sent per variant")] = 100,
    test_confidence: Annotated[
        float, typer.Option(help="of the two-proportion test, e.g. 0.95")
    ] = 0.95,
    campaign: CampaignOption = None,
) -> None:
    """Declare one wave (a draft until launched), optionally as a subject test."""
    variants = _variants(variant or [], variant_preheader or [])
    test = (
        {
            "variants": variants,
            "default": test_default,
            "share": test_share,
            "seed": test_seed,
            "metric": test_metric,
            "wait_hours": test_wait_hours,
            "min_sends": test_min_sends,
            "confidence": test_confidence,
        }
        if variants
        else None
    )
    spec = wave_spec(
        name=name,
        kind=kind,
        start=parse_instant(start),
        end=parse_instant(end),
        subjects=_pairs(subject, "subject"),
        audience=audience,
        window=window,
        rate_per_hour=rate,
        subject_test=test,
    )
    engine = open_database()
    templates = get_settings().templates_dir
    _audited(
        engine,
        What.WAVE_CREATE,
        name,
        campaign,
        lambda: waves.create_wave(engine, spec, campaign, templates),
        detail=lambda _: (
            f"kind={kind} {spec.starts_at:%Y-%m-%d %H:%M} to {spec.ends_at:%Y-%m-%d %H:%M}"
        ),
    )
    console.print(f"wave {name} created (draft)")


def _variants(subjects: list[str], preheaders: list[str]) -> list[dict[str, object]]:
    """`B:en=Text` options into the plan file's variant entries, in the order first named."""
    found: dict[str, dict[str, dict[str, str]]] = {}
    for part, values in (("subjects", subjects), ("preheaders", preheaders)):
        for value in values:
            name, sep, pair = value.partition(":")
            if not sep or not name.strip():
                raise InvalidInput(f"variant {value!r} is not NAME:LANG=TEXT")
            entry = found.setdefault(name.strip(), {"subjects": {}, "preheaders": {}})
            entry[part].update(_pairs([pair], "variant"))
    return [{"name": name, **parts} for name, parts in found.items()]


@app.command()
def pick(
    name: str,
    variant: str,
    now: NowOption = None,
    campaign: CampaignOption = None,
) -> None:
    """Pick a subject test's winner by hand, before its wait ends; the next tick sends it."""
    from sender.campaign.subject_tests import pick as pick_winner

    at = parse_instant(now)
    engine = open_database()
    actor = current_actor()
    # The pick records its own audit row, done or failed.
    audit.check(engine, actor, What.WAVE_PICK, f"wave {name}", campaign_id(engine, campaign))
    console.print(pick_winner(engine, name, variant, at, actor, campaign))
    _kick(at)


@app.command("list")
def list_waves(campaign: CampaignOption = None) -> None:
    """Every wave with its state and message counts."""
    from rich.markup import escape

    from sender.campaign.campaigns import resolve_campaign
    from sender.ops.counts import MessageCounts, message_counts
    from sender.send import store as repo

    with session_scope(open_database()) as session:
        target = resolve_campaign(session, campaign)
        slug = target.slug
        all_waves = repo.waves_of(session, target.id)
        counts = message_counts(session, [w.id for w in all_waves])
    if not all_waves:
        console.print("no waves yet: `campaign plan apply FILE` or `campaign wave create`")
        return
    headers = ["wave", "kind", "status", "starts (UTC)", "planned", "sent", "skipped", "failed"]
    rows = []
    for w in all_waves:
        c = counts.get(w.id, MessageCounts())
        rows.append(
            [w.name, w.kind, w.status, f"{w.starts_at:%Y-%m-%d %H:%M}"]
            + [f"{n:,}" for n in (c.planned, c.sent, c.skipped, c.failed)]
        )
    for table in fitted_tables(f"Waves of {slug}", headers, rows):
        console.print(table)
    for w in all_waves:
        if w.status_reason:
            console.print(f"{escape(w.name)}: {escape(w.status_reason)}")


@app.command()
def launch(name: str, now: NowOption = None, campaign: CampaignOption = None) -> None:
    """Check every template, then schedule the wave (it starts on its own)."""
    settings = get_settings()
    engine = open_database(settings)
    at = parse_instant(now)
    run = partial(waves.launch, engine, settings, name, at, campaign=campaign)
    console.print(_audited(engine, What.WAVE_LAUNCH, name, campaign, run))
    _kick(at)


@app.command()
def pause(name: str, campaign: CampaignOption = None) -> None:
    """Stop sending at once; batches in flight finish, the rest wait."""
    engine = open_database()
    run = partial(waves.pause, engine, name, campaign=campaign)
    console.print(_audited(engine, What.WAVE_PAUSE, name, campaign, run))


@app.command()
def resume(name: str, now: NowOption = None, campaign: CampaignOption = None) -> None:
    """Go on sending a paused wave."""
    at = parse_instant(now)
    engine = open_database()
    run = partial(waves.resume, engine, name, at, campaign)
    console.print(_audited(engine, What.WAVE_RESUME, name, campaign, run))
    _kick(at)


@app.command()
def cancel(name: str, campaign: CampaignOption = None) -> None:
    """Drop every unsent batch of the wave for good."""
    engine = open_database()
    run = partial(waves.cancel, engine, name, campaign)
    console.print(_audited(engine, What.WAVE_CANCEL, name, campaign, run))


@app.command("retry-failed")
def retry_failed(name: str, now: NowOption = None, campaign: CampaignOption = None) -> None:
    """Queue the batches the provider refused again (after fixing the cause)."""
    engine = open_database()
    run = partial(waves.retry_failed, engine, name, campaign)
    count = _audited(engine, What.WAVE_RETRY, name, campaign, run, detail=_queued)
    console.print(f"wave {name}: {count} failed batches queued again")
    if count:
        _kick(parse_instant(now))


@app.command("test")
def proof(
    name: str,
    to: Annotated[list[str], typer.Option("--to", help="staff address, repeatable")],
    campaign: CampaignOption = None,
) -> None:
    """Send every variant of the wave to staff only; nothing is recorded as sent."""
    from sender.send.proofs import send_proofs

    settings = get_settings()
    engine = open_database(settings)
    slug = campaign_slug(engine, campaign)
    sent = _audited(
        engine,
        What.WAVE_PROOF,
        name,
        slug,
        lambda: send_proofs(engine, settings, slug, name, to, transport_for(settings)),
        # A count, not the addresses: --to could name anyone.
        detail=lambda sent: f"{len(sent)} variants to {len(to)} addresses",
    )
    for item in sent:
        label = f"{item.case}/{item.language}" + (f"/{item.variant}" if item.variant else "")
        console.print(f"proof {label} → {', '.join(item.to)}")
    console.print(f"{len(sent)} variants sent to staff")


def _audited(
    engine: Engine,
    what: What,
    name: str,
    campaign: str | None,
    change: Callable[[], T],
    detail: Callable[[T], str | None] | None = None,
) -> T:
    """A wave change, checked and recorded with the wave's status before and after."""
    return audited_change(
        engine,
        what,
        f"wave {name}",
        change,
        campaign_id=campaign_id(engine, campaign),
        before=waves.wave_status(engine, name, campaign),
        after=lambda _: waves.wave_status(engine, name, campaign),
        detail=detail,
    )


def _queued(count: int) -> str:
    return f"{count} failed batches queued again"


def _kick(now: datetime) -> None:
    """Run a tick now: here without Redis, on a worker with it."""
    settings = get_settings()
    if settings.uses_redis:
        _enqueue_tick()
        return
    _print(_tick_here(now))


def _enqueue_tick() -> None:
    from sender.celery_app import create_celery

    create_celery(get_settings()).send_task(TICK_TASK)


def _tick_here(now: datetime, sender: Sender | None = None) -> TickReport:
    """One tick in this process; `sender` carries the clock and the renderer's cache."""
    settings = get_settings()
    engine = open_database(settings)
    sender = sender or default_sender(settings, MovableClock(now), collector_paused)
    return tick(engine, settings, now, InlineDispatcher(sender))


def _print(report: TickReport) -> None:
    for line in report.lines():
        console.print(line)


def tick_command(now: NowOption = None) -> None:
    """One scheduler tick: missed waves, planning, releases, reconciliation."""
    settings = get_settings()
    if settings.uses_redis and now is None:
        _enqueue_tick()
        console.print("tick enqueued")
        return
    _print(_tick_here(parse_instant(now)))


def run_command(
    until: Annotated[str, typer.Option(help="stop at this (simulated) instant, ISO 8601")],
    start: Annotated[
        str | None, typer.Option("--from", help="simulated start; default now")
    ] = None,
    speed: Annotated[float, typer.Option(help="simulated seconds per real second")] = 1.0,
    step: Annotated[float, typer.Option(help="simulated seconds between ticks")] = 30.0,
) -> None:
    """Tick in this process on a (possibly compressed) clock until --until."""
    if speed <= 0 or step <= 0:
        raise InvalidInput("--speed and --step must be positive")
    end = parse_instant(until)
    clock = MovableClock(parse_instant(start))
    sender = default_sender(get_settings(), clock, collector_paused)
    while clock.now() < end:
        began = time.monotonic()
        _print(_tick_here(clock.now(), sender))
        time.sleep(max(0.0, step / speed - (time.monotonic() - began)))
        clock.advance(seconds=step)
    clock.at = end
    _print(_tick_here(end, sender))
    console.print(f"run finished at {end:%Y-%m-%d %H:%M} UTC")
