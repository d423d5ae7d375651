"""The CSV reader alone: what opening a file decides, and the rows it hands out."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from sender.audience.csv_reader import (
    FIELD_LIMIT,
    Column,
    Layout,
    ReadStats,
    RejectWriter,
    SourceRow,
    fold_header,
    read_layout,
    read_rows,
)
from sender.core.csvsafe import safe_cell
from sender.core.errors import InvalidInput


def source(tmp_path: Path, content: bytes, name: str = "list.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def rows_of(path: Path) -> tuple[list[SourceRow], ReadStats]:
    stats = ReadStats()
    return list(read_rows(path, read_layout(path), stats)), stats


# --- encodings -----------------------------------------------------------------


def test_a_utf8_bom_is_noted_and_kept_out_of_the_first_column(tmp_path: Path) -> None:
    path = source(tmp_path, "\ufeffemail,first_name\r\nana@example.org,Ana Núñez\r\n".encode())
    layout = read_layout(path)
    assert layout.bom and layout.header == ("email", "first_name")
    assert layout.columns[Column.EMAIL] == 0
    rows, stats = rows_of(path)
    assert [row.fields for row in rows] == [("ana@example.org", "Ana Núñez")]
    assert stats.latin1_lines == 0


def test_latin1_lines_are_read_as_latin1_and_counted(tmp_path: Path) -> None:
    text = "email;prénom\nhelene@example.fr;Hélène\nok@example.org;Ok\nzoe@example.fr;Zoé\n"
    path = source(tmp_path, text.encode("latin-1"))
    rows, stats = rows_of(path)
    assert [row.fields[1] for row in rows] == ["Hélène", "Ok", "Zoé"]
    # The header line is Latin-1 too: it is line 1.
    assert (stats.latin1_lines, stats.latin1_first_line) == (3, 1)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_is_refused(tmp_path: Path, encoding: str) -> None:
    path = source(tmp_path, "email,first_name\na@example.org,A\n".encode(encoding))
    with pytest.raises(InvalidInput, match="not a CSV text file"):
        read_layout(path)


# --- what is not a CSV file ----------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"  \r\n\n\t\n", "the file is empty"),
        (b"\xef\xbb\xbf", "the file is empty"),
        (b"\x89PNG\r\n\x1a\n" + bytes(64), "a PNG image, not a CSV file"),
        (b"%PDF-1.7\n", "a PDF document"),
        (b"PK\x03\x04" + bytes(64), r"\.xlsx workbook\? export it as CSV"),
        (b"\x1f\x8b\x08" + bytes(64), "a gzip archive"),
        (bytes((i * 7919) % 256 for i in range(4096)), "binary data, not a CSV text file"),
        (b"email\x00\x01,name\na@example.org,A\n", "binary data"),  # a garbled header
    ],
    ids=["empty", "blank", "bom-only", "png", "pdf", "xlsx", "gzip", "random", "nul-header"],
)
def test_what_is_not_a_csv_file_is_refused_by_name(
    tmp_path: Path, content: bytes, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        read_layout(source(tmp_path, content))


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"cannot read .*nowhere\.csv"):
        read_layout(tmp_path / "nowhere.csv")


def test_no_email_column_names_the_columns_found(tmp_path: Path) -> None:
    path = source(tmp_path, b"Name,Mail address,Phone\nZed,zed@example.org,1\n", "people.csv")
    with pytest.raises(InvalidInput, match=r"no email column in people\.csv.*'Name', 'Mail addr"):
        read_layout(path)


# --- delimiters ----------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_the_delimiter_is_sniffed(tmp_path: Path, delimiter: str) -> None:
    lines = ["email", "first_name", "country"], ["a@example.org", "A", "FR"]
    text = "".join(delimiter.join(line) + "\n" for line in lines)
    assert read_layout(source(tmp_path, text.encode())).delimiter == delimiter


def test_a_header_alone_still_gives_its_delimiter(tmp_path: Path) -> None:
    # Too little for the sniffer: the header's most frequent candidate wins.
    assert read_layout(source(tmp_path, b"email;first_name;country\n")).delimiter == ";"


def test_the_header_decides_when_quoted_values_fool_the_sniffer(tmp_path: Path) -> None:
    rows = "".join(f'"p{i}@example.org","A;B;C;D","x;y"\n' for i in range(3))
    path = source(tmp_path, ("email,first_name,notes\n" + rows).encode())
    assert read_layout(path).delimiter == ","
    assert rows_of(path)[0][0].fields == ("p0@example.org", "A;B;C;D", "x;y")


# --- header names --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "column"),
    [
        ("E-mail", Column.EMAIL),
        ("Email Address", Column.EMAIL),
        ("Courriel", Column.EMAIL),
        ("Correo electrónico", Column.EMAIL),
        ("Prénom", Column.FIRST_NAME),
        ("Apellidos", Column.LAST_NAME),
        ("Pays", Column.COUNTRY),
        ("Locale", Column.LANGUAGE),
        ("Fuseau horaire", Column.TIMEZONE),
        ("Opt-in", Column.CONSENT),
        ("Preferred case", Column.CASE_PREFERENCE),
    ],
)
def test_header_aliases(tmp_path: Path, name: str, column: Column) -> None:
    layout = read_layout(source(tmp_path, f"email,{name}\n".encode()))
    assert layout.columns[column] == (0 if column is Column.EMAIL else 1)


def test_folding_ignores_case_accents_and_punctuation() -> None:
    assert fold_header(" Correo Electrónico ") == "correoelectronico"
    assert fold_header("E-MAIL_ADDRESS") == "emailaddress"


def test_unknown_and_repeated_columns_are_ignored_and_listed(tmp_path: Path) -> None:
    layout = read_layout(source(tmp_path, b"Email, Notes ,mail,First Name\n"))
    assert dict(layout.columns) == {Column.EMAIL: 0, Column.FIRST_NAME: 3}
    assert layout.header == ("Email", "Notes", "mail", "First Name")
    assert layout.ignored == ("Notes", "mail")


def test_the_picker_strips_and_pads_short_rows() -> None:
    layout = Layout(",", ("first_name", "email"), {Column.FIRST_NAME: 0, Column.EMAIL: 1}, False)
    pick = layout.picker()
    picked = dict(zip(Column, pick((" Ana ", " ana@example.org ")), strict=True))
    assert (picked[Column.EMAIL], picked[Column.FIRST_NAME]) == ("ana@example.org", "Ana")
    assert set(pick(("Solo",))) == {"Solo", ""}  # the missing email and absent columns


# --- rows ----------------------------------------------------------------------


def test_rows_keep_their_physical_line_and_blank_lines_are_counted(tmp_path: Path) -> None:
    text = '\nemail,notes\n\na@example.org,"two\nlines"\n  ,  \nb@example.org,x\n'
    path = source(tmp_path, text.encode())
    rows, stats = rows_of(path)
    assert [(row.line, row.fields) for row in rows] == [
        (4, ("a@example.org", "two\nlines")),
        (7, ("b@example.org", "x")),
    ]
    # The blank line before the header is not counted: reading had not begun.
    assert stats.blank_lines == 2
    assert stats.bytes_read == path.stat().st_size


def test_an_unparseable_row_is_reported_and_reading_goes_on(tmp_path: Path) -> None:
    huge = "x" * (FIELD_LIMIT + 1)
    path = source(tmp_path, f"email,notes\na@example.org,{huge}\nb@example.org,ok\n".encode())
    rows, _ = rows_of(path)
    assert rows[0].line == 2 and rows[0].fields == ()
    assert rows[0].problem is not None and rows[0].problem.startswith("unreadable row")
    assert rows[-1].fields == ("b@example.org", "ok")


# --- the rejects file ----------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "written"),
    [("=SUM(A1)", "'=SUM(A1)"), ("+1", "'+1"), ("-2", "'-2"), ("@x", "'@x"), ("Ana", "Ana")],
)
def test_neutralise_stops_formulas(cell: str, written: str) -> None:
    assert safe_cell(cell) == written
    assert safe_cell("") == ""


def test_the_rejects_file_appears_only_when_finished(tmp_path: Path) -> None:
    target = tmp_path / "errors.csv"
    writer = RejectWriter(target, ("email", "first_name"))
    writer.write(SourceRow(3, ("bad", "=HYPERLINK(x)\x07")), "invalid_email", "no @")
    assert not target.exists()
    writer.finish()
    with target.open(encoding="utf-8", newline="") as handle:
        written = list(csv.reader(handle))
    assert written == [
        ["line", "reason", "detail", "email", "first_name"],
        ["3", "invalid_email", "no @", "bad", "'=HYPERLINK(x)\ufffd"],
    ]
    assert writer.rows == 1 and list(tmp_path.iterdir()) == [target]


def test_an_abandoned_rejects_file_leaves_nothing(tmp_path: Path) -> None:
    writer = RejectWriter(tmp_path / "errors.csv", ("email",))
    writer.write(SourceRow(2, ("bad",)), "invalid_email", "no @")
    writer.abandon()
    assert list(tmp_path.iterdir()) == []
