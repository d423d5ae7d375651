"""What a check finds: a status, what is wrong (or right), and how to fix it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Probe:
    """How the live checks reach out: short enough that a dead host does not hang the doctor."""

    timeout_seconds: float = 10.0


def worst(findings: Iterable[Finding]) -> Status:
    statuses = {f.status for f in findings}
    return next((s for s in (Status.FAIL, Status.WARN) if s in statuses), Status.OK)
