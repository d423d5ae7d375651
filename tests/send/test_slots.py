"""Send slots (sender.send.slots.slot_for): when a zone's local window opens in a wave."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from sending_fixtures import DEC1

from sender.send.slots import slot_for

MORNING = (time(9), time(11))


def test_slot_is_the_local_window_start_after_the_wave_start() -> None:
    slot = slot_for("Europe/Madrid", DEC1, DEC1 + timedelta(days=2), MORNING)
    assert slot is not None
    assert slot.send_after == datetime(2020, 12, 1, 8, tzinfo=UTC)  # 09:00 CET
    assert slot.send_before == datetime(2020, 12, 1, 10, tzinfo=UTC)
    assert slot.slot_at == slot.send_after


def test_a_zone_already_inside_its_window_at_the_start_begins_at_the_start() -> None:
    slot = slot_for("Asia/Tokyo", DEC1, DEC1 + timedelta(days=2), MORNING)
    assert slot is not None
    assert slot.send_after == DEC1  # 09:00 in Tokyo is midnight UTC
    late_start = DEC1 + timedelta(minutes=30)
    tokyo = slot_for("Asia/Tokyo", late_start, DEC1 + timedelta(days=2), MORNING)
    assert tokyo is not None
    assert (tokyo.slot_at, tokyo.send_after) == (DEC1, late_start)


def test_a_window_already_over_at_the_start_moves_to_the_next_day() -> None:
    slot = slot_for(
        "America/Los_Angeles", DEC1 + timedelta(hours=20), DEC1 + timedelta(days=3), MORNING
    )
    assert slot is not None
    assert slot.send_after == datetime(2020, 12, 2, 17, tzinfo=UTC)


def test_half_hour_zones_floor_the_slot_but_never_send_early() -> None:
    slot = slot_for("Asia/Kolkata", DEC1, DEC1 + timedelta(days=2), MORNING)
    assert slot is not None
    assert slot.send_after == datetime(2020, 12, 1, 3, 30, tzinfo=UTC)
    assert slot.slot_at == datetime(2020, 12, 1, 3, tzinfo=UTC)
    assert slot.send_before == datetime(2020, 12, 1, 5, 30, tzinfo=UTC)


def test_daylight_saving_change_moves_the_utc_slot() -> None:
    # New York leaves summer time on 1 November 2020: 09:00 is 13:00 UTC before, 14:00 after.
    before = slot_for(
        "America/New_York",
        datetime(2020, 10, 31, tzinfo=UTC),
        datetime(2020, 11, 3, tzinfo=UTC),
        MORNING,
    )
    after = slot_for(
        "America/New_York",
        datetime(2020, 10, 31, 16, tzinfo=UTC),
        datetime(2020, 11, 3, tzinfo=UTC),
        MORNING,
    )
    assert before is not None and after is not None
    assert before.send_after == datetime(2020, 10, 31, 13, tzinfo=UTC)
    assert after.send_after == datetime(2020, 11, 1, 14, tzinfo=UTC)


def test_a_whole_day_window_puts_every_zone_in_one_slot() -> None:
    whole = (time(0), time(0))
    slots = {
        slot_for(zone, DEC1, DEC1 + timedelta(days=1), whole)
        for zone in ("UTC", "Asia/Tokyo", "America/Lima", "Asia/Kolkata")
    }
    assert {(s.slot_at, s.send_after) for s in slots if s} == {(DEC1, DEC1)}


def test_no_slot_when_no_window_opens_before_the_end() -> None:
    assert slot_for("America/Los_Angeles", DEC1, DEC1 + timedelta(hours=6), MORNING) is None


def test_an_unknown_zone_is_treated_as_utc_rather_than_dropped() -> None:
    slot = slot_for("Mars/Olympus_Mons", DEC1, DEC1 + timedelta(days=2), MORNING)
    assert slot is not None
    assert (slot.timezone, slot.send_after) == ("Mars/Olympus_Mons", DEC1 + timedelta(hours=9))
