"""Supporters in: the streaming CSV importer (erasure is sender.audience.erasure).

The importer reads a CRM export one row at a time, checks each row in Python
and merges valid rows a chunk at a time (sender.audience.staging), all inside
one transaction: a file that turns out to be unreadable halfway leaves the
database as it was. Rows that cannot be used are reported with their line and
reason and never stop the import.

An import never changes a supporter's status: whoever unsubscribed, bounced,
complained or was forgotten stays so, and an address whose hash is suppressed
is refused.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

from sqlalchemy import Engine

from sender.audience.countries import country_code, defaults_for, supported_language, valid_timezone
from sender.audience.csv_reader import (
    CONTROL,
    Column,
    Layout,
    ReadStats,
    RejectWriter,
    SourceRow,
    read_layout,
    read_rows,
)
from sender.audience.staging import ChunkResult, ImportStage, StagedRow
from sender.core.addresses import email_hash, normalise_email
from sender.core.clock import Clock, SystemClock
from sender.core.errors import InvalidInput

CHUNK_ROWS = 25_000
EXAMPLES_KEPT = 20
MAX_LENGTH = {Column.FIRST_NAME: 200, Column.LAST_NAME: 200, Column.CASE_PREFERENCE: 64}
MAX_SOURCE = 100

Progress = Callable[[int, int], None]  # (bytes read, file size)


class RejectReason(StrEnum):
    UNREADABLE = "unreadable_row"
    BINARY = "binary_data"
    MISSING_EMAIL = "missing_email"
    INVALID_EMAIL = "invalid_email"
    TOO_LONG = "field_too_long"
    DUPLICATE = "duplicate_in_file"
    SUPPRESSED = "suppressed"


class RowWarning(StrEnum):
    """Oddities that do not stop a row: the value is replaced by a default."""

    UNKNOWN_COUNTRY = "unknown_country"
    UNSUPPORTED_LANGUAGE = "unsupported_language"
    INVALID_TIMEZONE = "invalid_timezone"
    UNCLEAR_CONSENT = "unclear_consent"


CONSENT_YES = frozenset(
    {"yes", "y", "true", "t", "1", "x", "si", "sí", "oui", "opt-in", "optin", "opted in", "نعم"}
)
CONSENT_NO = frozenset(
    {"no", "n", "false", "f", "0", "non", "opt-out", "optout", "opted out", "لا"}
)


@dataclass(frozen=True)
class Rejection:
    line: int
    reason: RejectReason
    detail: str


@dataclass(frozen=True)
class ImportReport:
    path: str
    rows: int
    imported: int
    updated: int
    unchanged: int
    rejected: Mapping[str, int]
    warnings: Mapping[str, int]
    blank_lines: int
    latin1_lines: int
    delimiter: str
    examples: tuple[Rejection, ...]  # the first few rejections, for a quick look
    errors_path: Path | None = None

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


# An address whose local part is plain ASCII dot-atom is valid exactly when its
# domain is; domains repeat across a list (gmail.com...), so email-validator's
# domain check runs once per domain instead of once per row.
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")


@lru_cache(maxsize=65_536)
def _normal_domain(domain: str) -> str | None:
    try:
        return normalise_email("x@" + domain).rsplit("@", 1)[1]
    except InvalidInput:
        return None


def normalise_address(raw: str) -> str:
    """sender.core.addresses.normalise_email, with its domain check memoised."""
    raw = raw.strip()
    local, at, domain = raw.rpartition("@")
    if at and len(local) <= 64 and len(raw) <= 200 and _DOT_ATOM.match(local):
        normal = _normal_domain(domain)
        if normal is not None and normal.isascii():
            return f"{local.lower()}@{normal}"
    return normalise_email(raw)  # anything unusual, and every error message


@dataclass
class _Tally:
    rows: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    examples: list[Rejection] = field(default_factory=list)


def _consent(raw: str, warnings: list[RowWarning]) -> bool | None:
    if not raw:
        return None
    folded = raw.casefold()
    if folded in CONSENT_YES:
        return True
    if folded in CONSENT_NO:
        return False
    warnings.append(RowWarning.UNCLEAR_CONSENT)
    return None  # never emailed: new supporters get consent=False


# Positions in the tuple Layout.picker() returns (one per Column, in order).
_EMAIL, _FIRST, _LAST, _COUNTRY, _LANGUAGE, _TIMEZONE, _CONSENT, _CASE = range(len(Column))
_LIMITS = tuple((list(Column).index(column), column, limit) for column, limit in MAX_LENGTH.items())

Picker = Callable[[tuple[str, ...]], tuple[str, ...]]


@lru_cache(maxsize=16_384)
def _settings(
    country_raw: str, language_raw: str, timezone_raw: str
) -> tuple[tuple[str | None, str | None, str, str | None, str], tuple[RowWarning, ...]]:
    """(country, given language, default language, given timezone, default timezone), warnings.

    Memoised: a list holds few distinct country/language/timezone combinations.
    """
    warnings: list[RowWarning] = []
    country = country_code(country_raw)
    if country_raw and country is None:
        warnings.append(RowWarning.UNKNOWN_COUNTRY)
    language = supported_language(language_raw) if language_raw else None
    if language_raw and language is None:
        warnings.append(RowWarning.UNSUPPORTED_LANGUAGE)
    timezone = valid_timezone(timezone_raw) if timezone_raw else None
    if timezone_raw and timezone is None:
        warnings.append(RowWarning.INVALID_TIMEZONE)
    defaults = defaults_for(country)
    settings = (country, language, defaults.language, timezone, defaults.timezone)
    return settings, tuple(warnings)


def check_row(row: SourceRow, pick: Picker) -> tuple[StagedRow, list[RowWarning]] | Rejection:
    """A staged row ready for the database, or why this row cannot be imported."""
    if row.problem is not None:
        return Rejection(row.line, RejectReason.UNREADABLE, row.problem)
    if CONTROL.search("\t".join(row.fields)):
        return Rejection(
            row.line, RejectReason.BINARY, "control characters or NUL bytes in the row"
        )
    values = pick(row.fields)
    for position, column, limit in _LIMITS:
        if len(values[position]) > limit:
            detail = f"{column.value} is {len(values[position])} characters long (at most {limit})"
            return Rejection(row.line, RejectReason.TOO_LONG, detail)
    raw_email = values[_EMAIL]
    if not raw_email:
        return Rejection(row.line, RejectReason.MISSING_EMAIL, "no email address in this row")
    try:
        email = normalise_address(raw_email)
    except InvalidInput as error:
        shown = raw_email if len(raw_email) <= 80 else raw_email[:80] + "..."
        return Rejection(row.line, RejectReason.INVALID_EMAIL, f"{shown!r}: {error}")
    settings, fixed = _settings(values[_COUNTRY], values[_LANGUAGE], values[_TIMEZONE])
    country, language, language_default, timezone, timezone_default = settings
    warnings = list(fixed)
    staged: StagedRow = (
        row.line,
        email,
        email_hash(email),
        values[_FIRST] or None,
        values[_LAST] or None,
        country,
        language,
        language_default,
        timezone,
        timezone_default,
        _consent(values[_CONSENT], warnings),
        values[_CASE] or None,
    )
    return staged, warnings


class _Importer:
    """One run: counts, rejected-row output and the chunk being built.

    Chunks are merged on one database thread while this thread reads and checks
    the next chunk: psycopg and sqlite3 release the GIL while the database
    works, so on two cores the import takes about as long as the slower side
    instead of the sum of both. At most one chunk is in flight and one is being
    built, so memory stays flat. Counts and the rejected-rows file are only
    touched on this thread.
    """

    def __init__(
        self, stage: ImportStage, layout: Layout, rejects: RejectWriter | None, pool: Executor
    ) -> None:
        self.stage, self.layout, self.rejects, self.pool = stage, layout, rejects, pool
        self.pick = layout.picker()
        self.tally = _Tally()
        self.chunk: dict[str, StagedRow] = {}  # by email hash: first row in the chunk wins
        self.raw: dict[int, SourceRow] = {}  # lines staged, for rejections found in SQL
        self.pending: tuple[Future[ChunkResult], dict[int, SourceRow]] | None = None

    def reject(self, row: SourceRow, reason: RejectReason, detail: str) -> None:
        self.tally.rejected[reason.value] += 1
        if len(self.tally.examples) < EXAMPLES_KEPT:
            self.tally.examples.append(Rejection(row.line, reason, detail))
        if self.rejects is not None:
            self.rejects.write(row, reason.value, detail)

    def add(self, row: SourceRow) -> None:
        self.tally.rows += 1
        checked = check_row(row, self.pick)
        if isinstance(checked, Rejection):
            self.reject(row, checked.reason, checked.detail)
            return
        staged, warnings = checked
        for warning in warnings:
            self.tally.warnings[warning.value] += 1
        first = self.chunk.get(staged[2])
        if first is not None:
            self.reject(row, RejectReason.DUPLICATE, f"same address as line {first[0]}")
            return
        self.chunk[staged[2]] = staged
        self.raw[row.line] = row

    def flush(self, source: str | None, clock: Clock) -> None:
        """Hand the chunk to the database thread, once the previous one is done."""
        if not self.chunk:
            return
        rows, raw = list(self.chunk.values()), self.raw
        self.chunk, self.raw = {}, {}
        self.collect()
        merged = self.pool.submit(self.stage.merge_chunk, rows, source, clock.now())
        self.pending = (merged, raw)

    def collect(self) -> None:
        """Wait for the chunk in flight; count it and report what the database refused."""
        if self.pending is None:
            return
        merged, raw = self.pending
        self.pending = None
        result = merged.result()  # re-raises the database thread's error here
        for line, first in result.duplicates:
            self.reject(raw[line], RejectReason.DUPLICATE, f"same address as line {first}")
        for line in result.suppressed:
            detail = "this address unsubscribed, bounced, complained or was forgotten"
            self.reject(raw[line], RejectReason.SUPPRESSED, detail)
        self.tally.imported += result.outcome.new
        self.tally.updated += result.outcome.changed
        self.tally.unchanged += result.outcome.same


def _report(
    path: Path, layout: Layout, tally: _Tally, stats: ReadStats, errors: Path | None
) -> ImportReport:
    return ImportReport(
        path=str(path),
        rows=tally.rows,
        imported=tally.imported,
        updated=tally.updated,
        unchanged=tally.unchanged,
        rejected=MappingProxyType(dict(tally.rejected)),
        warnings=MappingProxyType(dict(tally.warnings)),
        blank_lines=stats.blank_lines,
        latin1_lines=stats.latin1_lines,
        delimiter=layout.delimiter,
        examples=tuple(sorted(tally.examples, key=lambda r: r.line)),
        errors_path=errors,
    )


def refuse_overwriting_input(path: Path, errors_path: Path) -> None:
    """--errors must not name the export itself (nor the partial file written beside it).

    The rejects file is written as it goes: pointed at the input, it would
    truncate the CRM export before its first row is read.
    """
    partial = errors_path.with_name(errors_path.name + ".partial")
    for target in (errors_path, partial):
        same = target.resolve() == path.resolve()
        if not same and target.exists() and path.exists():
            same = target.samefile(path)  # a hard link or another name for the same file
        if same:
            raise InvalidInput(
                f"--errors {errors_path} would overwrite the file being imported; "
                "give the rejected rows a file of their own"
            )


def import_supporters(
    engine: Engine,
    path: Path,
    source: str | None = None,
    errors_path: Path | None = None,
    progress: Progress | None = None,
    clock: Clock | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> ImportReport:
    """Import a CRM export; raise InvalidInput, with the database untouched, if unreadable.

    Rows go to the database `chunk_rows` at a time (tests make chunks small).
    Rows are read here while a database thread merges the chunk before: the
    import command runs this under `sender.core.speedups.prompt_switches`, so
    that thread is not kept waiting for the GIL after each write.
    """
    path = Path(path)
    if errors_path is not None:
        refuse_overwriting_input(path, Path(errors_path))
    if source is not None and len(source) > MAX_SOURCE:
        raise InvalidInput(f"--source is {len(source)} characters long (at most {MAX_SOURCE})")
    layout = read_layout(path)  # decides readability before any write
    size, stats, clock = path.stat().st_size, ReadStats(), clock or SystemClock()
    try:
        rejects = RejectWriter(Path(errors_path), layout.header) if errors_path else None
    except OSError as error:
        raise InvalidInput(f"cannot write {errors_path}: {error.strerror or error}") from error
    try:
        with engine.begin() as connection:
            stage = ImportStage(connection)
            stage.create()
            try:
                # Leaving the pool waits for the chunk in flight, so the
                # transaction never ends (or rolls back) under a running statement.
                with ThreadPoolExecutor(1, thread_name_prefix="import-db") as pool:
                    importer = _Importer(stage, layout, rejects, pool)
                    for row in read_rows(path, layout, stats):
                        importer.add(row)
                        if len(importer.chunk) >= chunk_rows:
                            importer.flush(source, clock)
                            if progress is not None:
                                progress(stats.bytes_read, size)
                    importer.flush(source, clock)
                    importer.collect()
            finally:
                stage.drop()
    except OSError as error:
        if rejects is not None:
            rejects.abandon()
        raise InvalidInput(f"reading {path} failed, nothing was imported: {error}") from error
    except BaseException:
        if rejects is not None:
            rejects.abandon()
        raise
    if rejects is not None:
        rejects.finish()
    if progress is not None:
        progress(size, size)
    return _report(path, layout, importer.tally, stats, rejects.path if rejects else None)
