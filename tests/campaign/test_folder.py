"""Campaign folders: `campaign init`, reading one, and every way a folder can be wrong."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, func, select

from sender.campaign.folder import read_folder
from sender.campaign.registry import Outcome, create_from_folder
from sender.campaign.starter import starter_slug, write_starter
from sender.core.db import session_scope
from sender.core.errors import InvalidInput
from sender.core.models import Campaign, Case, Wave

NOW = datetime(2026, 12, 3, 14, 37, 12, tzinfo=UTC)
W4R_2020 = Path(__file__).parents[2] / "audiences" / "w4r-2020"


def _starter(tmp_path: Path, name: str = "w4r-2026") -> Path:
    folder = tmp_path / name
    write_starter(folder, name, NOW)
    return folder


def _edit(path: Path, change: dict[str, object]) -> None:
    data = yaml.safe_load(path.read_text())
    data.update(change)
    path.write_text(yaml.safe_dump(data, allow_unicode=True))


def _counts(engine: Engine) -> tuple[int, int, int]:
    with session_scope(engine) as session:
        return tuple(  # type: ignore[return-value]
            int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Campaign, Case, Wave)
        )


def test_the_starter_folder_runs_from_today_and_its_first_wave_starts_now(
    tmp_path: Path,
) -> None:
    folder = read_folder(_starter(tmp_path))
    settings = folder.settings
    assert settings.slug == "w4r-2026" and settings.name == "Write for Rights 2026"
    assert settings.window_start == datetime(2026, 12, 3, tzinfo=UTC)
    assert settings.window_start <= NOW < settings.window_end
    assert settings.languages == ("en",) and settings.local_window == (time(9), time(11))
    assert folder.plan is not None
    first, reminder, last = folder.plan.waves
    assert first.starts_at == NOW.replace(second=0) and first.window_start == time(0)
    # The other waves take the campaign's send window.
    assert reminder.window_start is None and last.ends_at <= settings.window_end
    assert [c.slug for c in folder.cases.cases] == ["example-case"]
    # Every field is explained where it is edited.
    assert (tmp_path / "w4r-2026" / "campaign.yaml").read_text().count("\n# ") >= 10


def test_init_refuses_a_folder_with_files_and_a_name_without_a_slug(tmp_path: Path) -> None:
    folder = _starter(tmp_path)
    before = (folder / "cases.yaml").read_text()
    with pytest.raises(InvalidInput, match="already holds files"):
        write_starter(folder, "w4r-2026", NOW)
    assert (folder / "cases.yaml").read_text() == before
    assert starter_slug("W4R 2026 (DE)") == "w4r-2026-de"
    with pytest.raises(InvalidInput, match="--slug"):
        starter_slug("!!!")


def test_the_2020_folder_holds_the_demo_campaign() -> None:
    folder = read_folder(W4R_2020)
    assert folder.settings.window_start == datetime(2020, 10, 1, tzinfo=UTC)
    assert folder.settings.window_end == datetime(2021, 2, 1, tzinfo=UTC)
    assert folder.settings.languages == ("en", "es", "fr", "ar")
    assert len(folder.cases.cases) == 7 and folder.plan is not None


def test_create_is_idempotent_and_applies_an_edit(any_engine: Engine, tmp_path: Path) -> None:
    path = _starter(tmp_path)
    first = create_from_folder(any_engine, read_folder(path))
    again = create_from_folder(any_engine, read_folder(path))
    assert first.outcome is Outcome.CREATED and again.outcome is Outcome.UNCHANGED
    assert again.cases.unchanged == ("example-case",) and again.waves is not None
    assert set(again.waves.unchanged) == {"case-email", "reminder", "last-chance"}
    _edit(path / "campaign.yaml", {"send_window": "10:00-12:00"})
    edited = create_from_folder(any_engine, read_folder(path))
    assert edited.outcome is Outcome.UPDATED
    # Waves that follow the campaign's send window follow the edit; the others keep theirs.
    assert edited.waves is not None and set(edited.waves.updated) == {"reminder", "last-chance"}
    with session_scope(any_engine) as session:
        windows = dict(session.execute(select(Wave.name, Wave.local_window_start)).all())
    assert windows == {"case-email": time(0), "reminder": time(10), "last-chance": time(10)}
    assert _counts(any_engine) == (1, 1, 3)


@pytest.mark.parametrize(
    ("file", "change", "message"),
    [
        (
            "campaign.yaml",
            {"window": {"start": "2026-12-10", "end": "2026-12-01", "timezone": "UTC"}},
            "campaign.yaml: window.end (2026-12-02 00:00 UTC) is not after window.start",
        ),
        ("campaign.yaml", {"languages": ["en", "xx-nowhere"]}, "languages[1]: unknown language"),
        ("campaign.yaml", {"languages": ["en", "fr"]}, "no text in 'fr', which campaign.yaml"),
        ("campaign.yaml", {"slug": "Bad Slug"}, "campaign.yaml: slug: String should match"),
        (
            "campaign.yaml",
            {"window": {"start": "2026-12-01", "end": "2027-01-31", "timezone": "Mars/Base"}},
            "window.timezone: unknown time zone 'Mars/Base'",
        ),
        ("campaign.yaml", {"colour": "red"}, "campaign.yaml: colour: Extra inputs"),
        ("campaign.yaml", {"brand": {"primry": "#fff"}}, "brand: Value error, unknown field"),
        ("campaign.yaml", {"sender": {"from_email": "nobody", "from_name": "X"}}, "from_email"),
        ("plan.yaml", {"campaign": "w4r-2020"}, "plan.yaml: campaign: 'w4r-2020' is not"),
    ],
)
def test_a_bad_folder_names_file_and_field_and_creates_nothing(
    any_engine: Engine, tmp_path: Path, file: str, change: dict[str, object], message: str
) -> None:
    path = _starter(tmp_path)
    _edit(path / file, change)
    with pytest.raises(InvalidInput, match=re.escape(message)):
        create_from_folder(any_engine, read_folder(path))
    assert _counts(any_engine) == (0, 0, 0)


def test_plan_waves_outside_the_window_or_without_a_subject_are_named(tmp_path: Path) -> None:
    path = _starter(tmp_path)
    plan = yaml.safe_load((path / "plan.yaml").read_text())
    plan["waves"][1]["start"] = "2030-01-01T00:00:00Z"
    plan["waves"][1]["end"] = "2030-01-02T00:00:00Z"
    (path / "plan.yaml").write_text(yaml.safe_dump(plan))
    with pytest.raises(InvalidInput, match=r"plan.yaml: waves\[1\] \(reminder\): wave 'reminder'"):
        read_folder(path)
    plan["waves"][1].update(start="2026-12-10T00:00:00Z", end="2026-12-11T00:00:00Z")
    plan["waves"][2]["subjects"] = {"en": "Hi", "de": "Hallo"}
    (path / "plan.yaml").write_text(yaml.safe_dump(plan))
    with pytest.raises(InvalidInput, match=r"waves\[2\] \(last-chance\).subjects: 'de' is not"):
        read_folder(path)


def test_missing_and_broken_files_are_named(tmp_path: Path) -> None:
    path = _starter(tmp_path)
    (path / "cases.yaml").unlink()
    with pytest.raises(InvalidInput, match=r"cases\.yaml: missing"):
        read_folder(path)
    (path / "cases.yaml").write_text("cases: [\n")
    with pytest.raises(InvalidInput, match=r"cases\.yaml is not valid YAML"):
        read_folder(path)
    with pytest.raises(InvalidInput, match="not a campaign folder"):
        read_folder(tmp_path / "nowhere")


def test_a_second_campaign_cannot_take_an_existing_slug(any_engine: Engine, tmp_path: Path) -> None:
    create_from_folder(any_engine, read_folder(_starter(tmp_path)))
    other = _starter(tmp_path, "other")
    _edit(other / "campaign.yaml", {"slug": "w4r-2026", "name": "Write for Rights, Germany"})
    _edit(other / "plan.yaml", {"campaign": "w4r-2026"})
    (other / "cases.yaml").write_text(
        (other / "cases.yaml").read_text().replace("example-case", "another-case")
    )
    with pytest.raises(InvalidInput, match="slug: 'w4r-2026' already belongs to the campaign"):
        create_from_folder(any_engine, read_folder(other))
    assert _counts(any_engine) == (1, 1, 3)
    with session_scope(any_engine) as session:
        assert session.scalars(select(Case.slug)).all() == ["example-case"]
