"""Wave lifecycle, send slots and planning.

draft ─launch─▶ scheduled ─(start reached: planned)─▶ sending ─(nothing left)─▶ done
   scheduled/sending ─pause─▶ paused ─resume─▶ back where it was
   anything unfinished ─cancel─▶ cancelled
   scheduled whose end passed before it was planned ─▶ missed (never sent late)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from sender import planning
from sender import repository as repo
from sender.campaigns import DEFAULT_SLUG, ensure_campaign
from sender.config import Settings
from sender.db import session_scope
from sender.errors import CampaignError, InvalidInput
from sender.models import Campaign, Wave
from sender.plan import Plan, WaveSpec, check_in_window
from sender.vocabulary import CaseStatus, Language, WaveStatus

UNFINISHED = (WaveStatus.DRAFT, WaveStatus.SCHEDULED, WaveStatus.SENDING, WaveStatus.PAUSED)


class LaunchRefused(CampaignError):
    """The wave cannot start: templates fail to render, or its time has passed."""


@dataclass(frozen=True)
class ApplyResult:
    created: tuple[str, ...]
    updated: tuple[str, ...]
    unchanged: tuple[str, ...]
    kept: tuple[str, ...]  # launched waves: their definition is not changed by a plan


@dataclass(frozen=True)
class PlanResult:
    wave: str
    messages: int
    batches: int
    zones: int


# --- send slots ---------------------------------------------------------------


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
) -> planning.SlotRow | None:
    """The earliest instant ≥ start inside the zone's local window, and when that window shuts.

    `slot_at` is that instant floored to the hour: batches group by it, so
    zones a few minutes apart share batches. None when no window opens
    before `ends_at`.
    """
    window_start, window_end = window
    if window_start == window_end:  # the whole day: everyone from the start
        return planning.SlotRow(timezone, _hour(starts_at), starts_at, ends_at)
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
            return planning.SlotRow(timezone, _hour(earliest), earliest, min(closes, ends_at))
        day += timedelta(days=1)


def _hour(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


# --- declaring waves ----------------------------------------------------------


def apply_plan(engine: Engine, settings: Settings, plan: Plan) -> ApplyResult:
    """Create or update the plan's waves; all or nothing, idempotent."""
    created: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    kept: list[str] = []
    with session_scope(engine) as session:
        campaign = _campaign(session, settings, plan.campaign)
        for spec in plan.waves:
            check_in_window(spec, campaign.window_start, campaign.window_end)
        existing = {w.name: w for w in repo.waves_of(session, campaign.id)}
        for spec in plan.waves:
            wave = existing.get(spec.name)
            if wave is None:
                session.add(_new_wave(campaign, spec))
                created.append(spec.name)
            elif wave.status != WaveStatus.DRAFT:
                (unchanged if _same(wave, spec) else kept).append(spec.name)
            elif _same(wave, spec):
                unchanged.append(spec.name)
            else:
                _copy(spec, wave)
                updated.append(spec.name)
    return ApplyResult(tuple(created), tuple(updated), tuple(unchanged), tuple(kept))


def create_wave(engine: Engine, settings: Settings, spec: WaveSpec) -> None:
    with session_scope(engine) as session:
        campaign = ensure_campaign(session, settings)
        check_in_window(spec, campaign.window_start, campaign.window_end)
        if any(w.name == spec.name for w in repo.waves_of(session, campaign.id)):
            raise InvalidInput(f"a wave named {spec.name!r} exists already")
        session.add(_new_wave(campaign, spec))


def _campaign(session: Session, settings: Settings, slug: str | None) -> Campaign:
    if slug in (None, DEFAULT_SLUG):
        return ensure_campaign(session, settings)
    return repo.campaign_by_slug(session, slug)


def _new_wave(campaign: Campaign, spec: WaveSpec) -> Wave:
    wave = Wave(campaign_id=campaign.id, name=spec.name, status=WaveStatus.DRAFT)
    _copy(spec, wave)
    return wave


def _copy(spec: WaveSpec, wave: Wave) -> None:
    wave.kind = spec.kind
    wave.audience = spec.audience
    wave.starts_at = spec.starts_at
    wave.ends_at = spec.ends_at
    wave.local_window_start = spec.window_start
    wave.local_window_end = spec.window_end
    wave.subjects = dict(spec.subjects)
    wave.preheaders = dict(spec.preheaders)
    wave.rate_per_hour = spec.rate_per_hour
    wave.domain_rates = dict(spec.domain_rates)


def _same(wave: Wave, spec: WaveSpec) -> bool:
    return (
        wave.kind == spec.kind
        and wave.audience == spec.audience
        and wave.starts_at == spec.starts_at
        and wave.ends_at == spec.ends_at
        and wave.local_window_start == spec.window_start
        and wave.local_window_end == spec.window_end
        and wave.subjects == dict(spec.subjects)
        and (wave.preheaders or {}) == dict(spec.preheaders)
        and wave.rate_per_hour == spec.rate_per_hour
        and (wave.domain_rates or {}) == dict(spec.domain_rates)
    )


# --- staff controls -------------------------------------------------------------

Checker = Callable[[Engine, Settings], Sequence[object]]


def launch(
    engine: Engine, settings: Settings, name: str, now: datetime, check: Checker | None = None
) -> str:
    """draft → scheduled once the templates render; a second launch changes nothing."""
    with session_scope(engine) as session:
        wave = _wave(session, settings, name)
        if wave.status != WaveStatus.DRAFT:
            return f"wave {name} is already {wave.status}; nothing changed"
        campaign = session.get(Campaign, wave.campaign_id)
        assert campaign is not None
        if now >= min(wave.ends_at, campaign.window_end):
            repo.move_wave(session, wave.id, [WaveStatus.DRAFT], WaveStatus.MISSED, _late(wave))
            session.commit()
            raise LaunchRefused(f"wave {name} not launched: {_late(wave)}")
    problems = (check or _preview_check)(engine, settings)
    if problems:
        listed = "; ".join(str(p) for p in problems[:5])
        raise LaunchRefused(f"wave {name} not launched, templates have problems: {listed}")
    with session_scope(engine) as session:
        wave = _wave(session, settings, name)
        moved = repo.move_wave(
            session, wave.id, [WaveStatus.DRAFT], WaveStatus.SCHEDULED, launched_at=now
        )
    return f"wave {name} launched" if moved else f"wave {name} was launched meanwhile"


def _preview_check(engine: Engine, settings: Settings) -> Sequence[object]:
    from sender import preview  # written alongside; imported late to keep start-up light

    return preview.check_all(engine, settings)


def _late(wave: Wave) -> str:
    return f"its end ({wave.ends_at:%Y-%m-%d %H:%M} UTC) passed before it could start"


def pause(engine: Engine, settings: Settings, name: str, reason: str = "paused by staff") -> str:
    with session_scope(engine) as session:
        wave = _wave(session, settings, name)
        moved = repo.move_wave(
            session, wave.id, [WaveStatus.SCHEDULED, WaveStatus.SENDING], WaveStatus.PAUSED, reason
        )
    return f"wave {name} paused" if moved else f"wave {name} is {wave.status}; nothing changed"


def resume(engine: Engine, settings: Settings, name: str, now: datetime) -> str:
    with session_scope(engine) as session:
        wave = _wave(session, settings, name)
        if wave.status != WaveStatus.PAUSED:
            return f"wave {name} is {wave.status}; nothing changed"
        if wave.planned_at is None and now >= wave.ends_at:
            repo.move_wave(session, wave.id, [WaveStatus.PAUSED], WaveStatus.MISSED, _late(wave))
            return f"wave {name} missed: {_late(wave)}"
        back = WaveStatus.SENDING if wave.planned_at else WaveStatus.SCHEDULED
        repo.move_wave(session, wave.id, [WaveStatus.PAUSED], back)
    return f"wave {name} resumed ({back})"


def cancel(engine: Engine, settings: Settings, name: str) -> str:
    with session_scope(engine) as session:
        wave = _wave(session, settings, name)
        if not repo.move_wave(session, wave.id, UNFINISHED, WaveStatus.CANCELLED, "cancelled"):
            return f"wave {name} is {wave.status}; nothing changed"
        batches = repo.cancel_wave_batches(session, wave.id)
    return f"wave {name} cancelled ({batches} unsent batches dropped)"


def retry_failed(engine: Engine, settings: Settings, name: str) -> int:
    with session_scope(engine) as session:
        wave = _wave(session, settings, name)
        count = repo.retry_failed(session, wave.id)
        if count:
            repo.move_wave(
                session, wave.id, [WaveStatus.DONE], WaveStatus.SENDING, finished_at=None
            )
    return count


def set_case(engine: Engine, settings: Settings, slug: str, status: CaseStatus) -> str:
    """The kill switch: a paused case's batches stop at once (re-checked before sending)."""
    with session_scope(engine) as session:
        campaign = ensure_campaign(session, settings)
        found = repo.case_by_slug(session, campaign.id, slug)
        repo.set_case_status(session, found.id, status)
    return f"case {slug} {status}"


def _wave(session: Session, settings: Settings, name: str) -> Wave:
    return repo.wave_by_name(session, ensure_campaign(session, settings).id, name)


# --- planning ---------------------------------------------------------------------


def plan_wave(engine: Engine, settings: Settings, wave_id: int, now: datetime) -> PlanResult | None:
    """Insert the wave's messages and batches in one transaction; None if another planner won."""
    with session_scope(engine) as session:
        if not planning.claim_for_planning(session, wave_id, now):
            return None
        wave = session.get(Wave, wave_id)
        campaign = session.get(Campaign, wave.campaign_id) if wave else None
        assert wave is not None and campaign is not None
        ends = min(wave.ends_at, campaign.window_end)
        starts = max(wave.starts_at, campaign.window_start)
        window = (wave.local_window_start, wave.local_window_end)
        slots = [
            slot
            for zone in planning.candidate_timezones(session, campaign.id)
            if (slot := slot_for(zone, starts, ends, window)) is not None
        ]
        planning.save_slots(session, wave.id, slots)
        messages, batches = planning.plan_messages(
            session,
            wave,
            now=now,
            cap=timedelta(hours=settings.frequency_cap_hours),
            batch_size=settings.batch_size,
            default_language=_default_language(wave),
        )
        return PlanResult(wave.name, messages, batches, len(slots))


def _default_language(wave: Wave) -> str:
    languages = list(wave.subjects or {})
    return Language.EN.value if Language.EN.value in languages or not languages else languages[0]
