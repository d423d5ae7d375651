"""Which supporter a provider event may change: only the one we sent that message to.

A valid signature proves that the provider sent a batch of events, not that the
custom args in it are ours: any other system (or a second installation) on the
same provider account can put `message_id=1180` or `supporter_id=5` in its own
mail, and its events come back to our webhook signed. So an event takes effect
on a supporter only when all of these hold:

- its `installation_id`, when present, is ours (absent only on mail sent before
  the arg existed);
- its `message_id` names a message we sent, to the address the event is about
  (compared as email hashes, the form every table keeps);
- its `send_key` names the batch that message went out in;
- its `supporter_id`, when present, is that message's supporter.

An event that names no message and no supporter (an asynchronous bounce, which
carries no custom args) is about its address only: it may suppress that address,
as before. Everything else is refused: kept raw in rejected_events, counted, shown
to ops, and it changes no supporter, message or report.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from sender.core.models import Batch, Message, Supporter
from sender.core.vocabulary import RejectionKind
from sender.track.providers.base import NormalisedEvent, Rejection


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A message as its events must match it: its recipient's hash and its batch's key."""

    id: int
    supporter_id: int
    case_id: int
    wave_id: int
    language: str
    email_hash: str
    send_key: str | None


@dataclass(frozen=True, slots=True)
class Binding:
    """What an event may touch: its message (bound), its address only, or nothing."""

    message: SentMessage | None = None
    refusal: Rejection | None = None


ADDRESS_ONLY = Binding()


def sent_messages(session: Session, events: Iterable[NormalisedEvent]) -> dict[int, SentMessage]:
    """The messages the events name, with recipient hash and send key: one query per batch."""
    wanted = {e.message_id for e in events if e.message_id is not None}
    if not wanted:
        return {}
    rows = session.execute(
        select(
            Message.id,
            Message.supporter_id,
            Message.case_id,
            Message.wave_id,
            Message.language,
            Supporter.email_hash,
            Batch.send_key,
        )
        .join(Supporter, Supporter.id == Message.supporter_id)
        .outerjoin(Batch, Batch.id == Message.batch_id)
        .where(Message.id.in_(wanted))
    )
    return {row.id: SentMessage(*row) for row in rows}


def bind(event: NormalisedEvent, sent: Mapping[int, SentMessage], installation: str) -> Binding:
    """The event's binding to what we sent; never raises."""
    if event.installation is not None and not _same(event.installation, installation):
        return _refused(RejectionKind.FOREIGN, "installation_id is another installation's")
    if event.message_id is None:
        if event.supporter_id is not None:
            return _refused(RejectionKind.MISMATCHED, "supporter_id without a message_id")
        return ADDRESS_ONLY
    message = sent.get(event.message_id)
    if message is None:
        return _refused(RejectionKind.MISMATCHED, "message_id names no message we sent")
    if event.email_hash is None or not _same(event.email_hash, message.email_hash):
        return _refused(RejectionKind.MISMATCHED, "email is not the recipient of message_id")
    if (
        event.batch_key is None
        or message.send_key is None
        or not _same(event.batch_key, message.send_key)
    ):
        return _refused(
            RejectionKind.MISMATCHED, "send_key is not the batch message_id went out in"
        )
    if event.supporter_id is not None and event.supporter_id != message.supporter_id:
        return _refused(RejectionKind.MISMATCHED, "supporter_id is not message_id's supporter")
    return Binding(message=message)


def _refused(kind: RejectionKind, reason: str) -> Binding:
    return Binding(refusal=Rejection(kind, reason))


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
