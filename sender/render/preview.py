"""Previews and checks: what a supporter will receive, and what is wrong with it.

`check_all` renders every variant the database can produce; the sending
pipeline calls it before a wave launches and refuses on any problem. A
preview personalises one variant for one supporter and writes the final
HTML, text and MIME message, with warnings a person should look at.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import formatdate, make_msgid
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from sender.core import db
from sender.core.config import Settings
from sender.core.errors import CampaignError, TemplateProblem
from sender.core.mail import OutgoingBatch, Recipient
from sender.core.models import Campaign, Case, Wave
from sender.core.subject_test import SubjectTestSpec
from sender.render.eml import build_eml
from sender.render.identity import SenderIdentity, sender_identity
from sender.render.merge import personalise
from sender.render.renderer import (
    CaseContent,
    RecipientData,
    Renderer,
    Variant,
    WaveContent,
    batch_args,
    kept_renderer,
)
from sender.render.templating import Problem
from sender.render.variants import missing_languages, variant_content

GMAIL_CLIP_BYTES = 102 * 1024  # Gmail hides everything after this behind "View entire message"
HTML_WARN_BYTES = 100 * 1024
SAMPLE_SUPPORTER = ("preview@example.org", "Alex", "Example")


@dataclass(frozen=True)
class Preview:
    variant: Variant
    subject: str
    preheader: str
    html: str
    text: str
    eml: bytes
    warnings: tuple[str, ...]

    @property
    def html_bytes(self) -> int:
        return len(self.html.encode())


def sample_recipient(case: CaseContent, wave: WaveContent | None = None) -> RecipientData:
    email, first, last = SAMPLE_SUPPORTER
    return RecipientData(0, email, first, last, None, case.id, wave.id if wave else None)


def preview(
    renderer: Renderer,
    kind: str,
    case: CaseContent,
    language: str,
    who: RecipientData | None = None,
    wave: WaveContent | None = None,
) -> Preview:
    variant = renderer.variant(kind, case, language, wave)
    who = who or sample_recipient(case, wave)
    recipient = renderer.recipient(variant, who)
    batch = renderer.batch(
        variant,
        [recipient],
        send_key="preview",
        categories=["preview"],
        custom_args=batch_args(who.case_id, who.wave_id),
    )
    html = personalise(variant.html, recipient.substitutions)
    return Preview(
        variant=variant,
        subject=personalise(variant.subject, recipient.substitutions),
        preheader=personalise(variant.preheader, recipient.substitutions),
        html=html,
        text=personalise(variant.text, recipient.substitutions),
        eml=preview_eml(batch, recipient),
        warnings=_warnings(variant, html),
    )


def preview_warnings(
    renderer: Renderer, kind: str, case: CaseContent, language: str, wave: WaveContent | None
) -> tuple[str, ...]:
    """What `preview` warns of for the sample supporter, without building the message."""
    variant = renderer.variant(kind, case, language, wave)
    recipient = renderer.recipient(variant, sample_recipient(case, wave))
    return _warnings(variant, personalise(variant.html, recipient.substitutions))


def _warnings(variant: Variant, html: str) -> tuple[str, ...]:
    return (
        *(f"missing translation: {f}" for f in variant.fallbacks),
        *html_warnings(html),
    )


def preview_eml(batch: OutgoingBatch, recipient: Recipient) -> bytes:
    """The MIME message one recipient of `batch` would get, as the provider would build it."""
    ids = (
        ("Date", formatdate(localtime=False)),
        ("Message-ID", make_msgid(domain=batch.sender.email.rpartition("@")[2] or None)),
    )
    return build_eml(batch, recipient, ids, cte="quoted-printable").as_bytes()


def html_warnings(html: str) -> list[str]:
    """Things that hurt delivery or reading: clipping, images without alt, plain http links."""
    warnings: list[str] = []
    size = len(html.encode())
    if size > HTML_WARN_BYTES:
        warnings.append(
            f"HTML is {size / 1024:.1f} KB: Gmail clips messages over {GMAIL_CLIP_BYTES // 1024} KB"
        )
    scan = _HtmlScan()
    scan.feed(html)
    scan.close()
    warnings += scan.warnings
    return warnings


class _HtmlScan(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.warnings: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        line = self.getpos()[0]
        if tag == "img":
            source = values.get("src") or "?"
            if not (values.get("alt") or "").strip():
                self.warnings.append(f"line {line}: image {source} has no alt text")
            if not values.get("width") or not values.get("height"):
                self.warnings.append(f"line {line}: image {source} lacks width or height")
        if tag == "a":
            href = (values.get("href") or "").strip()
            if not href.startswith(("https://", "mailto:", "#")):
                self.warnings.append(f"line {line}: link {href or '(empty)'} is not https")


def check_all(engine: Engine, settings: Settings) -> list[Problem]:
    """Every template problem and every variant that fails to render; empty means go.

    Each campaign renders with its own identity and its own kinds, as it will be
    sent: every kind it has (the shipped ones and its own) for every case and
    language, and each of its waves.
    """
    try:
        renderer = kept_renderer(settings)
    except TemplateProblem as error:
        return [Problem("templates", None, str(error))]
    problems = template_problems(renderer)
    if problems:
        return problems  # rendering broken templates would only repeat them
    campaigns = _campaigns(engine, settings, renderer.templates.languages)
    problems += _uncatalogued({c.slug: c.declared for c in campaigns}, renderer.templates.languages)
    for campaign in campaigns:
        problems += _campaign_problems(campaign, settings)
    return problems


def template_problems(renderer: Renderer) -> list[Problem]:
    """Syntax errors and recipient misuse in every template file, and missing kinds."""
    templates = renderer.templates
    names = templates.template_names()
    problems = [p for name in names for p in templates.problems(name)]
    for kind in renderer.kinds:
        for suffix in ("html", "txt"):
            if f"{kind}.{suffix}" not in names:
                problems.append(Problem(f"{kind}.{suffix}", None, "template is missing"))
    return problems


@dataclass(frozen=True)
class _Campaign:
    """What the launch check renders for one campaign."""

    slug: str
    identity: SenderIdentity
    kinds: Mapping[str, Any]  # Campaign.kinds
    cases: tuple[CaseContent, ...]
    waves: tuple[WaveContent, ...]
    tests: tuple[tuple[WaveContent, SubjectTestSpec], ...]  # the waves that run a subject test
    declared: tuple[str, ...]  # Campaign.languages
    speaks: tuple[str, ...]  # what is rendered: the declared, else every catalogued one


def _campaigns(engine: Engine, settings: Settings, catalogued: Sequence[str]) -> list[_Campaign]:
    """Each campaign with its cases and waves, in its declared languages (every
    catalogued one for a campaign that declares none)."""
    with db.session_scope(engine) as session:
        cases: dict[int, list[CaseContent]] = {}
        for case in session.scalars(select(Case).order_by(Case.id)):
            cases.setdefault(case.campaign_id, []).append(CaseContent.from_row(case))
        waves: dict[int, list[WaveContent]] = {}
        tests: dict[int, list[tuple[WaveContent, SubjectTestSpec]]] = {}
        for wave in session.scalars(select(Wave).order_by(Wave.id)):
            content = WaveContent.from_row(wave)
            waves.setdefault(wave.campaign_id, []).append(content)
            if (test := SubjectTestSpec.from_json(wave.subject_test)) is not None:
                tests.setdefault(wave.campaign_id, []).append((content, test))
        return [
            _Campaign(
                c.slug,
                sender_identity(settings, c),
                dict(c.kinds or {}),
                tuple(cases.get(c.id, ())),
                tuple(waves.get(c.id, ())),
                tuple(tests.get(c.id, ())),
                tuple(c.languages or ()),
                tuple(c.languages or ()) or tuple(catalogued),
            )
            for c in session.scalars(select(Campaign).order_by(Campaign.id))
        ]


def _campaign_problems(campaign: _Campaign, settings: Settings) -> list[Problem]:
    try:
        renderer = kept_renderer(settings, campaign.identity, campaign.kinds)
    except TemplateProblem as error:
        return [Problem(f"campaign {campaign.slug}", None, str(error))]
    problems = [
        Problem(f"campaign {campaign.slug}: {p.template}", p.line, p.message)
        for p in template_problems(renderer)
    ]
    if problems:
        return problems
    problems += _variant_gaps(campaign)
    for case in campaign.cases:
        for language in campaign.speaks:
            variants: list[tuple[str, WaveContent | None]] = [(k, None) for k in renderer.kinds]
            variants += [(wave.kind, wave) for wave in campaign.waves]
            variants += [
                (wave.kind, variant_content(wave, variant))
                for wave, test in campaign.tests
                for variant in test.variants
            ]
            for kind, wave in variants:
                try:
                    variant = renderer.variant(kind, case, language, wave)
                    renderer.recipient(variant, sample_recipient(case, wave))
                except CampaignError as error:
                    label = f"{kind} × {case.slug} × {language}" + (
                        f" × wave {wave.name}" if wave else ""
                    )
                    problems.append(Problem(label, None, str(error)))
    return problems


def _variant_gaps(campaign: _Campaign) -> list[Problem]:
    """A variant must say what it changes in every language of its wave: a gap would
    send that language the default's words and skew the test."""
    return [
        Problem(
            f"campaign {campaign.slug}: wave {wave.name} variant {variant.name}",
            None,
            f"`{gap}` is missing: the variant changes this part in other languages",
        )
        for wave, test in campaign.tests
        for variant in test.variants
        for gap in missing_languages(wave, variant)
    ]


def _uncatalogued(
    declared: Mapping[str, Sequence[str]], catalogued: Sequence[str]
) -> list[Problem]:
    """A campaign language without a catalogue would mail its words in English."""
    return [
        Problem(
            f"campaign {slug}",
            None,
            f"language {language!r} has no catalogue:"
            f" add locales/{language}/LC_MESSAGES/messages.po to the templates",
        )
        for slug, languages in declared.items()
        for language in languages
        if language not in catalogued
    ]


def screenshot(html_file: Path, png_file: Path, width: int = 640, height: int = 1800) -> Path:
    """A PNG of the HTML as Chromium draws it (headless); CampaignError without Chromium."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise CampaignError("chromium is not installed: apt-get install -y chromium")
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--window-size={width},{height}",
        f"--screenshot={png_file.resolve()}",
        html_file.resolve().as_uri(),
    ]
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=60)
    except (subprocess.SubprocessError, OSError) as error:
        raise CampaignError(f"chromium could not take the screenshot: {error}") from error
    return png_file
