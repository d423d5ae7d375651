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

from sqlalchemy import Engine, select

from sender.core import db
from sender.core.config import Settings
from sender.core.errors import CampaignError, TemplateProblem
from sender.core.mail import OutgoingBatch, Recipient
from sender.core.models import Campaign, Case, Wave
from sender.core.vocabulary import WaveKind
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
)
from sender.render.templating import Problem

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
    kind: WaveKind,
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
    warnings = (
        *(f"missing translation: {f}" for f in variant.fallbacks),
        *html_warnings(html),
    )
    return Preview(
        variant=variant,
        subject=personalise(variant.subject, recipient.substitutions),
        preheader=personalise(variant.preheader, recipient.substitutions),
        html=html,
        text=personalise(variant.text, recipient.substitutions),
        eml=preview_eml(batch, recipient),
        warnings=tuple(warnings),
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

    Each case renders with its own campaign's identity, as it will be sent.
    """
    try:
        renderer = Renderer(settings)
    except TemplateProblem as error:
        return [Problem("templates", None, str(error))]
    problems = template_problems(renderer)
    if problems:
        return problems  # rendering broken templates would only repeat them
    identities, variants, declared = _variants(engine, settings, renderer.templates.languages)
    problems += _uncatalogued(declared, renderer.templates.languages)
    renderers = {
        campaign_id: Renderer(settings, identity) for campaign_id, identity in identities.items()
    }
    for campaign_id, kind, case, language, wave in variants:
        try:
            variant = renderers[campaign_id].variant(kind, case, language, wave)
            renderers[campaign_id].recipient(variant, sample_recipient(case, wave))
        except CampaignError as error:
            label = f"{kind.value} × {case.slug} × {language}" + (
                f" × wave {wave.name}" if wave else ""
            )
            problems.append(Problem(label, None, str(error)))
    return problems


def template_problems(renderer: Renderer) -> list[Problem]:
    """Syntax errors and recipient misuse in every template file, and missing kinds."""
    templates = renderer.templates
    names = templates.template_names()
    problems = [p for name in names for p in templates.problems(name)]
    for kind in WaveKind:
        for suffix in ("html", "txt"):
            if f"{kind.value}.{suffix}" not in names:
                problems.append(Problem(f"{kind.value}.{suffix}", None, "template is missing"))
    return problems


_Variant = tuple[int, WaveKind, CaseContent, str, WaveContent | None]  # campaign id first


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


def _variants(
    engine: Engine, settings: Settings, catalogued: Sequence[str]
) -> tuple[dict[int, SenderIdentity], list[_Variant], dict[str, tuple[str, ...]]]:
    """Each campaign's identity, every variant its cases can produce (in the campaign's
    languages; every catalogued one for a campaign that declares none), and the
    languages each campaign declares."""
    with db.session_scope(engine) as session:
        campaigns = list(session.scalars(select(Campaign).order_by(Campaign.id)))
        identities = {c.id: sender_identity(settings, c) for c in campaigns}
        speaks = {c.id: tuple(c.languages or ()) or tuple(catalogued) for c in campaigns}
        declared = {c.slug: tuple(c.languages or ()) for c in campaigns}
        cases = [
            (c.campaign_id, CaseContent.from_row(c))
            for c in session.scalars(select(Case).order_by(Case.id))
        ]
        waves = [WaveContent.from_row(w) for w in session.scalars(select(Wave).order_by(Wave.id))]
    variants: list[_Variant] = []
    for campaign_id, case in cases:
        for language in speaks[campaign_id]:
            variants += [(campaign_id, kind, case, language, None) for kind in WaveKind]
            variants += [(campaign_id, wave.kind, case, language, wave) for wave in waves]
    return identities, variants, declared


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
