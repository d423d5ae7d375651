"""`campaign status [--watch]`: waves in flight, queues, workers and rate buckets."""

from __future__ import annotations

import time
from datetime import timedelta

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from sender.celery_app import create_celery
from sender.cli.common import console, open_database
from sender.core.clock import SystemClock
from sender.core.config import get_settings
from sender.core.vocabulary import WaveStatus
from sender.ops.status import IN_PROCESS, LiveSource, StatusReport, WaveProgress, snapshot
from sender.ops.subject_status import subject_lines

HELP = "Show sending progress: per wave sent/failed/left, rate, ETA; queues and workers."


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "stalled"
    return str(timedelta(seconds=round(seconds)))


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def eta_text(wave: WaveProgress) -> str:
    """What is left to wait, in words that do not call a wave between windows stalled."""
    if wave.planned == 0:
        return "not planned yet"
    if wave.remaining == 0:
        return "done" if wave.unsettled == 0 else "settling"
    if wave.status == WaveStatus.PAUSED:
        return "paused"
    if wave.waiting_for_window:
        return f"next in {_duration(wave.next_batch_seconds)}"
    return _duration(wave.eta_seconds)


def _bar(wave: WaveProgress) -> ProgressBar:
    return ProgressBar(
        total=max(wave.planned, 1),
        completed=wave.planned - wave.remaining,
        width=20,
        complete_style="yellow",
        finished_style="green",
    )


def wave_block(wave: WaveProgress) -> RenderableType:
    """Three short lines per wave: readable in an 80-column terminal, numbers that add up.

    planned = sent + failed + skipped + left, so an operator can check at a glance
    that nothing went missing.
    """
    title = Text.assemble(
        (f"{wave.campaign}/{wave.name}", "bold"),
        f"  {wave.status}  ",
    )
    header = Table.grid(padding=(0, 1))
    header.add_row(title, _bar(wave), f"{wave.done_fraction:.0%}")
    counts = Text.assemble(
        f"  planned {wave.planned:,} = sent {wave.sent:,} + ",
        (f"failed {wave.failed:,}", "red" if wave.failed else ""),
        f" + skipped {wave.skipped:,} + left {wave.remaining:,}",
    )
    # A paused wave says why (a staff pause, a refused key, an account stop) and what to do.
    why = (
        [Text(f"  {wave.reason}", style="yellow")]
        if wave.status == WaveStatus.PAUSED and wave.reason
        else []
    )
    if wave.remaining == 0 and wave.unsettled == 0:
        return Group(header, counts, *why)
    pace = f"  {wave.per_minute:,}/min in the last minute, ETA {eta_text(wave)}"
    if wave.oldest_waiting_seconds is not None:
        pace += f", oldest due batch waiting {_duration(wave.oldest_waiting_seconds)}"
    return Group(header, counts, Text(pace), *why)


def waves_view(report: StatusReport) -> RenderableType:
    return Group(*(wave_block(wave) for wave in report.waves))


def live_lines(report: StatusReport) -> Text:
    live = report.live
    if live.mode == IN_PROCESS:
        return Text("Redis: not configured, tasks run in-process (no queues, no workers).")
    if live.problem:
        return Text(live.problem, style="bold red")
    queues = ", ".join(f"{name} {depth:,}" for name, depth in live.queues.items()) or "none"
    workers = ", ".join(live.workers) or "none answering"
    buckets = ", ".join(f"{b.key} {b.tokens:,.0f}" for b in live.buckets) or "none in use"
    return Text(f"Queues: {queues}\nWorkers: {workers}\nRate buckets (tokens): {buckets}")


def problem_lines(report: StatusReport) -> list[RenderableType]:
    """Batches sent with no answer, then failed batches with the provider's reason."""
    lines: list[RenderableType] = [
        Text(
            f"wave {w.name}: {_plural(w.unsettled, 'batch')} sent with no answer yet; "
            "settled from provider events before anything is resent",
            style="yellow",
        )
        for w in report.waves
        if w.unsettled
    ]
    lines += [
        Text(
            f"failed batch {b.batch_id} (wave {b.wave or b.wave_id}, case {b.case or b.case_id}, "
            f"{_plural(b.size, 'message')}, {_plural(b.attempts, 'attempt')}): {b.reason}",
            style="red",
        )
        for b in report.failed_batches
    ]
    return lines


def rejected_lines(report: StatusReport) -> list[RenderableType]:
    """Webhook events kept raw (not storable, or refused), with the latest reasons."""
    rejected = report.rejected_events
    if not rejected.count:
        return []
    lines: list[RenderableType] = []
    if rejected.refused:
        lines.append(
            Text(
                f"{_plural(rejected.refused, 'webhook event')} refused: not bound to a message "
                "we sent (mismatched custom args or another installation); they changed "
                "no supporter",
                style="red",
            )
        )
    if rejected.unstorable:
        lines.append(
            Text(
                f"{_plural(rejected.unstorable, 'webhook event')} could not be stored and "
                "are kept raw (rejected_events)",
                style="yellow",
            )
        )
    lines.append(Text("latest kept raw (rejected_events):", style="yellow"))
    lines += [
        Text(f"  {r.received_at:%Y-%m-%d %H:%M:%S} {r.provider} {r.kind}: {r.reason}")
        for r in rejected.latest
    ]
    return lines


def pending_lines(report: StatusReport) -> list[RenderableType]:
    """Stored webhook events still waiting for a worker, with the age of the oldest."""
    pending = report.pending_events
    if not pending.count or pending.oldest_received_at is None:
        return []
    waited = max(0, int((report.generated_at - pending.oldest_received_at).total_seconds()))
    # A few seconds is normal while a wave's events arrive; minutes mean nobody processes.
    style = "yellow" if waited >= 120 else "dim"
    return [
        Text(
            f"{_plural(pending.count, 'webhook event')} waiting to be processed "
            f"(oldest received {waited} s ago)",
            style=style,
        )
    ]


def render(report: StatusReport, finished: StatusReport | None = None) -> RenderableType:
    """The report; ``finished`` (every wave) is shown when nothing is in flight."""
    parts: list[RenderableType] = []
    if report.waves:
        parts += [waves_view(report), *problem_lines(report)]
    elif report.every_wave:
        parts.append(Text("No wave has been launched yet."))
    else:
        parts.append(Text("No wave is scheduled, sending or paused."))
        if finished is not None and finished.waves:
            parts += [Text("How the other waves ended:"), waves_view(finished)]
            parts += problem_lines(finished)
    parts += rejected_lines(report)
    parts += pending_lines(report)
    parts.append(live_lines(report))
    parts.append(Text(f"at {report.generated_at:%Y-%m-%d %H:%M:%S} UTC", style="dim"))
    return Group(*parts)


def status_command(
    watch: bool = typer.Option(False, "--watch", "-w", help="Refresh until Ctrl-C."),
    interval: float = typer.Option(2.0, min=0.2, help="Seconds between refreshes."),
    iterations: int = typer.Option(0, min=0, help="With --watch: stop after N refreshes."),
    every_wave: bool = typer.Option(
        False, "--all", "-a", help="Include finished, cancelled and missed waves."
    ),
) -> None:
    settings = get_settings()
    engine = open_database(settings)
    clock = SystemClock()
    live_source = (
        LiveSource(settings.redis_url, create_celery(settings)) if settings.redis_url else None
    )

    def view() -> RenderableType:
        now = clock.now()
        report = snapshot(engine, now, live_source, every_wave=every_wave)
        tests = [Text(line) for line in subject_lines(engine, now, list(WaveStatus))]
        if report.waves or every_wave:
            return Group(render(report), *tests)
        # Nothing in flight: how the finished waves ended says more than nothing.
        finished = snapshot(engine, now, every_wave=True)
        return Group(render(report, finished), *tests)

    if not watch:
        console.print(view())
        return
    shown = 0
    with Live(view(), console=console, refresh_per_second=4, transient=False) as live:
        try:
            while iterations == 0 or shown < iterations:
                shown += 1
                if iterations and shown >= iterations:
                    break
                time.sleep(interval)
                live.update(view())
        except KeyboardInterrupt:
            pass
