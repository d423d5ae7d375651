"""Throwaway PostgreSQL and Redis servers for tests and benchmarks.

Started from the installed binaries in temporary directories on free ports,
so the test suite never touches a database somebody cares about. When the
binaries are missing, the error says what to install.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sender.devtools.waiting import wait_until

INSTALL_HINT = {
    "initdb": "PostgreSQL server binaries (Debian: `apt install postgresql`)",
    "redis-server": "Redis (Debian: `apt install redis-server`)",
}


INITDB = ("-E", "UTF8", "--no-sync")


class MissingBinary(RuntimeError):
    pass


@dataclass(frozen=True)
class Service:
    url: str
    directory: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _find(binary: str) -> str:
    found = shutil.which(binary)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{binary}"), reverse=True):
        return str(candidate)
    hint = INSTALL_HINT.get(binary, binary)
    raise MissingBinary(
        f"`{binary}` not found: install {hint}, or set TEST_DATABASE_URL / TEST_REDIS_URL "
        "to servers the tests may use"
    )


def _as_postgres_user(args: list[str]) -> list[str]:
    # initdb refuses to run as root; CI machines often run as root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def postgres_server(keep: Path | None = None) -> Iterator[Service]:
    """A throwaway server; with ``keep``, one whose data stays in that folder between runs.

    A kept folder is made on first use and started again as it is afterwards,
    so a benchmark can fill a big database once and measure it many times.
    """
    initdb, pg_ctl = _find("initdb"), _find("pg_ctl")
    directory = keep or Path(tempfile.mkdtemp(prefix="campaign-pg-"))
    directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
    data, port = directory / "data", free_port()
    if not (data / "PG_VERSION").exists():
        subprocess.run(
            _as_postgres_user([initdb, "-D", str(data), "-A", "trust", "-U", "postgres", *INITDB]),
            check=True,
            capture_output=True,
        )
    options = (
        f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -F "
        "-c max_connections=200 -c full_page_writes=off"
    )
    subprocess.run(
        _as_postgres_user(
            [pg_ctl, "-D", str(data), "-o", options, "-l", str(directory / "log"), "-w", "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield Service(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", directory)
    finally:
        # A kept database is shut down cleanly, so that it starts again as it was left.
        mode = "fast" if keep else "immediate"
        subprocess.run(
            _as_postgres_user([pg_ctl, "-D", str(data), "-m", mode, "-w", "stop"]),
            capture_output=True,
        )
        if keep is None:
            shutil.rmtree(directory, ignore_errors=True)


def start_redis(port: int, directory: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            _find("redis-server"),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until(lambda: _port_open(port), 20.0, f"a server on port {port}", step=0.05)
    return process


@contextmanager
def redis_server() -> Iterator[Service]:
    directory = Path(tempfile.mkdtemp(prefix="campaign-redis-"))
    port = free_port()
    process = start_redis(port, directory)
    try:
        yield Service(f"redis://127.0.0.1:{port}/0", directory)
    finally:
        process.kill()
        process.wait()
        shutil.rmtree(directory, ignore_errors=True)
