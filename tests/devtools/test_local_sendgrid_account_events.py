"""The local SendGrid's quota and the single events it posts (account_events)."""

from __future__ import annotations

import pytest

from sender.devtools.local_sendgrid.account_events import QUOTA_REASON, Quota, build_event


def _rows(*ids: int) -> list[dict[str, object]]:
    return [{"id": i, "dropped": None} for i in ids]


def test_the_quota_drops_what_comes_after_it_until_lifted() -> None:
    quota = Quota()
    assert quota.mark(_rows(1, 2)) == _rows(1, 2)  # no quota: nothing dropped
    quota.limit(2, recorded=3)  # ids 4 and 5 pass, 6 on are dropped
    quota.limit(None, recorded=8)  # lifted after 8: 9 on pass again
    marked = {r["id"]: r["dropped"] for r in quota.mark(_rows(*range(1, 11)))}
    assert [i for i, reason in marked.items() if reason] == [6, 7, 8]
    assert marked[6] == QUOTA_REASON
    # An address drop the server already decided is kept, not overwritten.
    assert quota.mark([{"id": 7, "dropped": "Invalid"}])[0]["dropped"] == "Invalid"
    quota.reset()
    assert quota.reason(7) is None
    with pytest.raises(ValueError, match="0 or more"):
        quota.limit(-1, recorded=0)


def test_single_events_have_sendgrids_shapes() -> None:
    sent = {"custom_args": {"message_id": "5", "wave_id": "2"}, "sg_message_id": "m.0"}
    status = build_event({"event": "account_status_change", "type": "compliance_ban"}, None)
    assert set(status) == {"event", "sg_event_id", "timestamp", "type"}  # no recipient
    deferred = build_event({"event": "deferred", "email": "a@x.org", "attempt": "3"}, sent)
    assert (deferred["attempt"], deferred["message_id"], deferred["sg_message_id"]) == (
        "3",
        "5",
        "m.0",
    )
    assert deferred["response"].startswith("421")
    group = build_event({"event": "group_unsubscribe", "email": "a@x.org"}, sent)
    assert group["asm_group_id"] == 1 and group["wave_id"] == "2"
    bounce = build_event({"event": "bounce", "email": "a@x.org"}, sent)
    assert "message_id" not in bounce and "wave_id" not in bounce  # no custom args
    assert (bounce["sg_message_id"], bounce["bounce_classification"]) == ("m.0", "Invalid Address")
    with pytest.raises(ValueError, match="event must be one of"):
        build_event({"event": "open"}, None)
