"""Issue 13, finding 3: forged custom args in a validly signed batch change nobody.

Each attack rides in one batch signed with the webhook's real key, beside a genuine
event that must still apply; the refused ones are kept raw, counted and shown to ops.
"""

from __future__ import annotations

from typing import Any

from events_fixtures import T0, World, seed, sg_event
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from sqlalchemy import Engine, select
from webhook_fixtures import URL, Signer, body_of, client, signer

from sender.core.addresses import email_hash
from sender.core.models import (
    Action,
    Message,
    RejectedEvent,
    ReportCount,
    Supporter,
    Suppression,
)
from sender.ops.status import snapshot
from sender.track.rejected_events import rejected_summary

__all__ = ["client", "signer"]


def _state(engine: Engine) -> dict[str, Any]:
    """Everything an event could change about supporters, messages and reports."""
    with engine.connect() as c:
        return {
            "supporters": c.execute(
                select(Supporter.id, Supporter.status).order_by(Supporter.id)
            ).all(),
            "messages": c.execute(
                select(Message.id, Message.status, Message.skip_reason).order_by(Message.id)
            ).all(),
            "suppressions": c.execute(select(Suppression.email_hash)).all(),
            "actions": c.execute(select(Action.kind, Action.supporter_id)).all(),
            "counts": c.execute(
                select(ReportCount.case_id, ReportCount.metric, ReportCount.count).order_by(
                    ReportCount.case_id, ReportCount.metric
                )
            ).all(),
        }


def _refused_metric(kind: str) -> float:
    return REGISTRY.get_sample_value("events_rejected_total", {"kind": kind}) or 0.0


def _attacks(w: World) -> list[dict[str, Any]]:
    stranger = "stranger@example.net"
    return [
        # The unsubscribe custom arg `supporter_id=5`, for an address that is not theirs.
        {
            "email": stranger,
            "timestamp": 1_606_813_200,
            "event": "unsubscribe",
            "sg_event_id": "forged-unsubscribe",
            "supporter_id": str(w.supporters[5]),
        },
        # A spam report for an unrelated address carrying a real message id and its key.
        {
            **sg_event(w, 1, "spamreport", 2),
            "email": stranger,
            "supporter_id": str(w.supporters[1]),
        },
        # A click by one supporter carrying someone else's message id.
        {
            **sg_event(w, 2, "click", 3, url="https://act.example.org/a/x"),
            "email": "p0@example.org",
            "supporter_id": str(w.supporters[0]),
        },
        # The right address and message, but a send key we never used.
        {**sg_event(w, 3, "unsubscribe", 4), "send_key": "not-our-batch"},
        # Everything right, but sent by another installation on the same account.
        {**sg_event(w, 4, "spamreport", 5), "installation_id": "another-install"},
        # A message id with nothing else: no send key, no address.
        {
            "timestamp": 1_606_813_206,
            "event": "bounce",
            "type": "bounce",
            "sg_event_id": "bare-bounce",
            "message_id": str(w.messages[5]),
        },
    ]


def test_forged_custom_args_in_one_signed_batch_change_nobody(
    client: FlaskClient, signer: Signer, any_engine: Engine
) -> None:
    w = seed(any_engine, people=6)
    before = _state(any_engine)
    metric_before = _refused_metric("mismatched"), _refused_metric("foreign")
    genuine = sg_event(w, 0, "open", 9, sg_machine_open=False)
    body = body_of([*_attacks(w), genuine])
    response = client.post(URL, data=body, headers=signer.headers(body))
    assert response.status_code == 200
    assert response.get_json() == {"received": 7, "stored": 7}

    after = _state(any_engine)
    for name in ("supporters", "messages", "suppressions"):
        assert after[name] == before[name], name
    # The genuine open's count is the only new one.
    opens = [row for row in after["counts"] if row.metric == "human_opens"]
    assert opens == [(w.case_id, "human_opens", 1)]
    assert [row for row in after["counts"] if row not in opens] == before["counts"]
    # Only the genuine open took effect.
    assert after["actions"] == [("opened", w.supporters[0])]
    with any_engine.connect() as c:
        kept = c.execute(
            select(RejectedEvent.kind, RejectedEvent.reason).order_by(RejectedEvent.reason)
        ).all()
    assert sorted(k.kind for k in kept) == ["foreign", *["mismatched"] * 5]
    reasons = " | ".join(k.reason for k in kept)
    for why in (
        "forged-unsubscribe: supporter_id without a message_id",
        "email is not the recipient of message_id",
        "send_key is not the batch message_id went out in",
        "installation_id is another installation's",
    ):
        assert why in reasons
    # Counted in /metrics and shown to ops.
    assert _refused_metric("mismatched") - metric_before[0] == 5
    assert _refused_metric("foreign") - metric_before[1] == 1
    summary = rejected_summary(any_engine)
    assert (summary.refused, summary.count) == (6, 6)
    assert snapshot(any_engine, T0).rejected_events.refused == 6

    # SendGrid delivers at least once: the same batch again refuses nothing new.
    again = client.post(URL, data=body, headers=signer.headers(body))
    assert again.get_json() == {"received": 7, "stored": 0}
    assert _state(any_engine) == after
    assert rejected_summary(any_engine).refused == 6


def test_the_same_events_bound_to_what_we_sent_do_apply(
    client: FlaskClient, signer: Signer, any_engine: Engine
) -> None:
    """The control: the genuine forms of the attacks above change exactly their supporter."""
    w = seed(any_engine, people=3)
    events = [
        sg_event(w, 0, "unsubscribe", 1),
        sg_event(w, 1, "spamreport", 2),
        sg_event(w, 2, "click", 3, url="https://act.example.org/a/x"),
    ]
    body = body_of(events)
    assert client.post(URL, data=body, headers=signer.headers(body)).status_code == 200
    with any_engine.connect() as c:
        statuses = {r.id: r.status for r in c.execute(select(Supporter.id, Supporter.status))}
        suppressed = set(c.scalars(select(Suppression.email_hash)))
        clicks = c.execute(select(Action.kind, Action.supporter_id)).all()
    assert statuses == {
        w.supporters[0]: "unsubscribed",
        w.supporters[1]: "complained",
        w.supporters[2]: "subscribed",
    }
    assert suppressed == {email_hash("p0@example.org"), email_hash("p1@example.org")}
    assert clicks == [("clicked", w.supporters[2])]
    assert rejected_summary(any_engine).refused == 0


def test_an_async_bounce_without_custom_args_still_suppresses_its_address(
    client: FlaskClient, signer: Signer, any_engine: Engine
) -> None:
    """SendGrid's asynchronous bounces carry no custom args: they are about the address."""
    w = seed(any_engine, people=2)
    bounce = {
        "email": "p1@example.org",
        "timestamp": 1_606_813_200,
        "event": "bounce",
        "type": "bounce",
        "sg_event_id": "async-bounce",
    }
    body = body_of([bounce])
    assert client.post(URL, data=body, headers=signer.headers(body)).status_code == 200
    with any_engine.connect() as c:
        status = c.scalar(select(Supporter.status).where(Supporter.id == w.supporters[1]))
    assert status == "bounced"
    assert rejected_summary(any_engine).refused == 0
