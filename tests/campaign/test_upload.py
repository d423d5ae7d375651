"""Unpacking an uploaded campaign-folder zip, and campaign.yaml from the web form."""

from __future__ import annotations

import io
import stat
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sender.campaign import upload
from sender.campaign.folder import read_folder
from sender.campaign.upload import CampaignForm, form_errors, unpack_folder, write_form_folder
from sender.core.errors import InvalidInput

CAMPAIGN = (
    "slug: w4r-zip\nname: Zipped\nwindow: {start: 2026-12-01, end: 2026-12-31}\n"
    "sender: {from_email: campaigns@example.org, from_name: W4R}\nlanguages: [en]\n"
)


def zipped(files: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, body in files.items():
            archive.writestr(name, body)
    return buffer.getvalue()


def test_a_zipped_folder_unpacks_without_its_top_folder(tmp_path: Path) -> None:
    data = zipped({"mine/campaign.yaml": CAMPAIGN.encode(), "mine/cases.yaml": b"cases: []\n"})
    folder = unpack_folder(data, tmp_path / "out")
    assert sorted(p.name for p in folder.iterdir()) == ["campaign.yaml", "cases.yaml"]
    assert read_folder(folder).settings.slug == "w4r-zip"


def test_a_zip_that_inflates_past_the_limit_is_stopped_and_the_rest_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upload, "MAX_UNPACKED", 1000)
    bomb = zipped(
        {"campaign.yaml": CAMPAIGN.encode(), "cases.yaml": b"#" * 5000, "plan.yaml": b"x"},
        zipfile.ZIP_DEFLATED,
    )
    assert len(bomb) < 1000  # small on the wire: only the inflated bytes tell
    with pytest.raises(InvalidInput, match="unpacks to more than"):
        unpack_folder(bomb, tmp_path / "out")
    assert not (tmp_path / "out" / "plan.yaml").exists()


def test_links_and_odd_names_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("cases.yaml")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("campaign.yaml", CAMPAIGN)
        archive.writestr(link, "/etc/passwd")
    for data, words in (
        (buffer.getvalue(), "links are not allowed"),
        (zipped({"campaign.yaml": b"x", "..\\cases.yaml": b"x"}), "backslashes"),
        (zipped({"campaign.yaml": b"x", "C:/cases.yaml": b"x"}), "outside"),
        (zipped({"campaign.yaml": b"x", "templates/a.exe": b"x"}), "not part of"),
    ):
        with pytest.raises(InvalidInput, match=words):
            unpack_folder(data, tmp_path / "out")
        assert not (tmp_path / "out").exists()


def test_too_many_entries_and_too_large_uploads_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    many = zipped({f"templates/{n}.html": b"x" for n in range(upload.MAX_ENTRIES + 1)})
    with pytest.raises(InvalidInput, match="more than"):
        unpack_folder(many, tmp_path / "out")
    monkeypatch.setattr(upload, "MAX_UPLOAD", 10)
    with pytest.raises(InvalidInput, match="is over"):
        unpack_folder(zipped({"campaign.yaml": CAMPAIGN.encode()}), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def form(**overrides: str) -> CampaignForm:
    values = {
        "slug": "w4r-form",
        "name": "From the form",
        "window_start": "2026-12-01",
        "window_end": "2026-12-31",
        "timezone": "America/Sao_Paulo",
        "from_email": "campaigns@example.org",
        "from_name": "W4R",
        "languages": "pt_BR, en",
    }
    return CampaignForm(**{**values, **overrides})


def test_the_form_writes_the_campaign_yaml_values(tmp_path: Path) -> None:
    folder = write_form_folder(form(), tmp_path, datetime(2026, 11, 1, tzinfo=UTC))
    settings = read_folder(folder).settings
    assert (settings.slug, settings.timezone, settings.languages) == (
        "w4r-form",
        "America/Sao_Paulo",
        ("pt_BR", "en"),
    )
    assert settings.window_start == datetime(2026, 12, 1, 3, tzinfo=UTC)  # midnight in São Paulo
    assert settings.window_end == datetime(2027, 1, 1, 3, tzinfo=UTC)  # the last day included


def test_form_errors_name_the_field(tmp_path: Path) -> None:
    assert form_errors(form()) == {}
    assert form_errors(form(window_end="2026-11-30")) == {
        "window_end": "the last day comes before the first day"
    }
    assert form_errors(form(window_start="soon", slug=" ")) == {
        "window_start": "a date as YYYY-MM-DD",
        "slug": "required",
    }
    assert "unknown time zone" in form_errors(form(timezone="Mars/Olympus"))["form"]
    with pytest.raises(InvalidInput, match="window_end"):
        write_form_folder(form(window_end="2026-01-01"), tmp_path / "f", datetime.now(UTC))
    assert not (tmp_path / "f").exists()
