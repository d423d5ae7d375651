"""`campaign doctor [--campaign SLUG]`: check the installation, say how to fix each item.

Exit code 1 when any check fails, 0 otherwise (warnings included), so a deploy
script can run it before starting the workers.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Sequence

import typer
from rich.text import Text

from sender.cli.common import console
from sender.core.clock import SystemClock
from sender.core.config import get_settings
from sender.ops.doctor import Finding, Probe, Status, diagnose, worst

HELP = (
    "Check what a new installation gets wrong: secrets, the SendGrid key (a live call), "
    "webhooks, domains, and each open campaign's window, waves and cases."
)
LABELS = {
    Status.OK: ("ok", "green"),
    Status.WARN: ("warn", "yellow"),
    Status.FAIL: ("FAIL", "bold red"),
}
INDENT = 7  # "FAIL  " plus a space: the text column
MAX_WIDTH = 100  # wider lines are harder to read, whatever the terminal


def finding_lines(finding: Finding, width: int) -> list[Text]:
    """One finding: its label and check, then what was found and the fix, wrapped under it."""
    label, style = LABELS[finding.status]
    head = Text(f"{label:<{INDENT - 1}}", style=style)
    head.append(finding.check, style="bold")
    wrap = textwrap.TextWrapper(
        width=width, initial_indent=" " * INDENT, subsequent_indent=" " * INDENT
    )
    lines = [head, *(Text(line) for line in wrap.wrap(finding.detail))]
    if finding.fix and finding.status is not Status.OK:
        wrap.initial_indent = " " * INDENT + "fix: "
        wrap.subsequent_indent = " " * (INDENT + 5)
        lines += [Text(line, style="cyan") for line in wrap.wrap(finding.fix)]
    return lines


def summary(findings: Sequence[Finding]) -> str:
    counts = Counter(f.status for f in findings)
    parts = ", ".join(
        f"{counts[s]} {LABELS[s][0].lower()}" for s in (Status.FAIL, Status.WARN, Status.OK)
    )
    verdict = {
        Status.FAIL: "fix the FAIL items before sending",
        Status.WARN: "nothing blocks sending; read the warnings",
        Status.OK: "ready to send",
    }[worst(findings)]
    return f"{parts}: {verdict}"


def doctor_command(
    campaign: str | None = typer.Option(
        None,
        "--campaign",
        envvar="CAMPAIGN",
        metavar="SLUG",
        help="The campaign to check (default: every open one).",
    ),
    timeout: float = typer.Option(10.0, min=0.1, help="seconds to wait for SendGrid's answer"),
) -> None:
    settings = get_settings()
    findings = diagnose(settings, SystemClock().now(), slug=campaign, probe=Probe(timeout))
    width = min(console.width, MAX_WIDTH)
    for finding in findings:
        for line in finding_lines(finding, width):
            console.print(line, soft_wrap=True)
    console.print(summary(findings), soft_wrap=True)
    raise typer.Exit(1 if worst(findings) is Status.FAIL else 0)
