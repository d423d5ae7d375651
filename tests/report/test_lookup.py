"""One address's suppression, looked up by hash."""

from __future__ import annotations

import pytest
from ops_fixtures import EMAILS, seed
from sqlalchemy import Engine

from sender.core.addresses import email_hash
from sender.core.db import session_scope
from sender.core.errors import InvalidInput
from sender.core.models import Suppression
from sender.report.lookup import look_up_suppression


def test_a_suppressed_address_is_found_however_it_is_written(any_engine: Engine) -> None:
    seed(any_engine)
    with session_scope(any_engine) as session:
        session.add(Suppression(email_hash=email_hash(EMAILS[2]), reason="bounced", source="x"))
    found = look_up_suppression(any_engine, " Supporter2@Example.org ")
    assert (found.suppressed, found.reason, found.source) == (True, "bounced", "x")
    assert found.since is not None and found.supporter_status == "subscribed"
    other = look_up_suppression(any_engine, EMAILS[3])
    assert not other.suppressed and other.reason is None and other.supporter_status == "subscribed"


def test_an_unknown_address_has_no_supporter_and_a_bad_one_is_refused(any_engine: Engine) -> None:
    assert look_up_suppression(any_engine, "nobody@example.net").supporter_status is None
    with pytest.raises(InvalidInput):
        look_up_suppression(any_engine, "not an address")
