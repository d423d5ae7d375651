"""The values that cross the Transport protocol: the fast Recipient builder."""

from __future__ import annotations

import dataclasses

import pytest

from sender.core.mail import Address, Recipient, _slot_setters, recipient_value


def test_fast_builder_makes_the_same_frozen_value() -> None:
    subs, args, headers = {"-a-": "1"}, {"k": "v"}, {"List-Unsubscribe": "<x>"}
    fast = recipient_value("a@example.org", "Ana", subs, args, headers)
    plain = Recipient(Address("a@example.org", "Ana"), subs, args, headers)
    assert fast == plain and repr(fast) == repr(plain) and hash(fast.to) == hash(plain.to)
    assert type(fast) is Recipient and type(fast.to) is Address
    assert fast.substitutions is subs and fast.custom_args is args and fast.headers is headers
    assert recipient_value("b@example.org", None, {}, {}, {}).to == Address("b@example.org")
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.to = plain.to  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.to.email = "b@example.org"  # type: ignore[misc]


def test_fast_builder_refuses_a_value_whose_fields_changed() -> None:
    with pytest.raises(TypeError, match="fields changed"):
        _slot_setters(Recipient, ("to", "substitutions", "custom_args"))
    with pytest.raises(TypeError, match="fields changed"):
        _slot_setters(Address, ("name", "email"))
