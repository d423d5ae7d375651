"""Reading a CRM export: encoding, delimiter, header columns, and rows one at a time.

Everything that decides whether the file can be read at all (not text, no
header, no email column) happens when the source is opened, before any row is
handed out, so that the importer can refuse a file without touching the
database. Problems inside one row are reported on that row and reading goes on.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from operator import itemgetter
from pathlib import Path
from types import MappingProxyType
from typing import BinaryIO

from sender.core.csvsafe import safe_cell
from sender.core.errors import InvalidInput

SAMPLE_BYTES = 64 * 1024
# Longer than any real CRM field, short enough that one unterminated quote
# cannot swallow the rest of a large file into memory.
FIELD_LIMIT = 1024 * 1024
DELIMITERS = ",;\t"
BOM = b"\xef\xbb\xbf"
MAGIC = {
    b"\x89PNG": "a PNG image",
    b"GIF8": "a GIF image",
    b"\xff\xd8\xff": "a JPEG image",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP archive (an .xlsx workbook? export it as CSV)",
    b"\x1f\x8b": "a gzip archive",
    b"\xd0\xcf\x11\xe0": "an old Excel/Word document (export it as CSV)",
}
# Control characters that never occur in text (tab, CR and LF do).
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class Column(StrEnum):
    EMAIL = "email"
    FIRST_NAME = "first_name"
    LAST_NAME = "last_name"
    COUNTRY = "country"
    LANGUAGE = "language"
    TIMEZONE = "timezone"
    CONSENT = "consent"
    CASE_PREFERENCE = "case_preference"


# Header spellings seen in CRM exports (English, Spanish, French), compared
# after folding to lower-case letters and digits only.
ALIASES: dict[Column, tuple[str, ...]] = {
    Column.EMAIL: (
        "email",
        "emailaddress",
        "mail",
        "courriel",
        "adressemail",
        "adresseemail",
        "correo",
        "correoelectronico",
        "supporteremail",
        "primaryemail",
    ),
    Column.FIRST_NAME: ("firstname", "givenname", "forename", "prenom", "nombre", "first"),
    Column.LAST_NAME: ("lastname", "surname", "familyname", "nom", "apellido", "apellidos", "last"),
    Column.COUNTRY: ("country", "countrycode", "pays", "pais", "countryiso"),
    Column.LANGUAGE: ("language", "lang", "langue", "idioma", "preferredlanguage", "locale"),
    Column.TIMEZONE: ("timezone", "tz", "fuseauhoraire", "zonahoraria"),
    Column.CONSENT: (
        "consent",
        "emailconsent",
        "optin",
        "emailoptin",
        "consentement",
        "consentimiento",
        "marketingconsent",
    ),
    Column.CASE_PREFERENCE: ("casepreference", "preferredcase", "case", "cas", "caso"),
}
_LOOKUP = {alias: column for column, aliases in ALIASES.items() for alias in aliases}


def fold_header(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return "".join(ch for ch in decomposed if ch.isalnum() and not unicodedata.combining(ch))


@dataclass(frozen=True)
class Layout:
    """What opening the file decided: delimiter, header and where each column is."""

    delimiter: str
    header: tuple[str, ...]
    columns: Mapping[Column, int]
    bom: bool
    ignored: tuple[str, ...] = ()

    def picker(self) -> Callable[[tuple[str, ...]], tuple[str, ...]]:
        """A fast function from a row's fields to one stripped value per Column."""
        # Absent columns read index -1, which padding always makes an empty string.
        getter = itemgetter(*(self.columns.get(column, -1) for column in Column))
        width = len(self.header)
        strip = str.strip

        def pick(fields: tuple[str, ...]) -> tuple[str, ...]:
            padded = fields + ("",) * max(1, width + 1 - len(fields))
            return tuple(map(strip, getter(padded)))

        return pick


@dataclass(frozen=True)
class SourceRow:
    line: int  # physical line the row starts on, header is line 1
    fields: tuple[str, ...]
    problem: str | None = None  # the row could not be parsed; fields may be empty


@dataclass
class ReadStats:
    """Counters that grow while rows are read (progress, encoding fallbacks)."""

    bytes_read: int = 0
    latin1_lines: int = 0
    blank_lines: int = 0
    latin1_first_line: int | None = field(default=None)


def _check_text(sample: bytes) -> None:
    if not sample.strip():
        raise InvalidInput("the file is empty")
    for magic, what in MAGIC.items():
        if sample.startswith(magic):
            raise InvalidInput(f"this is {what}, not a CSV file")
    # One garbled row is that row's problem; a garbled header, or garbage on
    # most lines, means the file is not text at all.
    lines = sample.decode("latin-1").split("\n")
    garbled = sum(1 for line in lines if CONTROL.search(line))
    if CONTROL.search(lines[0]) or garbled * 2 > len(lines):
        raise InvalidInput("this is binary data, not a CSV text file")


def _decode(line: bytes, stats: ReadStats, number: int) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        # Old exports from Windows tools: every byte is a Latin-1 character.
        stats.latin1_lines += 1
        if stats.latin1_first_line is None:
            stats.latin1_first_line = number
        return line.decode("latin-1")


def _sniff(sample_text: str, header_line: str) -> str:
    try:
        return csv.Sniffer().sniff(sample_text, delimiters=DELIMITERS).delimiter
    except csv.Error:
        # The sniffer gives up on short or irregular samples; the header is
        # plain column names, so its most frequent candidate is the delimiter.
        counts = {d: header_line.count(d) for d in DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        if counts[best] == 0:
            return ","
        return best


def _map_columns(header: list[str]) -> tuple[dict[Column, int], tuple[str, ...]]:
    columns: dict[Column, int] = {}
    ignored: list[str] = []
    for index, name in enumerate(header):
        column = _LOOKUP.get(fold_header(name))
        if column is None or column in columns:
            ignored.append(name)
            continue
        columns[column] = index
    return columns, tuple(ignored)


def _sample_lines(sample: bytes) -> list[str]:
    lines = sample.split(b"\n")
    if len(lines) > 1:
        lines = lines[:-1]  # the last one may be cut in the middle
    stats = ReadStats()
    return [_decode(line, stats, 0) for line in lines[:50]]


def read_layout(path: Path) -> Layout:
    """Decide whether the file is a readable CSV with an email column; raise if not."""
    try:
        with path.open("rb") as handle:
            sample = handle.read(SAMPLE_BYTES)
    except OSError as error:
        raise InvalidInput(f"cannot read {path}: {error.strerror or error}") from error
    bom = sample.startswith(BOM)
    sample = sample.removeprefix(BOM)
    _check_text(sample)
    lines = _sample_lines(sample)
    header_line = next((line for line in lines if line.strip()), "")
    sniffed = _sniff("".join(lines), header_line)
    # The sniffer can be fooled by delimiters inside quoted values; the header
    # decides: the first delimiter that yields an email column wins.
    for delimiter in (sniffed, *(d for d in DELIMITERS if d != sniffed)):
        header = [name.strip() for name in next(csv.reader([header_line], delimiter=delimiter), [])]
        columns, ignored = _map_columns(header)
        if Column.EMAIL in columns:
            break
    else:
        header = next(csv.reader([header_line], delimiter=sniffed), [])
        found = ", ".join(repr(name) for name in header[:12]) or "none"
        raise InvalidInput(
            f"no email column in {path.name} (columns found: {found}); "
            "name one of them 'email', 'E-mail' or 'Email Address'"
        )
    return Layout(delimiter, tuple(header), MappingProxyType(columns), bom, ignored)


def _lines(handle: BinaryIO, stats: ReadStats, skip_bom: bool) -> Iterator[str]:
    for number, raw in enumerate(handle, start=1):
        stats.bytes_read += len(raw)
        if number == 1 and skip_bom:
            raw = raw.removeprefix(BOM)
        yield _decode(raw, stats, number)


def read_rows(path: Path, layout: Layout, stats: ReadStats) -> Iterator[SourceRow]:
    """Data rows after the header; blank lines are counted in stats and skipped."""
    csv.field_size_limit(FIELD_LIMIT)
    with path.open("rb") as handle:
        reader = csv.reader(_lines(handle, stats, layout.bom), delimiter=layout.delimiter)
        header_seen = False
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                # The C reader resets its state on the next call, so one
                # broken row does not end the import.
                yield SourceRow(start, (), f"unreadable row: {error}")
                continue
            if not any(value.strip() for value in fields):
                if header_seen:
                    stats.blank_lines += 1
                continue
            if not header_seen:
                header_seen = True
                continue
            yield SourceRow(start, tuple(fields))


def _cell(text: str) -> str:
    """A cell of the rejected-rows file: no control characters, no formula."""
    return safe_cell(CONTROL.sub("\ufffd", text))


class RejectWriter:
    """Rejected rows, as given, with their line and reason; formulas neutralised.

    The header too: it is the CRM file's own first line, as untrusted as its rows.
    """

    def __init__(self, path: Path, header: tuple[str, ...]) -> None:
        self.path = path
        self._partial = path.with_name(path.name + ".partial")
        self._handle: io.TextIOWrapper = self._partial.open("w", encoding="utf-8", newline="")
        self._writer = csv.writer(self._handle)
        self._writer.writerow([_cell(c) for c in ("line", "reason", "detail", *header)])
        self.rows = 0

    def write(self, row: SourceRow, reason: str, detail: str) -> None:
        cells = [str(row.line), reason, detail, *row.fields]
        self._writer.writerow([_cell(cell) for cell in cells])
        self.rows += 1

    def finish(self) -> None:
        self._handle.close()
        self._partial.replace(self.path)

    def abandon(self) -> None:
        self._handle.close()
        self._partial.unlink(missing_ok=True)
