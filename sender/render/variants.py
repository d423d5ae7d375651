"""A subject test's variants as what the renderer reads: the wave's content, overridden.

A variant changes the subject, the preheader or both; whatever it leaves out
is the wave's own. The send pipeline renders a batch of variant B from
`variant_content(wave, B)`, and the launch check (`preview.check_all`) renders
every variant and refuses one that misses a language of the wave.
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from sender.core.subject_test import SubjectTestSpec, SubjectVariant
from sender.render.renderer import WaveContent


def variant_content(wave: WaveContent, variant: SubjectVariant) -> WaveContent:
    return replace(
        wave,
        subjects=MappingProxyType({**wave.subjects, **variant.subjects}),
        preheaders=MappingProxyType({**wave.preheaders, **variant.preheaders}),
    )


def content_for(wave: WaveContent, test: SubjectTestSpec | None, name: str) -> WaveContent:
    """What a batch of variant `name` carries; "" (or a test since removed) is the wave's own."""
    if not name or test is None or name not in test.names:
        return wave
    return variant_content(wave, test.variant(name))


def missing_languages(wave: WaveContent, variant: SubjectVariant) -> list[str]:
    """`subjects.es`-style names of the wave's languages a variant changes some but not all of."""
    languages = sorted(wave.subjects)
    return [
        f"{part}.{language}"
        for part, texts in (("subjects", variant.subjects), ("preheaders", variant.preheaders))
        if texts
        for language in languages
        if language not in texts
    ]
