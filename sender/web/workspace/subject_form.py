"""The wave form's subject test: its fields to the plan file's entry and back, its preview.

The fields only become the plan file's `subject_test` entry; the checking is
the plan file's (sender.campaign.plan_file.wave_spec) and, for a variant that
leaves out a language, the launch check's own (sender.render.variants). Variant
rows are numbered fields (`variant_0_subject_en`), so a plan's own variant
names survive an edit; a new row is named by its letter.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import Engine

from sender.campaign.plan_file import WaveProblem, WaveSpec
from sender.core.db import session_scope
from sender.core.errors import InvalidInput
from sender.core.models import Wave
from sender.core.subject_test import MAX_VARIANTS, MIN_VARIANTS, SubjectTestSpec, SubjectVariant
from sender.core.vocabulary import SubjectMetric, SubjectState
from sender.ops.subject_status import state_line
from sender.render.renderer import WaveContent
from sender.render.variants import missing_languages, variant_content
from sender.report.variants import Figure, counted_note, figures, test_report

LABELS = string.ascii_uppercase  # a new row's name; more than 4 rows is the plan's to refuse
METRICS = tuple(metric.value for metric in SubjectMetric)
# The form's names of the plan entry's test settings; the rest are the variant rows.
SETTINGS = {
    "share": "test_share",
    "seed": "test_seed",
    "metric": "test_metric",
    "wait_hours": "test_wait_hours",
    "confidence": "test_confidence",
    "min_sends": "test_min_sends",
    "default": "test_default",
}
PERCENT = ("share", "confidence")  # typed as a percentage, stored as a fraction
WAVE_FIELDS = {"rate_per_hour": "rate", "subjects": "subjects", "preheaders": "subjects"}


def variant_count(form: Mapping[str, str]) -> int:
    text = form.get("variant_count", "").strip() or "0"
    if not text.isdigit() or int(text) > len(LABELS):
        raise WaveProblem(f"{text!r} is not a number of variants", ("subject_test",))
    return int(text)


def stepped(form: Mapping[str, str], action: str) -> dict[str, str]:
    """The form after an "add variant" or "remove variant" button: nothing is saved.

    A test starts with two rows, the fewest it can have, and goes when the second
    is removed."""
    try:
        count = variant_count(form)
    except InvalidInput:
        count = 0
    if action == "add_variant":
        count = MIN_VARIANTS if count < MIN_VARIANTS else min(count + 1, MAX_VARIANTS)
    elif action == "remove_variant":
        count = 0 if count <= MIN_VARIANTS else count - 1
    return {**form, "variant_count": str(count)}


def _texts(prefix: str, form: Mapping[str, str]) -> dict[str, str]:
    return {
        key.removeprefix(prefix): value.strip()
        for key, value in form.items()
        if key.startswith(prefix) and value.strip()
    }


def _row(form: Mapping[str, str], index: int) -> dict[str, Any]:
    return {
        "name": form.get(f"variant_{index}_name", "").strip() or LABELS[index],
        "subjects": _texts(f"variant_{index}_subject_", form),
        "preheaders": _texts(f"variant_{index}_preheader_", form),
    }


def _number(form: Mapping[str, str], key: str) -> float | None:
    text = form.get(SETTINGS[key], "").strip().rstrip("%").strip()
    if not text:
        return None  # the plan file's default
    try:
        value = float(text)
    except ValueError as error:
        where = ("subject_test", key)
        raise WaveProblem(f"{key.replace('_', ' ')} {text!r} is not a number", where) from error
    return value / 100 if key in PERCENT else value


def test_from_form(form: Mapping[str, str]) -> dict[str, Any] | None:
    """The plan file's `subject_test` entry from the form; None for a wave without a test."""
    count = variant_count(form)
    if count == 0:
        return None
    entry: dict[str, Any] = {"variants": [_row(form, i) for i in range(count)]}
    for key in ("share", "wait_hours", "confidence", "seed", "min_sends"):
        value = _number(form, key)
        if value is not None:
            whole = key in ("seed", "min_sends")
            # A fraction of a seed or a count is left for the plan file to refuse.
            entry[key] = int(value) if whole and value.is_integer() else value
    entry["metric"] = form.get(SETTINGS["metric"], "").strip() or None
    entry["default"] = form.get(SETTINGS["default"], "").strip() or None
    return {key: value for key, value in entry.items() if value is not None}


def check_variant_languages(spec: WaveSpec) -> None:
    """A variant must change its part in every language of the wave: the launch check's gap
    (sender.render.preview), refused here already so a form never saves one."""
    if spec.subject_test is None:
        return
    wave = WaveContent(0, spec.name, spec.kind, spec.subjects, spec.preheaders)
    for index, variant in enumerate(spec.subject_test.variants):
        gaps = missing_languages(wave, variant)
        if gaps:
            raise WaveProblem(
                f"wave {spec.name!r}: variant {variant.name}: `{gaps[0]}` is missing;"
                " the variant changes this part in other languages",
                ("subject_test", "variants", index),
            )


def form_fields(stored: Mapping[str, Any] | None) -> dict[str, str]:
    """A stored test (the wave's JSON) as the form's fields, so an edit opens with it."""
    test = SubjectTestSpec.from_json(stored)
    if test is None:
        return {"variant_count": "0"}
    fields = {
        "variant_count": str(len(test.variants)),
        "test_share": f"{test.share * 100:g}",
        "test_seed": str(test.seed),
        "test_metric": test.metric.value,
        "test_wait_hours": f"{test.wait.total_seconds() / 3600:g}",
        "test_confidence": f"{test.confidence * 100:g}",
        "test_min_sends": str(test.min_sends),
        "test_default": test.default,
    }
    for i, variant in enumerate(test.variants):
        fields[f"variant_{i}_name"] = variant.name
        fields |= {f"variant_{i}_subject_{k}": v for k, v in variant.subjects.items()}
        fields |= {f"variant_{i}_preheader_{k}": v for k, v in variant.preheaders.items()}
    return fields


def field_of(where: Sequence[str | int]) -> str:
    """Which of the form's fields a plan problem's location is about."""
    if not where:
        return ""
    if where[0] != "subject_test":
        return WAVE_FIELDS.get(str(where[0]), str(where[0]))
    if len(where) >= 3 and where[1] == "variants" and isinstance(where[2], int):
        return f"variant_{where[2]}"
    if len(where) >= 2 and str(where[1]) in SETTINGS:
        return SETTINGS[str(where[1])]
    return "variants"


@dataclass(frozen=True)
class InboxLine:
    variant: str  # "" for a wave without a test
    subject: str
    preheader: str


def inbox_lines(
    form: Mapping[str, str], languages: Sequence[str]
) -> dict[str, tuple[InboxLine, ...]]:
    """Per language, the inbox line each variant shows (what a variant leaves out is the
    wave's own, as the renderer reads it), from the fields as typed, checked or not."""
    wave = WaveContent(
        0, "", "", MappingProxyType(_texts("subject_", form)), _texts("preheader_", form)
    )
    try:
        count = min(variant_count(form), len(LABELS))
    except InvalidInput:
        count = 0
    rows = [_row(form, i) for i in range(count)]
    contents = [(row["name"], variant_content(wave, SubjectVariant(**row))) for row in rows] or [
        ("", wave)
    ]
    return {
        language: tuple(
            InboxLine(name, c.subjects.get(language, ""), c.preheaders.get(language, ""))
            for name, c in contents
        )
        for language in languages
    }


@dataclass(frozen=True)
class TestView:
    """The wave page's subject test: its line, its figures, and what staff may pick."""

    line: str
    rows: tuple[Figure, ...]
    names: tuple[str, ...]
    pickable: bool  # testing: a winner may be picked by hand


def test_view(engine: Engine, wave_id: int, now: datetime) -> TestView | None:
    with session_scope(engine) as session:
        wave = session.get_one(Wave, wave_id)
        report = test_report(session, wave)
        if report is None:
            return None
        line, note = state_line(session, wave, report, now), counted_note(report)
        return TestView(
            f"{line}. {note}" if note else line,
            tuple(figures(report)),
            report.test.names,
            report.state == SubjectState.TESTING,
        )


def stored_gaps(engine: Engine, wave_id: int) -> list[str]:
    """A stored wave's variants that leave out a language: what its launch will refuse."""
    with session_scope(engine) as session:
        wave = session.get_one(Wave, wave_id)
        test = SubjectTestSpec.from_json(wave.subject_test)
        content = WaveContent.from_row(wave)
    return [
        f"variant {variant.name}: `{gap}` is missing"
        for variant in (test.variants if test else ())
        for gap in missing_languages(content, variant)
    ]
