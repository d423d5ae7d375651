"""Erasure ("forget"): a supporter's personal data goes, the row and the counts stay.

The supporter keeps its id, so totals and assignments still add up; the
address lives on only as a hash in the suppression list, so a later import
of the same address is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, or_, select, update

from sender.core.addresses import email_hash, normalise_email
from sender.core.clock import Clock, SystemClock
from sender.core.db import session_scope
from sender.core.errors import NotFound
from sender.core.models import Event, Reply, Supporter, Suppression
from sender.core.vocabulary import SupporterStatus, SuppressionReason


@dataclass(frozen=True)
class ForgetResult:
    supporter_id: int
    already_forgotten: bool

    def audit_after(self) -> str:
        """The audit log's short form: the id only, never what was erased."""
        return f"supporter #{self.supporter_id} status=forgotten"

    def audit_detail(self) -> str:
        again = ", already forgotten" if self.already_forgotten else ""
        return f"1 supporter erased (#{self.supporter_id}){again}"


def forget_supporter(engine: Engine, email: str, clock: Clock | None = None) -> ForgetResult:
    """Erase a supporter's personal data; keep the id, counts and a suppression by hash."""
    address = normalise_email(email)
    digest = email_hash(address)
    now = (clock or SystemClock()).now()
    with session_scope(engine) as session:
        supporter = session.scalar(select(Supporter).where(Supporter.email_hash == digest))
        if supporter is None:
            # Not the address: the audit log keeps a failed erasure's message.
            raise NotFound("no supporter has that address")
        already = supporter.status == SupporterStatus.FORGOTTEN
        supporter.email = None
        supporter.first_name = None
        supporter.last_name = None
        supporter.country = None
        supporter.case_preference = None
        supporter.consent = False
        supporter.status = SupporterStatus.FORGOTTEN
        supporter.forgotten_at = supporter.forgotten_at or now
        suppression = session.scalar(select(Suppression).where(Suppression.email_hash == digest))
        if suppression is None:
            session.add(
                Suppression(email_hash=digest, reason=SuppressionReason.FORGOTTEN, source="forget")
            )
        else:
            suppression.reason = SuppressionReason.FORGOTTEN
        # Replies and raw provider events may quote the address or the person's words.
        session.execute(
            update(Reply)
            .where(Reply.supporter_id == supporter.id)
            .values(from_email=None, subject=None, body=None, raw_form={}, raw_email=None)
        )
        session.execute(
            update(Event)
            .where(or_(Event.supporter_id == supporter.id, Event.email_hash == digest))
            .values(raw={})
        )
        return ForgetResult(supporter.id, already)
