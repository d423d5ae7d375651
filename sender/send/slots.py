"""Send slots: when a supporter's local window opens inside a wave's span.

Pure functions of time zones and instants, so planning (SQL) and tests share them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@dataclass(frozen=True)
class SlotRow:
    timezone: str
    slot_at: datetime  # floored to the hour: batches group by it
    send_after: datetime
    send_before: datetime


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")  # an unknown zone is treated as UTC rather than dropped


def _local(day: date, at: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def slot_for(
    timezone: str,
    starts_at: datetime,
    ends_at: datetime,
    window: tuple[time, time],
) -> SlotRow | None:
    """The earliest instant ≥ start inside the zone's local window, and when that window shuts.

    `slot_at` is that instant floored to the hour: batches group by it, so
    zones a few minutes apart share batches. None when no window opens
    before `ends_at`.
    """
    window_start, window_end = window
    if window_start == window_end:  # the whole day: everyone from the start
        return SlotRow(timezone, _hour(starts_at), starts_at, ends_at)
    zone = _zone(timezone)
    day = starts_at.astimezone(zone).date() - timedelta(days=1)
    while True:
        opens = _local(day, window_start, zone)
        if opens >= ends_at:
            return None
        closes = (
            _local(day + timedelta(days=1), window_end, zone)
            if window_end == time(0, 0)
            else (_local(day, window_end, zone))
        )
        earliest = max(opens, starts_at)
        if earliest < closes:
            return SlotRow(timezone, _hour(earliest), earliest, min(closes, ends_at))
        day += timedelta(days=1)


def _hour(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
