"""A signed-in staff browser for the benchmarks: a requests session past /login, with CSRF."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import requests

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def signed_in(base_url: str, user: str = "staff", password: str = "change-me") -> requests.Session:
    """The bootstrap login (no staff account exists in a benchmark's database): an admin."""
    http = requests.Session()
    page = http.get(f"{base_url}/login", timeout=30).text
    answer = http.post(
        f"{base_url}/login",
        data={"username": user, "password": password, "csrf_token": csrf_of(page)},
        timeout=30,
        allow_redirects=False,
    )
    if answer.status_code != 302:
        raise RuntimeError(f"login refused: {answer.status_code}")
    return http


def csrf_of(page: str) -> str:
    match = CSRF.search(page)
    if not match:
        raise RuntimeError("no CSRF token on the page")
    return match.group(1)


@dataclass
class MultipartFile:
    """A form body of one token field and one file, read in chunks as a browser streams it.

    Its length is known in advance, so requests sends a Content-Length (as a
    browser does) and reads the file through `read`, never whole.
    """

    token: str
    path: Path
    boundary: str = "----bench-upload-7c1f"

    def __post_init__(self) -> None:
        self._head = (
            f"--{self.boundary}\r\n"
            'Content-Disposition: form-data; name="csrf_token"\r\n\r\n'
            f"{self.token}\r\n"
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{self.path.name}"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        self._parts = self._chunks()
        self._left = b""

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return len(self._head) + self.path.stat().st_size + len(self._tail)

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._left) < size:
            part = next(self._parts, None)
            if part is None:
                break
            self._left += part
        if size < 0:
            out, self._left = self._left, b""
        else:
            out, self._left = self._left[:size], self._left[size:]
        return out

    def _chunks(self) -> Iterator[bytes]:
        yield self._head
        handle: BinaryIO
        with self.path.open("rb") as handle:
            while chunk := handle.read(1024 * 1024):
                yield chunk
        yield self._tail
