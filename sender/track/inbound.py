"""Inbound replies: from a stored raw form to a matched, classified Reply row.

The webhook stores first (sendgrid drops mail it cannot deliver to us), so
everything here works on what was stored and never loses it: a reply that
cannot be understood is marked for review with the reason, not discarded.

A reply is matched by the signed token in its reply-to address
(`reply+TOKEN@inbound_domain`: every email's own, naming its message, wave, case
and language) and the sender's From address; it counts for a supporter, or stops
their mail, only when sender.track.reply_sender trusts it (the token names their
message, or SPF or DKIM passes for the From domain). In raw mode the token may be
only in the SMTP envelope SendGrid posts beside the email.

A mail to the List-Unsubscribe mailto address (`unsubscribe <token>` in its
subject) is no reply: the signed unsubscribe token names the supporter, who
is unsubscribed at once. Quoted history is cut in sender.track.quoting.
"""

from __future__ import annotations

import codecs
import json
import re
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.message import EmailMessage
from email.parser import BytesParser, HeaderParser
from email.policy import default as default_policy
from email.utils import getaddresses, parseaddr
from typing import Any

from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.errors import InvalidInput, NotFound
from sender.core.models import Reply
from sender.core.tokens import ReplyRef, TokenSigner
from sender.core.vocabulary import ActionKind, ReplyStatus
from sender.ops import metrics
from sender.track.actions import REPLY_SOURCE, new_action, record_action, reply_key
from sender.track.mail_auth import read_auth
from sender.track.quoting import strip_quoted, strip_quoted_html
from sender.track.reply_sender import reply_sender
from sender.track.unsubscribe import token_supporter, unsubscribe

_AUTO_SUBJECTS = re.compile(
    r"^\s*(?:(?:re|aw|rv|tr|fw|fwd)\s*:\s*)*(?:"
    r"out of (?:the )?office|automatic reply|auto[- ]?reply|autoreply|away from (?:the )?office"
    r"|réponse automatique|reponse automatique|absence|absent du bureau|message d'absence"
    r"|respuesta automática|respuesta automatica|fuera de la oficina|ausencia"
    r"|رد تلقائي|الرد التلقائي|خارج المكتب"
    r")",
    re.IGNORECASE,
)
# The subject sender.render.renderer puts in the List-Unsubscribe mailto.
_UNSUBSCRIBE_SUBJECT = re.compile(r"^\s*unsubscribe\s+(\S+)\s*$", re.IGNORECASE)
MAILTO_SOURCE = "mailto"  # suppressions.source of an unsubscribe by mail
_AUTO_PRECEDENCE = frozenset({"bulk", "auto_reply", "junk"})
_STOP_WORDS = frozenset(
    {
        # en
        "stop",
        "unsubscribe",
        "unsubscribe me",
        "remove me",
        "opt out",
        "please unsubscribe me",
        # es
        "baja",
        "darme de baja",
        "dar de baja",
        "dame de baja",
        "cancelar suscripción",
        "cancelar suscripcion",
        # fr
        "désabonner",
        "me désabonner",
        "désabonnez moi",
        "désabonnement",
        "désinscrire",
        "me désinscrire",
        "désinscription",
        "arrêt",
        # ar
        "إلغاء الاشتراك",
        "الغاء الاشتراك",
        "ألغ الاشتراك",
        "إيقاف",
        "توقف",
    }
)
# Courtesy around a request ("Baja, por favor", "STOP thanks") does not change it.
_COURTESY = frozenset(
    [
        "please",
        "pls",
        "thanks",
        "thank",
        "you",
        "merci",
        "svp",
        "s",
        "il",
        "vous",
        "plaît",
        "plait",
        "gracias",
        "por",
        "favor",
        "شكرا",
        "شكراً",
        "من",
        "فضلك",
    ]
)
_STOP_MAX_CHARS = 120  # a longer message that mentions "stop" is solidarity, not a request
_REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|aw|rv|tr|fw|fwd|rép|réf)\s*:\s*)+", re.IGNORECASE)


@dataclass(frozen=True)
class Mail:
    """What one inbound email says, whatever form sendgrid delivered it in."""

    from_value: str | None
    to_values: tuple[str, ...]
    subject: str | None
    headers: EmailMessage
    text: str | None
    problems: tuple[str, ...] = field(default=())
    html: str | None = None  # read only when there is no text part


@dataclass(frozen=True)
class ReplyOutcome:
    status: ReplyStatus
    problem: str | None = None


def parse_reply(
    session: Session,
    reply: Reply,
    signer: TokenSigner,
    inbound_domain: str,
    now: datetime,
    unsubscribe_mailto: str = "",
) -> ReplyOutcome:
    """Classify `reply` and fill its row; records actions and unsubscribes as it goes."""
    mail = read_mail(reply)
    reply.subject = _clip(mail.subject, 2000)
    reply.from_email = _clip(parseaddr(mail.from_value or "")[1] or None, 320)
    reply.parsed_at = now
    ref, token_problem = _find_reply_ref(mail.to_values, signer, inbound_domain)
    who = reply_sender(session, mail.from_value, ref, read_auth(_fields(reply)))
    supporter = who.supporter
    language = ref.language if ref else (supporter.language if supporter else None)
    reply.language = language
    reply.body = reply_words(mail, language or "en")
    reply.supporter_id = supporter.id if supporter else None
    reply.case_id = ref.case_id if ref else None
    reply.wave_id = ref.wave_id if ref else None

    by_mail = _UNSUBSCRIBE_SUBJECT.match(mail.subject or "")
    if by_mail and _addressed_to(mail.to_values, unsubscribe_mailto):
        return _unsubscribe_by_mail(session, reply, by_mail.group(1), signer, now)
    if mail.problems:
        return _mark(reply, ReplyOutcome(ReplyStatus.REVIEW, "; ".join(mail.problems)))
    if is_auto_reply(mail):
        return _mark(reply, ReplyOutcome(ReplyStatus.AUTO_REPLY))
    if supporter is not None and asks_to_stop(reply.body, mail.subject):
        if not who.may_stop:  # a forged From must not stop anyone's mail: a person looks
            return _mark(reply, ReplyOutcome(ReplyStatus.REVIEW, f"asks to stop; {who.problem}"))
        unsubscribe(session, supporter, source="reply", now=now)
        return _mark(reply, ReplyOutcome(ReplyStatus.UNSUBSCRIBE))
    problem = who.problem or token_problem
    if problem is None and not reply.body:
        problem = "the reply has no text"
    if problem is not None or supporter is None or ref is None or not who.counts:
        return _mark(reply, ReplyOutcome(ReplyStatus.REVIEW, problem))
    record_reply_action(session, reply, supporter.id, ref.case_id, ref.wave_id, who.message_id, now)
    # Counted, but staff should know a photo or document did not come through.
    return _mark(reply, ReplyOutcome(ReplyStatus.MATCHED, _attachment_note(reply.raw_form)))


def _fields(reply: Reply) -> dict[str, str]:
    fields = (reply.raw_form or {}).get("fields", {})
    return fields if isinstance(fields, dict) else {}


def _unsubscribe_by_mail(
    session: Session, reply: Reply, token: str, signer: TokenSigner, now: datetime
) -> ReplyOutcome:
    """A mail to the List-Unsubscribe mailto: the token in its subject unsubscribes at once.

    The subject is the one our header carries (`unsubscribe <token>`); the token
    is the credential, so a forged or edited one changes nothing and a person looks.
    (A bare "unsubscribe" has no token and is read like any STOP reply.)
    """
    found = token_supporter(session, signer, token)
    if found is None:
        problem = "mail to the unsubscribe address without a valid token in its subject"
        return _mark(reply, ReplyOutcome(ReplyStatus.REVIEW, problem))
    supporter, ref = found
    reply.supporter_id, reply.case_id, reply.wave_id = supporter.id, ref.case_id, ref.wave_id
    reply.language = supporter.language
    unsubscribe(session, supporter, source=MAILTO_SOURCE, now=now)
    return _mark(reply, ReplyOutcome(ReplyStatus.UNSUBSCRIBE))


def _addressed_to(to_values: tuple[str, ...], address: str) -> bool:
    wanted = address.strip().lower()
    return bool(wanted) and any(
        found.lower() == wanted for _, found in getaddresses(list(to_values))
    )


def read_mail(reply: Reply) -> Mail:
    """The stored email: from the raw MIME when sendgrid sent it, else from the parsed form."""
    form: dict[str, Any] = reply.raw_form or {}
    fields: dict[str, str] = form.get("fields", {})
    problems = [
        why if name == "form" else f"field {name!r}: {why}"
        for name, why in form.get("undecoded", {}).items()
    ]
    problems += _charset_problems(fields.get("charsets"))
    if reply.raw_email is not None:
        # Raw mode still posts the SMTP envelope beside the email: a forwarder or a
        # list may have rewritten To, never the envelope's recipient.
        return _mail_from_mime(reply.raw_email, _envelope_to(fields, problems), problems)
    return _mail_from_fields(fields, problems)


def reply_words(mail: Mail, language: str) -> str:
    """The reply's own words, from its text part, else from its HTML part."""
    if mail.text and mail.text.strip():  # a blank text part beside real HTML is no reply
        return strip_quoted(mail.text, language)
    return strip_quoted_html(mail.html or "", language)


def is_auto_reply(mail: Mail) -> bool:
    headers = mail.headers
    auto_submitted = str(headers.get("Auto-Submitted", "no")).strip().lower()
    if auto_submitted and auto_submitted != "no":
        return True
    if headers.get("X-Autoreply") is not None or headers.get("X-Autorespond") is not None:
        return True
    if str(headers.get("Precedence", "")).strip().lower() in _AUTO_PRECEDENCE:
        return True
    return bool(mail.subject and _AUTO_SUBJECTS.match(mail.subject))


def asks_to_stop(body: str | None, subject: str | None) -> bool:
    """True for a reply whose whole point is "stop" in any of the campaign languages."""
    text = (body or "").strip()
    if text:
        first_line = text.splitlines()[0]
        return len(text) <= _STOP_MAX_CHARS and _request(first_line) in _STOP_WORDS
    return _request(_REPLY_PREFIX.sub("", subject or "")) in _STOP_WORDS


def _mail_from_mime(raw: bytes, envelope_to: list[str], problems: list[str]) -> Mail:
    message = BytesParser(policy=default_policy).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    problems += _defects(message)
    text: str | None = None
    html: str | None = None
    try:
        part = message.get_body(preferencelist=("plain", "html"))
        if part is not None:
            assert isinstance(part, EmailMessage)
            content = part.get_content()
            if part.get_content_subtype() == "plain":
                text = content
            else:
                html = content
    except (LookupError, ValueError, KeyError) as error:
        problems.append(f"body cannot be decoded: {error}")
    headers = [str(message.get(name, "")) for name in ("To", "Cc", "Delivered-To")]
    recipients = [*headers, *envelope_to]
    return _checked(
        Mail(
            from_value=_header_text(message, "From"),
            to_values=tuple(value for value in recipients if value),
            subject=_header_text(message, "Subject"),
            headers=message,
            text=text,
            html=html,
        ),
        problems,
    )


def _mail_from_fields(fields: dict[str, str], problems: list[str]) -> Mail:
    headers = HeaderParser(policy=default_policy).parsestr(fields.get("headers", ""))
    assert isinstance(headers, EmailMessage)
    problems += _defects(headers)
    recipients = [fields.get("to", ""), fields.get("cc", ""), *_envelope_to(fields, problems)]
    return _checked(
        Mail(
            from_value=fields.get("from") or _header_text(headers, "From"),
            to_values=tuple(value for value in recipients if value),
            subject=fields.get("subject") or _header_text(headers, "Subject"),
            headers=headers,
            text=fields.get("text") or None,
            html=fields.get("html") or None,
        ),
        problems,
    )


def _checked(mail: Mail, problems: list[str]) -> Mail:
    if not mail.from_value:
        problems.append("missing From address")
    if not mail.to_values:
        problems.append("missing To address")
    return replace(mail, problems=tuple(problems))


def _charset_problems(charsets: str | None) -> list[str]:
    if charsets is None:
        return []
    try:
        named = json.loads(charsets)
    except json.JSONDecodeError:
        return ["charsets field is not JSON"]
    if not isinstance(named, dict):
        return ["charsets field is not a JSON object"]
    problems = []
    for name, charset in sorted(named.items()):
        try:
            codecs.lookup(str(charset))
        except LookupError:
            problems.append(f"unknown charset {charset!r} for field {name!r}")
    return problems


def _envelope_to(fields: dict[str, str], problems: list[str]) -> list[str]:
    if "envelope" not in fields:
        return []
    try:
        envelope = json.loads(fields["envelope"])
    except json.JSONDecodeError:
        problems.append("envelope field is not JSON")
        return []
    recipients = envelope.get("to", []) if isinstance(envelope, dict) else []
    return [str(value) for value in recipients] if isinstance(recipients, list) else []


def _defects(message: EmailMessage) -> list[str]:
    found: list[str] = []
    for part in message.walk():
        found += [f"broken MIME: {type(defect).__name__}" for defect in part.defects]
    return sorted(set(found))


def _header_text(message: EmailMessage, name: str) -> str | None:
    try:
        value = message.get(name)
    except (ValueError, IndexError, TypeError):  # the header parser gives up on some junk
        return None
    return str(value) if value is not None else None


def _find_reply_ref(
    to_values: tuple[str, ...], signer: TokenSigner, inbound_domain: str
) -> tuple[ReplyRef | None, str | None]:
    domain = inbound_domain.lower()
    tokens = [
        local.split("+", 1)[1]
        for _, address in getaddresses(list(to_values))
        for local, _, host in [address.rpartition("@")]
        if host.lower() == domain and local.lower().startswith("reply+")
    ]
    if not tokens:
        return None, "no reply token in the recipient addresses"
    for token in tokens:
        try:
            return signer.read_reply(token), None
        except InvalidInput:
            continue
    return None, "reply token is not valid"


def record_reply_action(
    session: Session,
    reply: Reply,
    supporter_id: int,
    case_id: int,
    wave_id: int | None,
    message_id: int | None,
    now: datetime,
) -> bool:
    """Count `reply` as the supporter's reply to the case: by the parser when it matches,
    by staff assigning it from the review list. Once per reply; True when new."""
    action = new_action(
        ActionKind.REPLIED,
        source=REPLY_SOURCE,
        key=reply_key(reply.id),
        occurred_at=reply.received_at or now,
        supporter_id=supporter_id,
        case_id=case_id,
        wave_id=wave_id,
        message_id=message_id,
    )
    return record_action(session, action)


def _attachment_note(raw_form: dict[str, Any] | None) -> str | None:
    files = (raw_form or {}).get("files", [])
    if not files:
        return None
    listed = ", ".join(
        f"{item.get('filename') or item.get('field')} ({item.get('size', 0) / 1048576:.1f} MB)"
        for item in files
    )
    return f"attachment{'s' if len(files) > 1 else ''} not kept: {listed}"


def _mark(reply: Reply, outcome: ReplyOutcome) -> ReplyOutcome:
    reply.status = outcome.status
    reply.problem = outcome.problem
    return outcome


def _words(text: str) -> str:
    """Case-, accent-form- and punctuation-insensitive phrase for keyword lookup."""
    text = unicodedata.normalize("NFC", text).casefold().replace("-", " ")
    kept = "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in text)
    return " ".join(kept.split())


def _request(text: str) -> str:
    return " ".join(word for word in _words(text).split() if word not in _COURTESY)


def _clip(value: str | None, limit: int) -> str | None:
    return value[:limit] if value else value


def parse_stored_reply(engine: Engine, settings: Settings, reply_id: int, now: datetime) -> str:
    """The parse job: one transaction; a crash still leaves the reply in the review list."""
    signer = TokenSigner(settings.secret_key)
    try:
        with session_scope(engine) as session:
            reply = session.get(Reply, reply_id)
            if reply is None:
                raise NotFound(f"reply {reply_id} does not exist")
            if reply.status != ReplyStatus.RECEIVED:
                return str(reply.status)  # parsed already: a retried task is a no-op
            outcome = parse_reply(
                session,
                reply,
                signer,
                settings.inbound_domain,
                now,
                unsubscribe_mailto=settings.unsubscribe_mailto,
            )
            status = str(outcome.status)
        metrics.REPLIES.labels(status=status).inc()  # after the commit: counted once
        return status
    except NotFound:
        raise
    except Exception as error:  # the reply must reach the review list whatever broke
        with session_scope(engine) as session:
            session.execute(
                update(Reply)
                .where(Reply.id == reply_id)
                .values(
                    status=ReplyStatus.REVIEW,
                    problem=f"parser failed: {type(error).__name__}: {error}"[:2000],
                    parsed_at=now,
                )
            )
        metrics.REPLIES.labels(status=str(ReplyStatus.REVIEW)).inc()
        return str(ReplyStatus.REVIEW)
