from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from campaign_fixtures import add_2020_campaign
from sqlalchemy import Engine, func, select

from sender.campaign.cases import list_cases, load_cases, parse_cases, set_case_status
from sender.core.db import session_scope
from sender.core.errors import InvalidInput, NotFound
from sender.core.models import Case
from sender.core.vocabulary import CaseStatus


@pytest.fixture
def engine(any_engine: Engine) -> Engine:
    """Both databases, holding the 2020 campaign as `campaigns create` makes it."""
    add_2020_campaign(any_engine)
    return any_engine


REAL_FILE = Path(__file__).parents[2] / "audiences" / "w4r-2020" / "cases.yaml"


def _text(title: str) -> dict[str, Any]:
    return {
        "title": title,
        "summary": "Two sentences of summary. Here is the second.",
        "ask": "Release her now.",
        "authority": "The Minister",
        "authority_address": ["Ministry", "1 Main Street", "Capital"],
        "letter": "Dear Minister, please act. Thank you.",
    }


def _case(slug: str, **changes: Any) -> dict[str, Any]:
    case: dict[str, Any] = {
        "slug": slug,
        "person": f"Person {slug}",
        "country": "SA",
        "status": "active",
        "action_url": f"https://act.example.org/w4r/{slug}",
        "image_url": f"https://media.example.org/{slug}.jpg",
        "excluded_countries": ["SA"],
        "content": {lang: _text(f"{slug} {lang}") for lang in ("en", "es", "fr", "ar")},
    }
    case.update(changes)
    return case


def _write(tmp_path: Path, cases: list[dict[str, Any]], name: str = "cases.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"cases": cases}, allow_unicode=True), encoding="utf-8")
    return path


def _rows(engine: Engine) -> dict[str, tuple[str, str, str | None]]:
    with session_scope(engine) as session:
        return {
            case.slug: (case.status, case.content["en"]["title"], case.action_url)
            for case in session.scalars(select(Case))
        }


def test_real_file_has_seven_cases_in_four_languages() -> None:
    case_file = parse_cases(REAL_FILE.read_text(encoding="utf-8"))
    assert len(case_file.cases) == 7
    assert case_file.warnings == ()
    by_slug = {case.slug: case for case in case_file.cases}
    assert by_slug["nassima-al-sada"].excluded_countries == ("SA",)
    assert by_slug["idris-khattak"].excluded_countries == ("PK",)
    assert by_slug["metu-pride"].excluded_countries == ("TR",)
    assert by_slug["germain-rukuki"].excluded_countries == ("BI",)
    assert 1 <= sum(case.action_url is None for case in case_file.cases) <= 2
    assert all(set(case.content) == {"en", "es", "fr", "ar"} for case in case_file.cases)


def test_load_twice_creates_no_duplicates_and_applies_updates(
    engine: Engine, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first = load_cases(engine, REAL_FILE)
    assert len(first.created) == 7 and not first.updated
    again = load_cases(engine, REAL_FILE)
    assert again.created == () and again.updated == () and len(again.unchanged) == 7

    document = yaml.safe_load(REAL_FILE.read_text(encoding="utf-8"))
    document["cases"][0]["status"] = "paused"
    document["cases"][0]["content"]["en"]["title"] = "A new title"
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    report = load_cases(engine, changed)
    assert report.updated == ("idris-khattak",) and len(report.unchanged) == 6

    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Case)) == 7
    assert _rows(engine)["idris-khattak"][:2] == ("paused", "A new title")


def test_reload_without_a_case_keeps_it_and_says_so(
    engine: Engine, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    load_cases(engine, _write(tmp_path, [_case("one"), _case("two")]))
    report = load_cases(engine, _write(tmp_path, [_case("one")], "fewer.yaml"))
    assert report.not_in_file == ("two",)
    assert set(_rows(engine)) == {"one", "two"}


def _without(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    trimmed = copy.deepcopy(mapping)
    del trimmed[key]
    return trimmed


def _missing_letter() -> dict[str, Any]:
    case = _case("bad")
    del case["content"]["es"]["letter"]
    return case


BAD_CASES = {
    "missing field": (_without(_case("bad"), "country"), "missing field `country`"),
    "missing content field": (_missing_letter(), "language es: missing field `letter`"),
    "bad status": (_case("bad", status="closed"), "bad status 'closed'"),
    "non-https action_url": (
        _case("bad", action_url="http://act.example.org/x"),
        "`action_url` must be an https:// URL",
    ),
    "bad country": (_case("bad", country="XX"), "`country` must be an ISO 3166-1 alpha-2"),
    "unknown language": (
        _case("bad", content={**_case("bad")["content"], "de": _text("x")}),
        "unknown language 'de'",
    ),
}


@pytest.mark.parametrize("problem", sorted(BAD_CASES))
def test_bad_case_is_refused_naming_case_and_field_and_db_is_untouched(
    engine: Engine, env: pytest.MonkeyPatch, tmp_path: Path, problem: str
) -> None:
    load_cases(engine, _write(tmp_path, [_case("good"), _case("bad", status="paused")]))
    before = _rows(engine)
    bad, expected = BAD_CASES[problem]
    changed_good = _case("good", action_url="https://act.example.org/changed")
    path = _write(tmp_path, [changed_good, bad], "bad.yaml")

    with pytest.raises(InvalidInput) as raised:
        load_cases(engine, path)
    assert "case 'bad'" in str(raised.value)
    assert expected in str(raised.value)
    # The valid case in the same file was not applied either: all or nothing.
    assert _rows(engine) == before


def test_broken_yaml_syntax_is_refused_and_db_is_untouched(
    engine: Engine, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    load_cases(engine, _write(tmp_path, [_case("good")]))
    before = _rows(engine)
    path = tmp_path / "broken.yaml"
    path.write_text("cases:\n  - slug: good\n    person: [unclosed\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        load_cases(engine, path)
    assert _rows(engine) == before


def test_missing_non_english_language_is_loaded_and_reported(
    engine: Engine, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    case = _case("partial")
    del case["content"]["fr"]
    report = load_cases(engine, _write(tmp_path, [case]))
    assert report.created == ("partial",)
    assert any("'partial'" in w and "`fr`" in w for w in report.warnings)


def test_missing_english_is_an_error() -> None:
    case = _case("no-en")
    del case["content"]["en"]
    with pytest.raises(InvalidInput, match=r"case 'no-en'.*content.en"):
        parse_cases(yaml.safe_dump({"cases": [case]}))


def test_duplicate_slug_is_an_error() -> None:
    with pytest.raises(InvalidInput, match="case 'twice': slug used twice"):
        parse_cases(yaml.safe_dump({"cases": [_case("twice"), _case("twice")]}))


def test_case_without_urls_is_accepted() -> None:
    case = _without(_without(_case("plain"), "action_url"), "image_url")
    (parsed,) = parse_cases(yaml.safe_dump({"cases": [case]})).cases
    assert parsed.action_url is None and parsed.image_url is None


def test_set_status_and_list(engine: Engine, env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    load_cases(engine, _write(tmp_path, [_case("one"), _case("two")]))
    summary = set_case_status(engine, "two", CaseStatus.RESOLVED)
    assert summary.status == "resolved"
    listed = {case.slug: case.status for case in list_cases(engine)}
    assert listed == {"one": "active", "two": "resolved"}
    with pytest.raises(NotFound, match="no case with slug 'three' in campaign 'w4r-2020'"):
        set_case_status(engine, "three", "paused")
    with pytest.raises(InvalidInput, match="bad status"):
        set_case_status(engine, "one", "closed")
    assert {case.slug: case.status for case in list_cases(engine)} == listed
