"""Variants and recipients: render once per variant, personalise per recipient.

A variant (template kind x case x language x wave) is rendered by Jinja2 and
inlined by premailer once, with every per-recipient value left as a
substitution tag (sender.render.merge). `Renderer.recipient` then builds the small
per-recipient part of a provider request: tag values, custom args and the
one-click unsubscribe headers.
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from premailer import Premailer

from sender.core.config import Settings
from sender.core.errors import TemplateProblem
from sender.core.languages import direction
from sender.core.mail import Address, OutgoingBatch, Recipient
from sender.core.models import Case, Wave
from sender.core.speedups import KeptValues, fast_recipient, reference_code
from sender.core.tokens import ReplyRef, TokenSigner
from sender.render.case_text import case_text
from sender.render.identity import SenderIdentity, sender_identity
from sender.render.kinds import KindInfo, campaign_kinds, known_names, template_sources
from sender.render.merge import (
    HTML_RECIPIENT,
    HTML_TAGS,
    REPLY_TOKEN_TAG,
    TEXT_RECIPIENT,
    TEXT_TAGS,
    MergeField,
    RecipientTags,
    tag_values,
)
from sender.render.merge import personalise as personalise
from sender.render.templating import DEFAULT_TEMPLATES_DIR, Templates


def _N(message: str) -> str:
    """Marks a msgid for `pybabel extract -k _N`; translated later, per language."""
    return message


FRIEND = _N("friend")  # the first name used when a supporter gave none
# The custom arg naming the installation that sent a batch; sender.track.providers read it.
INSTALLATION_ARG = "installation_id"


_NO_ARGS: Mapping[str, str] = MappingProxyType({})


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class CaseContent:
    """A case as variants are rendered from it; its texts are read with `case_text`."""

    id: int
    slug: str
    person: str
    country: str
    status: str
    action_url: str | None
    image_url: str | None
    content: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # lang -> field -> text

    @classmethod
    def from_row(cls, case: Case) -> CaseContent:
        content = {
            str(lang): _frozen(texts) if isinstance(texts, Mapping) else _frozen({})
            for lang, texts in (case.content or {}).items()
        }
        return cls(
            id=case.id,
            slug=case.slug,
            person=case.person,
            country=case.country,
            status=case.status,
            action_url=case.action_url,
            image_url=case.image_url,
            content=_frozen(content),
        )


@dataclass(frozen=True)
class WaveContent:
    id: int
    name: str
    kind: str  # a kind name: shipped (templates/kinds.yaml) or the campaign's own
    subjects: Mapping[str, str] = field(default_factory=dict)
    preheaders: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_row(cls, wave: Wave) -> WaveContent:
        return cls(
            id=wave.id,
            name=wave.name,
            kind=wave.kind,
            subjects=_frozen({str(k): str(v) for k, v in (wave.subjects or {}).items()}),
            preheaders=_frozen({str(k): str(v) for k, v in (wave.preheaders or {}).items()}),
        )


@dataclass(frozen=True)
class VariantKey:
    kind: str
    case_slug: str
    language: str
    wave_id: int | None
    # What the variant is rendered from: staff who correct a case's text or a
    # wave's subject mid-wave get the new text in the next batch, without
    # restarting workers that hold the old rendering in their cache.
    source: str = ""


def content_fingerprint(case: CaseContent, wave: WaveContent | None) -> str:
    """A digest of everything a variant is rendered from, besides templates and brand."""
    return hashlib.blake2b(repr((case, wave)).encode(), digest_size=16).hexdigest()


@dataclass(frozen=True)
class Variant:
    key: VariantKey
    subject: str  # may hold substitution tags
    preheader: str
    html: str  # inlined once; holds substitution tags
    text: str
    reply_to: Address  # reply+-reply_token-@inbound_domain: each recipient's token fills it
    reply_token: str  # the variant's own (no message): for previews and proofs
    fallbacks: tuple[str, ...]  # strings that fell back to English
    greeting: str  # the first name used when a supporter gave none, in this language


@dataclass(frozen=True, slots=True)
class RecipientData:
    """One person to personalise for: a batch's recipient as the send store reads it, or a
    preview's or proof's sample (no message)."""

    supporter_id: int
    email: str
    first_name: str | None
    last_name: str | None
    message_id: int | None
    case_id: int
    wave_id: int | None


class Renderer:
    """One campaign's emails: its identity, and its kinds (`kinds`: `Campaign.kinds`)."""

    def __init__(
        self,
        settings: Settings,
        identity: SenderIdentity | None = None,
        templates_dir: Path | None = None,
        kinds: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.identity = identity or sender_identity(settings)
        directory = templates_dir or settings.templates_dir
        self.templates = Templates(directory, template_sources(kinds))
        self.kinds: Mapping[str, KindInfo] = MappingProxyType(
            campaign_kinds(self.templates.directory, kinds)
        )
        self.signer = TokenSigner(settings.secret_key)
        base = settings.public_base_url.rstrip("/")
        self._action_base = f"{base}/a/"
        self._action_base_html = _escaped_or_none(self._action_base)
        self._unsubscribe_base = f"{base}/unsubscribe/"
        self._unsubscribe_base_html = _escaped_or_none(self._unsubscribe_base)
        self._mailto_prefix = f"<mailto:{settings.unsubscribe_mailto}?subject=unsubscribe%20"
        self._variants: dict[VariantKey, Variant] = {}
        self._friend: dict[str, str] = {}

    def variant(
        self, kind: str, case: CaseContent, language: str, wave: WaveContent | None = None
    ) -> Variant:
        """The rendered, inlined variant; rendered once per key and then cached."""
        kind = str(kind)
        key = VariantKey(
            kind, case.slug, language, wave.id if wave else None, content_fingerprint(case, wave)
        )
        found = self._variants.get(key)
        if found is None:
            if kind not in self.kinds:
                raise TemplateProblem(
                    f"unknown email kind {kind!r} (known: {known_names(self.kinds)})"
                )
            found = self._variants[key] = self._render(key, case, wave)
        return found

    def recipient(self, variant: Variant, who: RecipientData) -> Recipient:
        """One recipient's substitutions, custom args and unsubscribe header (previews, proofs)."""
        return self.recipients(variant, (who,), who.case_id, who.wave_id)[0]

    def recipients(
        self,
        variant: Variant,
        rows: Iterable[RecipientData],
        case_id: int,
        wave_id: int | None,
    ) -> list[Recipient]:
        """Every recipient of one batch: substitutions, own custom args, unsubscribe header.

        Runs once per email sent (a million times a wave), so it is one flat
        loop: everything that depends only on the batch, the variant or the
        settings is worked out before it (or goes in the batch, see `batch`),
        and values that cannot need HTML escaping skip it.
        """
        tokens_for = self.signer.pair
        reply_for, language = self.signer.reply_for, variant.key.language
        reply_wave = variant.key.wave_id or 0  # as in the variant's own token
        unsubscribe_base, unsubscribe_base_html = (
            self._unsubscribe_base,
            self._unsubscribe_base_html,
        )
        action_base, action_base_html = self._action_base, self._action_base_html
        mailto, greeting_word = self._mailto_prefix, variant.greeting
        made: list[Recipient] = []
        append = made.append
        for who in rows:
            supporter, message = who.supporter_id, who.message_id
            action_token, unsubscribe_token = tokens_for(supporter, message, case_id, wave_id)
            first, last = who.first_name, who.last_name
            # Newlines or tabs in a name would break a subject line or a To header.
            first = " ".join(first.split()) if first else ""
            last = " ".join(last.split()) if last else ""
            full = f"{first} {last}" if first and last else first or last
            greeting = first or greeting_word
            unsubscribe_url = unsubscribe_base + unsubscribe_token
            action_url = action_base + action_token
            # Tokens are URL-safe base64, so only the configured base can need
            # escaping for the HTML part; it was escaped once in __init__, and when
            # it held nothing to escape the plain URL serves both parts.
            substitutions = tag_values(
                greeting,
                full or greeting,
                unsubscribe_url,
                unsubscribe_url
                if unsubscribe_base_html is None
                else unsubscribe_base_html + unsubscribe_token,
                action_url,
                action_url if action_base_html is None else action_base_html + action_token,
                reference_code(message, supporter),
            )
            # Each email's own Reply-To token names its message: a reply binds to it alone.
            substitutions[REPLY_TOKEN_TAG] = (
                variant.reply_token
                if message is None  # previews and proofs
                else reply_for(reply_wave, case_id, language, message)
            )
            args = (
                {"supporter_id": str(supporter)}
                if message is None  # previews and proofs
                else {"supporter_id": str(supporter), "message_id": str(message)}
            )
            headers = {"List-Unsubscribe": f"<{unsubscribe_url}>, {mailto}{unsubscribe_token}>"}
            append(fast_recipient(who.email or "", full or None, substitutions, args, headers))
        return made

    def batch(
        self,
        variant: Variant,
        recipients: Sequence[Recipient],
        send_key: str,
        categories: Sequence[str],
        custom_args: Mapping[str, str] = _NO_ARGS,
    ) -> OutgoingBatch:
        """The request for `recipients`; `custom_args` are those shared by all of them
        (`batch_args`), sent once and carried by every recipient's events, with this
        installation's id (events carrying another's are refused: sender.track.binding)."""
        return OutgoingBatch(
            send_key=send_key,
            sender=self.identity.sender,
            reply_to=variant.reply_to,
            subject=variant.subject,
            html=variant.html,
            text=variant.text,
            categories=tuple(categories),
            recipients=tuple(recipients),
            custom_args={INSTALLATION_ARG: self.settings.installation, **custom_args},
            headers={"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        )

    @property
    def variant_count(self) -> int:
        """How many rendered variants this renderer holds."""
        return len(self._variants)

    def friend(self, language: str) -> str:
        """The per-language word used when a supporter gave no first name."""
        if language not in self._friend:
            self._friend[language] = self.templates.translate(language, FRIEND).text
        return self._friend[language]

    def _render(self, key: VariantKey, case: CaseContent, wave: WaveContent | None) -> Variant:
        language = key.language
        values, fallbacks = case_values(case, language)
        writing = direction(language)
        base: dict[str, Any] = {
            "lang": language.replace("_", "-"),  # HTML wants BCP 47: pt-BR
            "dir": writing,
            "align": "right" if writing == "rtl" else "left",
            "brand": self.identity.brand,
            "kind": key.kind,
            "case": values,
        }
        missing: list[str] = []
        text_name, html_name = f"{key.kind}.txt", f"{key.kind}.html"
        heads: dict[str, dict[str, str]] = {}
        for part in ("subject", "preheader"):
            overrides = (wave.subjects if part == "subject" else wave.preheaders) if wave else {}
            heads[part] = {}
            for tags, recipient in (("text", TEXT_RECIPIENT), ("html", HTML_RECIPIENT)):
                if language in overrides:
                    value = _fill_merge_fields(overrides[language], tags, wave, part)
                else:
                    done = self.templates.render(
                        language, text_name, {**base, "recipient": recipient}, block=part
                    )
                    value, missing = done.text, [*missing, *done.missing]
                heads[part][tags] = " ".join(value.split())
        html = self.templates.render(
            language,
            html_name,
            {
                **base,
                "recipient": HTML_RECIPIENT,
                "subject": heads["subject"]["html"],
                "preheader": heads["preheader"]["html"],
            },
        )
        text = self.templates.render(language, text_name, {**base, "recipient": TEXT_RECIPIENT})
        missing += [*html.missing, *text.missing]
        missing += self.templates.translate(language, FRIEND).missing
        fallbacks += tuple(
            f"{language}: no translation for {msgid!r}; English used"
            for msgid in dict.fromkeys(missing)
        )
        reply = self.signer.reply(ReplyRef(key.wave_id or 0, case.id, language))
        return Variant(
            key=key,
            subject=heads["subject"]["text"],
            preheader=heads["preheader"]["text"],
            html=inline_css(html.text),
            text=_tidy_text(text.text),
            reply_to=Address(f"reply+{REPLY_TOKEN_TAG}@{self.identity.reply_domain}"),
            reply_token=reply,
            fallbacks=fallbacks,
            greeting=self.friend(language),
        )


# A few campaigns' renderers per process; past this many variants (edits pile
# up, each a new content fingerprint) a renderer starts afresh.
_KEPT: KeptValues[Renderer] = KeptValues(size=8)
MAX_KEPT_VARIANTS = 4096


def kept_renderer(
    settings: Settings,
    identity: SenderIdentity | None = None,
    kinds: Mapping[str, Any] | None = None,
) -> Renderer:
    """A Renderer made once per process for these inputs (sender.core.speedups.KeptValues).

    It renders each variant once: the key of a variant holds the fingerprint of
    the case and wave it is made from, so an edited text renders anew. The
    key here holds the settings, the identity, the kinds, and when a template
    file last changed.
    """
    key = hashlib.blake2b(
        repr((settings, identity, kinds, _templates_changed(settings))).encode(), digest_size=16
    ).digest()
    renderer = _KEPT.get(key, lambda: Renderer(settings, identity, kinds=kinds))
    if renderer.variant_count > MAX_KEPT_VARIANTS:
        _KEPT.forget(key)
        renderer = _KEPT.get(key, lambda: Renderer(settings, identity, kinds=kinds))
    return renderer


def _templates_changed(settings: Settings) -> int:
    directory = settings.templates_dir or DEFAULT_TEMPLATES_DIR
    return max((p.stat().st_mtime_ns for p in directory.rglob("*") if p.is_file()), default=0)


def case_values(case: CaseContent, language: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    """What templates read as `case.*` in `language`, and what fell back to English."""
    says, fallbacks = case_text(case.content, language, case.slug)
    values = {
        **says.as_json(),
        "authority_address": "\n".join(says.authority_address),
        "good_news": says.good_news or "",
        "slug": case.slug,
        "person": case.person,
        "country": case.country,
        "status": case.status,  # a good-news email says so when the case is resolved
        "image_url": case.image_url,
    }
    return values, fallbacks


_MERGE_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]+)\s*\}\}")


def _fill_merge_fields(template: str, tags: str, wave: WaveContent | None, part: str) -> str:
    """A wave's own subject or preheader, with `{{ first_name }}`-style merge fields."""
    table = TEXT_TAGS if tags == "text" else HTML_TAGS
    where = f"wave {wave.name if wave else '?'} {part}"

    def tag(match: re.Match[str]) -> str:
        try:
            return table[MergeField(match.group(1))]
        except ValueError:
            raise TemplateProblem(f"{where}: unknown merge field '{match.group(1)}'") from None

    filled = _MERGE_PLACEHOLDER.sub(tag, template)
    if "{{" in filled or "{%" in filled:
        raise TemplateProblem(f"{where}: only merge fields like {{{{ first_name }}}} are allowed")
    return filled


def inline_css(html: str) -> str:
    """Inline the layout's CSS; rules that cannot be inlined (@media) stay in <style>."""
    try:
        return str(
            Premailer(
                html,
                keep_style_tags=False,
                strip_important=False,
                disable_validation=True,
                allow_network=False,
                # Keep the width/height attributes the templates set on images:
                # Outlook needs them, and premailer would copy `width:100%` over.
                disable_basic_attributes=["width", "height"],
                cssutils_logging_level=logging.CRITICAL,
            ).transform()
        )
    except Exception as error:  # premailer raises lxml and cssutils errors as they come
        raise TemplateProblem(f"CSS inlining failed: {error}") from error


def _tidy_text(text: str) -> str:
    # Template blocks leave runs of blank lines; a plain-text reader wants one.
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def batch_args(case_id: int, wave_id: int | None, **extra: str) -> dict[str, str]:
    """The custom args every recipient of one batch shares: its case and wave, and more."""
    args = {"case_id": str(case_id)}
    if wave_id is not None:
        args["wave_id"] = str(wave_id)
    return {**args, **extra}


def _escaped_or_none(text: str) -> str | None:
    """The HTML form of `text`, or None when it is the same (most base URLs)."""
    escaped = html.escape(text)
    return None if escaped == text else escaped


__all__ = [
    "CaseContent",
    "RecipientData",
    "RecipientTags",
    "Renderer",
    "Variant",
    "VariantKey",
    "WaveContent",
    "inline_css",
    "personalise",
]
