"""The benchmarks' processes: Celery workers started and stopped, CPU and memory read from /proc.

CPU is read per process group from /proc (reaped children included), so other
jobs on a shared machine do not inflate it the way they inflate wall time.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import redis
from celery import Celery

ROOT = Path(__file__).resolve().parent.parent


def start_workers(
    env: dict[str, str],
    count: int,
    logs: Path,
    app: str = "worker",
    queue: str = "celery",
) -> list[subprocess.Popen[bytes]]:
    command = [
        sys.executable, "-m", "celery", "-A", app, "worker",
        "--concurrency", "1", "--pool", "prefork", "-Q", queue,
        "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING",
    ]  # fmt: skip
    return [
        subprocess.Popen(
            [*command, "-n", f"{app}{n}@%h"],
            cwd=ROOT,
            env=env,
            stdout=(logs / f"{app}{n}.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # SIGKILL to the group reaches the pool child
        )
        for n in range(count)
    ]


def wait_ready(celery: Celery, count: int, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = celery.control.ping(timeout=1.0) or []
        if len(replies) >= count:
            return
    raise RuntimeError(f"{count} workers did not answer a ping within {timeout:.0f}s")


def group_pids(pid: int) -> list[int]:
    """The process and its descendants (the prefork pool's children)."""
    found = [pid]
    for child in _children(pid):
        found += group_pids(child)
    return found


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def pss_group(pid: int) -> float:
    return sum(pss_mb(member) for member in group_pids(pid))


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pss_mb(pid: int) -> float:
    """Proportional set size now: pages shared with the forked parent count once."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its descendants, reaped ones included (/proc stat)."""
    total = 0
    for member in group_pids(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return total / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class CpuMeter:
    """CPU seconds of every process of a run, read at the start and at the end."""

    pids: dict[str, list[int]]

    def read(self) -> dict[str, float]:
        out = {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in self.pids.items()}
        out["this process"] = own_cpu()
        return out


def postmaster_pid(directory: Path) -> int:
    return int((directory / "data" / "postmaster.pid").read_text().split()[0])


def redis_pid(url: str) -> int:
    return int(redis.Redis.from_url(url).info()["process_id"])


def used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before.get(name, 0.0) for name in after}


def cpu_summary(spent: dict[str, float], what: str = "launch to last batch") -> str:
    parts = ", ".join(f"{name} {seconds:.1f}" for name, seconds in spent.items())
    return f"CPU seconds, {what}: {sum(spent.values()):.1f} ({parts})"


def stop(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
        proc.wait(timeout=30)


def host_gauge(rounds: int = 3) -> float:
    """Milliseconds for a fixed CPU loop (best of `rounds`): the host's speed at that moment.

    The machine is shared; a page timed while this reads twice its usual value
    was timed on a host running at half speed, whatever the code did.
    """
    import hashlib

    best = float("inf")
    for _ in range(rounds):
        began = time.perf_counter()
        digest = b"gauge"
        for _ in range(200_000):
            digest = hashlib.sha256(digest).digest()
        best = min(best, time.perf_counter() - began)
    return best * 1e3
