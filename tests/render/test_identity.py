"""The sender identity: the campaign row, with the settings filling what it leaves out."""

from __future__ import annotations

from datetime import UTC, datetime

import render_fixtures as fx

from sender.core.mail import Address
from sender.core.models import Campaign
from sender.render.identity import sender_identity

WHEN = datetime(2020, 10, 1, tzinfo=UTC)


def _campaign(**values: object) -> Campaign:
    return Campaign(slug="c", name="C", window_start=WHEN, window_end=WHEN, **values)


def test_without_a_campaign_the_settings_are_the_identity() -> None:
    identity = sender_identity(fx.settings(brand_primary="#010203", inbound_domain="in.example"))
    assert identity.brand["primary"] == "#010203"
    assert identity.brand["org_name"] == "Amnesty International (demo section)"
    assert identity.sender == Address("campaigns@example.org", "Write for Rights")
    assert identity.reply_domain == "in.example"


def test_the_campaign_s_brand_and_from_win_over_the_settings() -> None:
    campaign = _campaign(
        from_email="w4r@section.example", from_name="Section X", brand={"primary": "#123456"}
    )
    identity = sender_identity(fx.settings(), campaign)
    assert identity.brand["primary"] == "#123456"
    assert identity.brand["ink"] == fx.settings().brand_ink  # what the row leaves out
    assert identity.sender == Address("w4r@section.example", "Section X")


def test_a_campaign_without_brand_or_names_keeps_the_settings() -> None:
    identity = sender_identity(fx.settings(), _campaign(from_email="", from_name="", brand=None))
    assert identity == sender_identity(fx.settings())
