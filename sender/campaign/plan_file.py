"""The campaign plan: waves declared in a YAML file, checked before they are stored.

A plan file names its waves; applying it again changes nothing (a wave is
matched by name). A wave that is already launched keeps its definition: a
plan edit must not move a wave under the feet of the workers sending it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sender.core.errors import InvalidInput
from sender.core.languages import known_language
from sender.core.subject_test import MAX_VARIANTS, MIN_VARIANTS, SubjectTestSpec, SubjectVariant
from sender.core.vocabulary import AudienceRule, SubjectMetric
from sender.render.kinds import NAME_PATTERN


@dataclass(frozen=True)
class WaveSpec:
    """One wave as declared. Its kind is only a name here: whether the campaign has
    that kind, and the kind's default audience when `audience` is None, are settled
    where the campaign is known (sender.campaign.kinds.check_kind)."""

    name: str
    kind: str
    audience: AudienceRule | None
    starts_at: datetime
    ends_at: datetime
    # None: the campaign's send window (campaign.yaml: send_window).
    window_start: time | None
    window_end: time | None
    subjects: Mapping[str, str]
    preheaders: Mapping[str, str] = field(default_factory=dict)
    rate_per_hour: int | None = None
    domain_rates: Mapping[str, int] = field(default_factory=dict)
    subject_test: SubjectTestSpec | None = None


class WaveProblem(InvalidInput):
    """A wave's first problem, with where it lies in the wave's entry (pydantic's location),
    so a form can show it beside the field it is about."""

    def __init__(self, message: str, where: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.where = where


@dataclass(frozen=True)
class Plan:
    campaign: str | None
    waves: tuple[WaveSpec, ...]


def _language_keys(value: dict[str, str]) -> dict[str, str]:
    """Keys are language codes, kept in their normal form ("pt-BR" -> "pt_BR")."""
    texts: dict[str, str] = {}
    for key, text in value.items():
        code = known_language(key)
        if code is None:
            raise ValueError(
                f"unknown language {key!r} (a code Babel knows, e.g. 'de', 'fa', 'pt_BR')"
            )
        if code in texts:
            raise ValueError(f"language {code!r} is given twice")
        texts[code] = text
    return texts


class _VariantModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,7}$")
    subjects: dict[str, str] = Field(default_factory=dict)
    preheaders: dict[str, str] = Field(default_factory=dict)

    @field_validator("subjects", "preheaders")
    @classmethod
    def _languages(cls, value: dict[str, str]) -> dict[str, str]:
        return _language_keys(value)


class _TestModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variants: list[_VariantModel]
    default: str | None = None  # None: the first variant
    share: float = Field(default=0.2, gt=0, le=0.5)
    seed: int = 0
    metric: SubjectMetric = SubjectMetric.HUMAN_CLICKS
    wait_hours: float = Field(default=4, gt=0, le=168)
    confidence: float = Field(default=0.95, ge=0.5, lt=1)
    min_sends: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _variants(self) -> _TestModel:
        count = len(self.variants)
        if not MIN_VARIANTS <= count <= MAX_VARIANTS:
            raise ValueError(
                f"a subject test has {MIN_VARIANTS} to {MAX_VARIANTS} variants, not {count}"
            )
        names = [v.name for v in self.variants]
        if len(set(names)) != count:
            raise ValueError(f"variant names must be unique ({', '.join(names)})")
        controls = [v.name for v in self.variants if not v.subjects and not v.preheaders]
        if len(controls) > 1:
            raise ValueError(
                f"variants {', '.join(controls)} give neither subjects nor preheaders: only one"
                " may be the wave's own subject and preheader"
            )
        if self.default is not None and self.default not in names:
            raise ValueError(f"default {self.default!r} is not a variant ({', '.join(names)})")
        return self


class _WaveModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    kind: str
    audience: AudienceRule | None = None
    start: datetime
    end: datetime
    window: str | None = None
    subjects: dict[str, str] = Field(min_length=1)
    preheaders: dict[str, str] = Field(default_factory=dict)
    rate_per_hour: int | None = Field(default=None, gt=0)
    domain_rates: dict[str, int] = Field(default_factory=dict)
    subject_test: _TestModel | None = None

    @field_validator("kind")
    @classmethod
    def _kind_name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(
                f"{value!r} is not a kind name (lower-case letters, digits and _, e.g. thank_you)"
            )
        return value

    @field_validator("subjects", "preheaders")
    @classmethod
    def _languages(cls, value: dict[str, str]) -> dict[str, str]:
        return _language_keys(value)

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("needs a timezone, e.g. 2020-12-01T00:00:00Z")
        return value.astimezone(UTC)


class _PlanModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    campaign: str | None = None
    waves: list[_WaveModel] = Field(min_length=1)


def parse_window(text: str) -> tuple[time, time]:
    """'09:00-11:00' → (09:00, 11:00); '00:00-24:00' is the whole day."""
    try:
        start_text, end_text = (part.strip() for part in text.split("-"))
        start = time.fromisoformat(start_text)
        end = time(0, 0) if end_text == "24:00" else time.fromisoformat(end_text)
    except ValueError as error:
        raise InvalidInput(f"window {text!r} is not HH:MM-HH:MM") from error
    if start == end and end_text != "24:00" and start != time(0, 0):
        raise InvalidInput(f"window {text!r} is empty")
    if end != time(0, 0) and end <= start:
        raise InvalidInput(f"window {text!r} ends before it starts (windows cannot span midnight)")
    return start, end


def wave_spec(
    *,
    name: str,
    kind: str,
    start: datetime,
    end: datetime,
    subjects: Mapping[str, str],
    audience: str | None = None,
    window: str | None = None,
    preheaders: Mapping[str, str] | None = None,
    rate_per_hour: int | None = None,
    domain_rates: Mapping[str, int] | None = None,
    subject_test: Mapping[str, Any] | None = None,
) -> WaveSpec:
    """One wave from loose values (the CLI's `wave create`), checked like a plan entry."""
    raw: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "audience": audience,
        "start": start,
        "end": end,
        "window": window,
        "subjects": dict(subjects),
        "preheaders": dict(preheaders or {}),
        "rate_per_hour": rate_per_hour,
        "domain_rates": dict(domain_rates or {}),
        "subject_test": dict(subject_test) if subject_test else None,
    }
    try:
        model = _WaveModel.model_validate(raw)
    except ValidationError as error:
        where = tuple(error.errors()[0]["loc"])
        raise WaveProblem(f"wave {name!r}: {first_problem(error)}", where) from error
    return _spec(model)


def load_plan(path: Path) -> Plan:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise InvalidInput(f"{path}: cannot read the plan ({error.strerror})") from error
    except yaml.YAMLError as error:
        raise InvalidInput(f"{path}: not valid YAML ({error})") from error
    return parse_plan(data, source=str(path))


def parse_plan(data: object, source: str = "plan") -> Plan:
    try:
        model = _PlanModel.model_validate(data)
    except ValidationError as error:
        raise InvalidInput(f"{source}: {first_problem(error)}") from error
    names = [w.name for w in model.waves]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidInput(f"{source}: wave names must be unique ({', '.join(duplicates)})")
    return Plan(model.campaign, tuple(_spec(w) for w in model.waves))


def check_in_window(spec: WaveSpec, window_start: datetime, window_end: datetime) -> None:
    """Nothing is sent outside the campaign window: refuse a wave that reaches out of it."""
    if spec.ends_at <= spec.starts_at:
        raise InvalidInput(f"wave {spec.name!r} ends before it starts")
    if spec.starts_at < window_start or spec.ends_at > window_end:
        raise InvalidInput(
            f"wave {spec.name!r} runs {spec.starts_at:%Y-%m-%d %H:%M}–{spec.ends_at:%Y-%m-%d %H:%M}"
            f" UTC, outside the campaign window {window_start:%Y-%m-%d}–{window_end:%Y-%m-%d};"
            " move the wave or widen the campaign window"
        )


def check_languages(spec: WaveSpec, declared: Sequence[str], campaign: str) -> None:
    """A wave speaks only languages its campaign declares (none declared: any)."""
    if not declared:
        return
    parts = [("subjects", spec.subjects), ("preheaders", spec.preheaders)]
    for variant in spec.subject_test.variants if spec.subject_test else ():
        parts += [
            (f"subject_test.{variant.name}.subjects", variant.subjects),
            (f"subject_test.{variant.name}.preheaders", variant.preheaders),
        ]
    for part, texts in parts:
        for language in texts:
            if language not in declared:
                raise InvalidInput(
                    f"wave {spec.name!r}: `{part}.{language}`: {language!r} is not a language"
                    f" of campaign {campaign!r} ({', '.join(declared)})"
                )


def _spec(model: _WaveModel) -> WaveSpec:
    window_start, window_end = parse_window(model.window) if model.window else (None, None)
    if model.end <= model.start:
        raise WaveProblem(f"wave {model.name!r} ends before it starts", ("end",))
    return WaveSpec(
        name=model.name,
        kind=model.kind,
        audience=model.audience,
        starts_at=model.start,
        ends_at=model.end,
        window_start=window_start,
        window_end=window_end,
        subjects=dict(model.subjects),
        preheaders=dict(model.preheaders),
        rate_per_hour=model.rate_per_hour,
        domain_rates=dict(model.domain_rates),
        subject_test=_test(model),
    )


def _test(model: _WaveModel) -> SubjectTestSpec | None:
    """The declared test; a variant may only speak the wave's own subject languages.

    A variant that leaves out one of them is refused at launch, by the same
    check as `preview --all` (sender.render.preview), not here.
    """
    test = model.subject_test
    if test is None:
        return None
    for index, variant in enumerate(test.variants):
        for part, texts in (("subjects", variant.subjects), ("preheaders", variant.preheaders)):
            extra = sorted(set(texts) - set(model.subjects))
            if extra:
                raise WaveProblem(
                    f"wave {model.name!r}: variant {variant.name!r} {part} in"
                    f" {', '.join(extra)}, which the wave has no subject in",
                    ("subject_test", "variants", index, part),
                )
    return SubjectTestSpec(
        variants=tuple(
            SubjectVariant(v.name, dict(v.subjects), dict(v.preheaders)) for v in test.variants
        ),
        default=test.default or test.variants[0].name,
        share=test.share,
        seed=test.seed,
        metric=test.metric,
        wait=timedelta(minutes=round(test.wait_hours * 60)),
        confidence=test.confidence,
        min_sends=test.min_sends,
    )


def first_problem(error: ValidationError) -> str:
    """Pydantic's first complaint as `field.path: message`, the form every file error takes."""
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"])
    return f"{where}: {problem['msg']}" if where else str(problem["msg"])
