"""Staff's hand in a subject test: picking the winner before the rule does.

The rule itself, and the remainder it sends, are the tick's
(sender.send.subject_tests); a pick only records the decision, and the next
tick sends the remainder with it, as it would after the rule.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from sender.campaign.campaigns import require_open, resolve_campaign
from sender.core.db import session_scope
from sender.core.errors import CampaignError, InvalidInput
from sender.core.models import SubjectTest
from sender.core.subject_test import SubjectTestSpec
from sender.send import store as repo
from sender.send.subject_tests import Verdict, record_decision
from sender.staff import audit
from sender.staff.actions import What


def pick(
    engine: Engine,
    name: str,
    variant: str,
    now: datetime,
    actor: audit.Actor,
    campaign: str | None = None,
) -> str:
    """Record `variant` as the wave's winner while its test runs; InvalidInput otherwise.

    Either way the audit log has a row: done in the transaction that stores the
    winner, failed (with the reason) in its own, for the CLI and the workspace alike.
    """
    try:
        return _pick(engine, name, variant, now, actor, campaign)
    except CampaignError as error:
        audit.record_now(
            engine,
            actor,
            What.WAVE_PICK,
            f"wave {name}",
            outcome=audit.Outcome.FAILED,
            detail=str(error),
            campaign_id=_campaign_id(engine, campaign),
        )
        raise


def _campaign_id(engine: Engine, campaign: str | None) -> int | None:
    try:
        with session_scope(engine) as session:
            return resolve_campaign(session, campaign).id
    except CampaignError:
        return None


def _pick(
    engine: Engine,
    name: str,
    variant: str,
    now: datetime,
    actor: audit.Actor,
    campaign: str | None,
) -> str:
    by = actor.name
    with session_scope(engine) as session:
        target = require_open(resolve_campaign(session, campaign))
        wave = repo.wave_by_name(session, target.id, name)
        declared = SubjectTestSpec.from_json(wave.subject_test)
        if declared is None:
            raise InvalidInput(f"wave {name} runs no subject test")
        if variant not in declared.names:
            raise InvalidInput(
                f"wave {name} has no variant {variant!r} ({', '.join(declared.names)})"
            )
        state = session.get(SubjectTest, wave.id)
        if state is None:
            raise InvalidInput(f"wave {name}: its test share is not sent yet; pick after it is")
        verdict = Verdict(variant, True, f"picked by {by}")
        if not record_decision(session, wave.id, verdict, by, now):
            raise InvalidInput(
                f"wave {name}: the test is decided already ({state.winner}: {state.reason})"
            )
        audit.record(
            session,
            actor,
            What.WAVE_PICK,
            f"wave {name}",
            before="subject test=testing",
            after=f"subject test=decided winner={variant}",
            campaign_id=target.id,
        )
    return f"wave {name}: {variant} picked; the next tick sends it to the rest of the audience"
