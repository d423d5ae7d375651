"""Who a reply is from, and whether it may act for them (count as theirs, or stop their mail).

A From address is anyone's to write, so it alone proves nothing (issue 13: a forged
From with body STOP unsubscribed a supporter; one with a reply token for another case
was counted and exported as that supporter's solidarity message). A reply speaks for
a supporter only when one of these holds:

- **its token names that supporter's message**: every email carries its own Reply-To
  token (sender.render.renderer), naming the message and so its supporter, wave and
  case; only the supporter's mailbox ever saw it. The From must be that supporter's
  address too: a reply from another address (a forwarded email) goes to review;
- **SPF or DKIM passes for the From address's domain** (sender.track.mail_auth), for a
  token naming only the variant (previews, proofs, mail sent before 0.2) or no token.
  A STOP is then honoured; the reply counts only when the token's wave and case are
  those of the message that supporter got.

Anything else goes to review, marked possibly spoofed when the checks did not pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parseaddr

from sqlalchemy import select
from sqlalchemy.orm import Session

from sender.core.addresses import normalise_email
from sender.core.errors import InvalidInput
from sender.core.models import Message, Supporter
from sender.core.tokens import ReplyRef
from sender.track.mail_auth import MailAuth, domain_of_address

SPOOFED = "possibly spoofed"  # how the review list's problem starts for such a reply


@dataclass(frozen=True)
class ReplySender:
    """The supporter a reply is about, the message it binds to, and whether it may act."""

    supporter: Supporter | None
    message_id: int | None = None
    may_stop: bool = False  # provably theirs: a STOP in it is honoured
    counts: bool = False  # and about a message they got: counted as their reply
    problem: str | None = None  # why it may not, for the review list


def reply_sender(
    session: Session, from_value: str | None, ref: ReplyRef | None, auth: MailAuth
) -> ReplySender:
    """The reply's sender, bound by its per-recipient token or by SPF/DKIM; never raises."""
    by_address, who_problem = supporter_by_address(session, from_value)
    domain = domain_of_address(from_value)
    spoofed = None if auth.passes_for(domain) else _spoofed(domain, auth)
    if ref is not None and ref.message_id is not None:
        return _by_message_token(session, by_address, ref, spoofed)
    if by_address is None:
        return ReplySender(None, problem=who_problem)
    if spoofed is not None:
        return ReplySender(by_address, problem=spoofed)
    if ref is None:
        return ReplySender(by_address, may_stop=True)  # nothing to count it for
    message = session.execute(
        select(Message.id, Message.case_id).where(
            Message.wave_id == ref.wave_id, Message.supporter_id == by_address.id
        )
    ).one_or_none()
    if message is None or message.case_id != ref.case_id:
        return ReplySender(
            by_address,
            may_stop=True,
            problem=f"the reply token is for wave {ref.wave_id}, case {ref.case_id}: "
            "not a message this supporter was sent",
        )
    return ReplySender(by_address, message.id, may_stop=True, counts=True)


def _by_message_token(
    session: Session, by_address: Supporter | None, ref: ReplyRef, spoofed: str | None
) -> ReplySender:
    message = session.get(Message, ref.message_id)
    if message is None or (message.wave_id, message.case_id) != (ref.wave_id, ref.case_id):
        return ReplySender(by_address, problem="the reply token names no message we sent")
    owner = session.get(Supporter, message.supporter_id)
    if owner is None or by_address is None or owner.id != by_address.id:
        # Forwarded, or a second address of theirs: a person decides, nothing acts.
        why = "sent from another address than the one its reply token was sent to"
        return ReplySender(owner, message.id, problem=f"{spoofed}; {why}" if spoofed else why)
    return ReplySender(owner, message.id, may_stop=True, counts=True)


def _spoofed(domain: str | None, auth: MailAuth) -> str:
    checks = f"SPF {auth.spf_text}, DKIM {auth.dkim_text}"
    return f"{SPOOFED}: neither SPF nor DKIM passes for {domain or 'the sender'} ({checks})"


def supporter_by_address(
    session: Session, from_value: str | None
) -> tuple[Supporter | None, str | None]:
    """The supporter whose address the From names, or why there is none."""
    address = parseaddr(from_value or "")[1]
    if not address:
        return None, "no sender address"
    try:
        normal = normalise_email(address)
    except InvalidInput as error:
        return None, f"sender address not valid: {error}"
    supporter = session.scalar(select(Supporter).where(Supporter.email == normal))
    return supporter, None if supporter else "no supporter with the sender's address"
