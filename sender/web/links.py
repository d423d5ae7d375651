"""Links in every email: the action link and the unsubscribe link.

The signed token is the credential, so these pages need no login, no cookie
and no CSRF token: a forged or edited token fails its signature and gets a
neutral page that says nothing about who or what it named.

- GET  /a/<token>              records a click (a person's or a machine's,
                               sender.track.clicks), then redirects to the case's
                               action page, or shows the built-in one
- GET  /a/<token>/x            the hidden honeypot link: only machines fetch it
- POST /a/<token>/sent         "I have sent my letter": the strongest action
- GET  /unsubscribe/<token>    a confirmation page
- POST /unsubscribe/<token>    RFC 8058 one-click (or the page's button)

A token without a message id comes only from a staff preview (`campaign
preview --email`): it names a real supporter but no email that supporter was
sent. It shows the pages the supporter would see and changes nothing: no
click, visit or letter is recorded, and its unsubscribe and "sent" POSTs get
the invalid-link page. Only tokens of an email actually sent (their message
id names a message to that supporter for that case) act (docs/SECURITY.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, redirect, render_template, request
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from sender.core.db import session_scope
from sender.core.errors import InvalidInput
from sender.core.languages import FALLBACK_LANGUAGE
from sender.core.models import Case, Message, Supporter
from sender.core.tokens import MessageRef, TokenSigner
from sender.core.vocabulary import ActionKind, LinkTarget
from sender.ops import metrics
from sender.render.case_text import case_text
from sender.render.identity import sender_identity
from sender.track.actions import LINK_SOURCE, link_key, new_action, record_action
from sender.track.clicks import HONEYPOT_SUFFIX, Windows
from sender.track.link_clicks import LinkVisit, record_visit
from sender.track.unsubscribe import unsubscribe
from sender.web import context
from sender.web.page_text import LANGUAGES, direction, html_lang, language_of, page_text

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
bp = Blueprint("links", __name__, template_folder=str(TEMPLATES))


@dataclass(frozen=True)
class VerifiedLink:
    """A link's token, verified and checked against the database: whom and what it names."""

    supporter: Supporter
    case: Case
    ref: MessageRef
    language: str
    link_key: str  # one per message (or per token when it names no message)

    @property
    def preview(self) -> bool:
        """A staff preview's token: for looking at, never for acting."""
        return self.ref.message_id is None


@bp.after_request
def _private(response: Response) -> Response:
    # Token URLs must not be cached, indexed or leaked to the next site.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


@bp.get("/a/<token>")
def action(token: str) -> BaseResponse | tuple[str, int]:
    with session_scope(context.engine()) as session:
        recipient = _recipient(session, token, _signer().read_action)
        if recipient is None:
            return _invalid()
        case = recipient.case
        if not recipient.preview:
            _visit(session, recipient, LinkTarget.ACTION, case.action_url)
        if case.action_url:
            return redirect(case.action_url, 302)
        return _page("web/action.html", recipient.language, case=_case_text(case, recipient))


@bp.get(f"/a/<token>{HONEYPOT_SUFFIX}")
def honeypot(token: str) -> Response | tuple[str, int]:
    """Hidden in every HTML email where no person sees or reaches it (docs/TRACKING.md)."""
    with session_scope(context.engine()) as session:
        recipient = _recipient(session, token, _signer().read_action)
        if recipient is None:
            return _invalid()
        if not recipient.preview:
            _visit(session, recipient, LinkTarget.HONEYPOT, None)
    return Response("\n", 200, mimetype="text/plain")


@bp.post("/a/<token>/sent")
def letter_sent(token: str) -> tuple[str, int]:
    with session_scope(context.engine()) as session:
        recipient = _recipient(session, token, _signer().read_action)
        if recipient is None or recipient.preview:
            return _invalid()
        _record(session, recipient, ActionKind.LETTER_SENT, None)
        return _page("web/thanks.html", recipient.language)


@bp.get("/unsubscribe/<token>")
def unsubscribe_page(token: str) -> tuple[str, int]:
    with session_scope(context.engine()) as session:
        recipient = _recipient(session, token, _signer().read_unsubscribe)
        if recipient is None:
            return _invalid()
        if not recipient.preview:
            _visit(session, recipient, LinkTarget.UNSUBSCRIBE, None)
        return _page("web/unsubscribe.html", recipient.language)


@bp.post("/unsubscribe/<token>")
def unsubscribe_now(token: str) -> Response | tuple[str, int]:
    with session_scope(context.engine()) as session:
        recipient = _recipient(session, token, _signer().read_unsubscribe)
        if recipient is None or recipient.preview:
            return _invalid()
        one_click = request.form.get("List-Unsubscribe") == "One-Click"
        unsubscribe(
            session,
            recipient.supporter,
            source="one-click" if one_click else "unsubscribe-page",
            now=_now(),
        )
    if one_click:
        # RFC 8058: the mailbox provider posts in the background; a plain 200 is all it reads.
        return Response("unsubscribed\n", 200, mimetype="text/plain")
    return _page("web/unsubscribed.html", recipient.language)


def _recipient(
    session: Session, token: str, read: Callable[[str], MessageRef]
) -> VerifiedLink | None:
    """The supporter, case and message a token names, or None when anything disagrees."""
    try:
        ref = read(token)
    except InvalidInput:
        return None
    supporter = session.get(Supporter, ref.supporter_id)
    case = session.get(Case, ref.case_id)
    if supporter is None or case is None or supporter.forgotten_at is not None:
        return None
    language = supporter.language
    if ref.message_id is not None:
        message = session.get(Message, ref.message_id)
        if message is None or (message.supporter_id, message.case_id) != (supporter.id, case.id):
            return None
        language = message.language
        link_key = str(message.id)
    else:
        link_key = "t" + hashlib.sha256(token.encode()).hexdigest()[:32]
    return VerifiedLink(supporter, case, ref, language, link_key)


def _visit(session: Session, recipient: VerifiedLink, target: LinkTarget, url: str | None) -> None:
    """Every fetch of a link is kept and classified; the IP address is not read."""
    visit = LinkVisit(
        link_key=recipient.link_key,
        target=target,
        method=request.method,
        user_agent=request.headers.get("User-Agent"),
        at=_now(),
        supporter_id=recipient.supporter.id,
        case_id=recipient.case.id,
        wave_id=recipient.ref.wave_id,
        message_id=recipient.ref.message_id,
        url=url,
    )
    recorded = record_visit(session, visit, Windows.from_settings(context.settings()))
    if recorded.kind is not None:
        metrics.LINK_ACTIONS.labels(kind=str(recorded.kind)).inc()


def _record(session: Session, recipient: VerifiedLink, kind: ActionKind, url: str | None) -> None:
    """One action per message and kind, however often the link is followed."""
    metrics.LINK_ACTIONS.labels(kind=str(kind)).inc()
    action = new_action(
        kind,
        source=LINK_SOURCE,
        key=link_key(recipient.link_key, kind),
        occurred_at=_now(),
        supporter_id=recipient.supporter.id,
        case_id=recipient.case.id,
        wave_id=recipient.ref.wave_id,
        message_id=recipient.ref.message_id,
        url=url,
    )
    record_action(session, action)


def _case_text(case: Case, recipient: VerifiedLink) -> dict[str, Any]:
    """The case in the message's language (English when it has none), with that language
    marked: the page's own words may be in another one."""
    text, fallbacks = case_text(case.content, recipient.language, case.slug)
    language = FALLBACK_LANGUAGE if fallbacks else recipient.language
    return {
        **text.as_json(),
        "person": case.person,
        "image_url": case.image_url,
        "lang": html_lang(language),
        "dir": direction(language),
    }


def _page(template: str, language: str, status: int = 200, **values: Any) -> tuple[str, int]:
    brand = sender_identity(context.settings()).brand
    words = language_of(language)  # the pages' words fall back to English
    html = render_template(
        template,
        lang=html_lang(words),
        dir=direction(words),
        t=page_text(words),
        org_name=brand["org_name"],
        org_address=brand["org_address"],
        brand=brand,
        token_path=request.path.removesuffix("/sent"),
        **values,
    )
    return html, status


def _invalid() -> tuple[str, int]:
    """The same page for every bad token: it must not reveal what was wrong."""
    metrics.INVALID_LINKS.inc()
    language = request.accept_languages.best_match(LANGUAGES) or "en"
    return _page("web/invalid.html", language, status=400)


def _signer() -> TokenSigner:
    return TokenSigner(context.settings().secret_key)


def _now() -> datetime:
    return context.clock().now()
