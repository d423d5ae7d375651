"""A wave's subject test as declared: its variants and the rule that picks the winner.

Stored as JSON on the wave (`waves.subject_test`); every layer reads it through
`SubjectTestSpec.from_json`, so the shape has one home. The running test's state
(winner, reason) is the `subject_tests` table's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType
from typing import Any

from sender.core.vocabulary import SubjectMetric

MIN_VARIANTS = 2
MAX_VARIANTS = 4


@dataclass(frozen=True)
class SubjectVariant:
    """One variant: a subject and/or a preheader per language; what it leaves out is the wave's."""

    name: str
    subjects: Mapping[str, str]
    preheaders: Mapping[str, str]


@dataclass(frozen=True)
class SubjectTestSpec:
    variants: tuple[SubjectVariant, ...]
    default: str  # the variant sent to the remainder when no variant wins
    share: float  # of the wave's eligible audience, split evenly between the variants
    seed: int
    metric: SubjectMetric
    wait: timedelta  # after the last test batch is sent
    confidence: float  # of the one-sided two-proportion test, e.g. 0.95
    min_sends: int  # per variant: fewer sent and nobody wins

    def variant(self, name: str) -> SubjectVariant:
        return next(v for v in self.variants if v.name == name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variants)

    def to_json(self) -> dict[str, Any]:
        return {
            "variants": [
                {"name": v.name, "subjects": dict(v.subjects), "preheaders": dict(v.preheaders)}
                for v in self.variants
            ],
            "default": self.default,
            "share": self.share,
            "seed": self.seed,
            "metric": self.metric.value,
            "wait_minutes": int(self.wait.total_seconds() // 60),
            "confidence": self.confidence,
            "min_sends": self.min_sends,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> SubjectTestSpec | None:
        """None for a wave without a test (an empty or missing value)."""
        if not data:
            return None
        return cls(
            variants=tuple(
                SubjectVariant(
                    str(v["name"]),
                    MappingProxyType(dict(v.get("subjects") or {})),
                    MappingProxyType(dict(v.get("preheaders") or {})),
                )
                for v in data["variants"]
            ),
            default=str(data["default"]),
            share=float(data["share"]),
            seed=int(data["seed"]),
            metric=SubjectMetric(data["metric"]),
            wait=timedelta(minutes=int(data["wait_minutes"])),
            confidence=float(data["confidence"]),
            min_sends=int(data["min_sends"]),
        )
