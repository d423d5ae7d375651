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

from sender.cli.common import console, open_database
from sender.clock import SystemClock
from sender.config import get_settings
from sender.status import IN_PROCESS, StatusReport, WaveProgress, build_report

HELP = "Show sending progress: per wave sent/failed/left, rate, ETA; queues and workers."


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "stalled"
    return str(timedelta(seconds=round(seconds)))


def _bar(wave: WaveProgress) -> ProgressBar:
    return ProgressBar(
        total=max(wave.planned, 1),
        completed=wave.planned - wave.remaining,
        width=24,
        complete_style="yellow",
        finished_style="green",
    )


def waves_table(report: StatusReport) -> Table:
    table = Table(title="Waves", title_justify="left", expand=False)
    for column in ("wave", "state", "progress", "sent", "failed", "left", "/min", "ETA", "waiting"):
        table.add_column(column, justify="left" if column in {"wave", "state"} else "right")
    for wave in report.waves:
        table.add_row(
            f"{wave.campaign}/{wave.name}",
            wave.status,
            _bar(wave),
            f"{wave.sent:,}",
            Text(f"{wave.failed:,}", style="red" if wave.failed else ""),
            f"{wave.remaining:,}",
            f"{wave.per_minute:,}",
            _duration(wave.eta_seconds),
            "" if wave.oldest_waiting_seconds is None else _duration(wave.oldest_waiting_seconds),
        )
    return table


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


def render(report: StatusReport) -> RenderableType:
    parts: list[RenderableType] = []
    if report.waves:
        parts.append(waves_table(report))
    else:
        parts.append(Text("No wave is scheduled, sending or paused."))
    for batch in report.failed_batches:
        parts.append(
            Text(
                f"failed batch {batch.batch_id} (wave {batch.wave_id}, {batch.size} messages, "
                f"{batch.attempts} attempts): {batch.reason}",
                style="red",
            )
        )
    parts.append(live_lines(report))
    parts.append(Text(f"at {report.generated_at:%Y-%m-%d %H:%M:%S} UTC", style="dim"))
    return Group(*parts)


def status_command(
    watch: bool = typer.Option(False, "--watch", "-w", help="Refresh until Ctrl-C."),
    interval: float = typer.Option(2.0, min=0.2, help="Seconds between refreshes."),
    iterations: int = typer.Option(0, min=0, help="With --watch: stop after N refreshes."),
) -> None:
    settings = get_settings()
    engine = open_database(settings)
    clock = SystemClock()

    def snapshot() -> RenderableType:
        return render(build_report(engine, settings.redis_url, clock.now()))

    if not watch:
        console.print(snapshot())
        return
    shown = 0
    with Live(snapshot(), console=console, refresh_per_second=4, transient=False) as live:
        try:
            while iterations == 0 or shown < iterations:
                shown += 1
                if iterations and shown >= iterations:
                    break
                time.sleep(interval)
                live.update(snapshot())
        except KeyboardInterrupt:
            pass
