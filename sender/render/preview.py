"""Previews and checks: what a supporter will receive, and what is wrong with it.

`check_all` renders every variant the database can produce; the sending
pipeline calls it before a wave launches and refuses on any problem. A
preview personalises one variant for one supporter and writes the final
HTML, text and MIME message, with warnings a person should look at.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from email.headerregistry import Address as MimeAddress
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from html.parser import HTMLParser
from pathlib import Path

from sqlalchemy import Engine, select

from sender.core import db
from sender.core.config import Settings
from sender.core.errors import CampaignError, TemplateProblem
from sender.core.mail import Address, OutgoingBatch, Recipient
from sender.core.models import Case, Wave
from sender.core.vocabulary import WaveKind
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
        eml=build_eml(batch, recipient),
        warnings=tuple(warnings),
    )


def build_eml(batch: OutgoingBatch, recipient: Recipient) -> bytes:
    """The MIME message one recipient of `batch` would get, as the provider would build it."""
    fill = recipient.substitutions
    message = EmailMessage()
    message["From"] = _address(batch.sender)
    message["To"] = _address(recipient.to)
    message["Reply-To"] = _address(batch.reply_to)
    message["Subject"] = personalise(batch.subject, fill)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=batch.sender.email.rpartition("@")[2] or None)
    for name, value in batch.headers_for(recipient).items():
        message[name] = value
    message.set_content(personalise(batch.text, fill), subtype="plain", cte="quoted-printable")
    message.add_alternative(personalise(batch.html, fill), subtype="html", cte="quoted-printable")
    return message.as_bytes()


def _address(address: Address) -> MimeAddress:
    return MimeAddress(display_name=address.name or "", addr_spec=address.email)


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
    """Every template problem and every variant that fails to render; empty means go."""
    try:
        renderer = Renderer(settings)
    except TemplateProblem as error:
        return [Problem("templates", None, str(error))]
    problems = template_problems(renderer)
    if problems:
        return problems  # rendering broken templates would only repeat them
    for kind, case, language, wave in _variants(engine, renderer):
        try:
            variant = renderer.variant(kind, case, language, wave)
            renderer.recipient(variant, sample_recipient(case, wave))
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


def _variants(
    engine: Engine, renderer: Renderer
) -> Iterator[tuple[WaveKind, CaseContent, str, WaveContent | None]]:
    with db.session_scope(engine) as session:
        cases = [CaseContent.from_row(c) for c in session.scalars(select(Case).order_by(Case.id))]
        waves = [WaveContent.from_row(w) for w in session.scalars(select(Wave).order_by(Wave.id))]
    for case in cases:
        for language in renderer.templates.languages:
            for kind in WaveKind:
                yield kind, case, language, None
            for wave in waves:
                yield wave.kind, case, language, wave


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
