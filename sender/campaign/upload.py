"""Campaign folders that arrive over the web: an uploaded zip, or the fields of a form.

Both end as a folder on disk that sender.campaign.folder.read_folder checks
exactly as it checks one on the command line, so the web cannot store a
campaign the CLI would refuse. The zip is untrusted: it is unpacked by hand,
entry by entry, refusing anything that could land outside the folder, a link,
an unexpected file, or more bytes than a campaign folder ever needs (a zip
bomb states small sizes and inflates to gigabytes).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path, PurePosixPath

import yaml

from sender.campaign.folder import CAMPAIGN_FILE, CASES_FILE, PLAN_FILE, parse_campaign
from sender.core.errors import InvalidInput

MAX_UPLOAD = 2 * 1024 * 1024  # the compressed zip
MAX_UNPACKED = 8 * 1024 * 1024  # every file together, counted while inflating
MAX_ENTRIES = 200
TOP_FILES = frozenset({CAMPAIGN_FILE, CASES_FILE, PLAN_FILE})
TEMPLATE_SUFFIXES = frozenset({".html", ".txt", ".j2", ".jinja"})
_CHUNK = 64 * 1024


def _entry_path(name: str) -> PurePosixPath:
    """The entry's path inside the folder, or InvalidInput when it could escape it."""
    if "\\" in name or "\x00" in name:
        raise InvalidInput(f"zip entry {name!r}: backslashes and NUL are not allowed in names")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise InvalidInput(f"zip entry {name!r}: points outside the campaign folder")
    return path


def _prefix(paths: list[PurePosixPath]) -> int:
    """1 when every entry sits in one top folder (a zipped folder), else 0."""
    if any(path.as_posix() in TOP_FILES for path in paths):
        return 0
    tops = {path.parts[0] for path in paths if path.parts}
    return 1 if len(tops) == 1 and all(len(path.parts) > 1 for path in paths) else 0


def _expected(path: PurePosixPath) -> bool:
    if len(path.parts) == 1:
        return path.name in TOP_FILES
    return path.parts[0] == "templates" and path.suffix in TEMPLATE_SUFFIXES


def _is_link(info: zipfile.ZipInfo) -> bool:
    return (info.external_attr >> 16) & 0o170000 == 0o120000


def _open_zip(data: bytes) -> zipfile.ZipFile:
    if not data:
        raise InvalidInput("the upload is empty: choose a zip of a campaign folder")
    if len(data) > MAX_UPLOAD:
        raise InvalidInput(f"the upload is over {MAX_UPLOAD // (1024 * 1024)} MB")
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        raise InvalidInput("the upload is not a zip file") from error


def _members(archive: zipfile.ZipFile) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    infos = [info for info in archive.infolist() if not info.is_dir()]
    if len(infos) > MAX_ENTRIES:
        raise InvalidInput(f"the zip holds more than {MAX_ENTRIES} files")
    paths = [_entry_path(info.filename) for info in infos]
    strip = _prefix(paths)
    members = []
    for info, path in zip(infos, paths, strict=True):
        inner = PurePosixPath(*path.parts[strip:])
        if _is_link(info):
            raise InvalidInput(f"zip entry {info.filename!r}: links are not allowed")
        if not _expected(inner):
            raise InvalidInput(
                f"zip entry {info.filename!r}: not part of a campaign folder (expected"
                f" {', '.join(sorted(TOP_FILES))} and templates/)"
            )
        members.append((info, inner))
    if not any(inner.as_posix() == CAMPAIGN_FILE for _, inner in members):
        raise InvalidInput(f"the zip has no {CAMPAIGN_FILE}")
    return members


def unpack_folder(data: bytes, folder: Path) -> Path:
    """Unpack an uploaded campaign-folder zip into `folder` (new or empty); return it."""
    archive = _open_zip(data)
    with archive:
        members = _members(archive)
        budget = MAX_UNPACKED
        folder.mkdir(parents=True, exist_ok=True)
        for info, inner in members:
            target = folder.joinpath(*inner.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            budget = _inflate(archive, info, target, budget)
    return folder


def _inflate(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int) -> int:
    """Copy one entry, counting real bytes: the sizes a zip states may lie."""
    try:
        with archive.open(info) as source, target.open("wb") as out:
            while chunk := source.read(_CHUNK):
                budget -= len(chunk)
                if budget < 0:
                    raise InvalidInput(
                        f"the zip unpacks to more than {MAX_UNPACKED // (1024 * 1024)} MB"
                    )
                out.write(chunk)
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError) as error:
        raise InvalidInput(f"zip entry {info.filename!r}: cannot be read ({error})") from error
    return budget


@dataclass(frozen=True)
class CampaignForm:
    """The fields of the web's new-campaign form: the core of campaign.yaml."""

    slug: str
    name: str
    window_start: str  # YYYY-MM-DD, a day in `timezone`
    window_end: str  # the campaign's last day
    timezone: str
    from_email: str
    from_name: str
    languages: str  # codes separated by spaces or commas


def _day(value: str, field: str, errors: dict[str, str]) -> date | None:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        errors[field] = "a date as YYYY-MM-DD"
        return None


def form_errors(form: CampaignForm) -> dict[str, str]:
    """Field name -> what is wrong; empty when campaign.yaml would be accepted."""
    errors: dict[str, str] = {}
    for field in ("slug", "name", "timezone", "from_email", "from_name", "languages"):
        if not str(getattr(form, field)).strip():
            errors[field] = "required"
    start = _day(form.window_start, "window_start", errors)
    end = _day(form.window_end, "window_end", errors)
    if start and end and end < start:
        errors["window_end"] = "the last day comes before the first day"
    if not errors:
        try:
            parse_campaign(campaign_yaml(form), source="the form")
        except InvalidInput as error:
            errors["form"] = str(error).removeprefix("the form: ")
    return errors


def campaign_yaml(form: CampaignForm) -> str:
    """campaign.yaml with the form's values; the rest keeps folder.py's defaults."""
    languages = [code for code in form.languages.replace(",", " ").split() if code]
    document = {
        "slug": form.slug.strip(),
        "name": form.name.strip(),
        "window": {
            "start": form.window_start.strip(),
            "end": form.window_end.strip(),
            "timezone": form.timezone.strip(),
        },
        "sender": {"from_email": form.from_email.strip(), "from_name": form.from_name.strip()},
        "languages": languages,
    }
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def write_form_folder(form: CampaignForm, folder: Path, now: datetime) -> Path:
    """A folder holding the form's campaign.yaml and no cases yet."""
    errors = form_errors(form)
    if errors:
        raise InvalidInput("; ".join(f"{field}: {message}" for field, message in errors.items()))
    folder.mkdir(parents=True, exist_ok=True)
    header = f"# written by the staff workspace on {now:%Y-%m-%d}\n"
    (folder / CAMPAIGN_FILE).write_text(header + campaign_yaml(form), encoding="utf-8")
    (folder / CASES_FILE).write_text("cases: []\n", encoding="utf-8")
    return folder
