"""Wave lifecycle: declaring waves and the staff controls over them.

draft ─launch─▶ scheduled ─(start reached: planned)─▶ sending ─(nothing left)─▶ done
   scheduled/sending ─pause─▶ paused ─resume─▶ back where it was
   an account stop (quota drop, suspension) pauses every scheduled or sending wave, and
   done waves whose mail was dropped for it; resume then also resends that mail
   anything unfinished ─cancel─▶ cancelled
   scheduled whose end passed before it was planned ─▶ missed (never sent late)
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from sender.campaign.campaigns import require_open, resolve_campaign
from sender.campaign.kinds import check_kind
from sender.campaign.plan_file import Plan, WaveSpec, check_in_window, check_languages
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.errors import CampaignError, InvalidInput, NotFound
from sender.core.models import Campaign, Wave
from sender.core.vocabulary import AccountChange, AudienceRule, WaveStatus
from sender.send import store as repo
from sender.staff import audit
from sender.staff.actions import What
from sender.track.account import PAUSE_PREFIX, AccountNotice, resend_on_resume

UNFINISHED = (WaveStatus.DRAFT, WaveStatus.SCHEDULED, WaveStatus.SENDING, WaveStatus.PAUSED)
PAUSABLE = (WaveStatus.SCHEDULED, WaveStatus.SENDING)

log = logging.getLogger(__name__)


class LaunchRefused(CampaignError):
    """The wave cannot start: templates fail to render, or its time has passed."""


@dataclass(frozen=True)
class ApplyResult:
    created: tuple[str, ...]
    updated: tuple[str, ...]
    unchanged: tuple[str, ...]
    kept: tuple[str, ...]  # launched waves: their definition is not changed by a plan


# --- declaring waves ----------------------------------------------------------


def apply_plan(
    engine: Engine,
    plan: Plan,
    campaign: str | None = None,
    templates_dir: Path | None = None,
) -> ApplyResult:
    """Create or update the plan's waves; all or nothing, idempotent.

    The campaign is the one named by the plan, else `campaign`, else the only open one.
    """
    with session_scope(engine) as session:
        target = require_open(resolve_campaign(session, plan.campaign or campaign))
        if plan.campaign and campaign and plan.campaign != campaign:
            raise InvalidInput(f"the plan is for campaign {plan.campaign!r}, not {campaign!r}")
        return store_plan(session, target, plan, templates_dir)


def store_plan(
    session: Session, campaign: Campaign, plan: Plan, templates_dir: Path | None = None
) -> ApplyResult:
    """The plan's waves into the campaign, inside the caller's transaction."""
    created: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    kept: list[str] = []
    audiences: dict[str, AudienceRule] = {}
    for spec in plan.waves:
        check_in_window(spec, campaign.window_start, campaign.window_end)
        check_languages(spec, campaign.languages or (), campaign.slug)
        audiences[spec.name] = wave_audience(campaign, spec, templates_dir)
    existing = {w.name: w for w in repo.waves_of(session, campaign.id)}
    for spec in plan.waves:
        wave, audience = existing.get(spec.name), audiences[spec.name]
        if wave is None:
            session.add(_new_wave(campaign, spec, audience))
            created.append(spec.name)
        elif wave.status != WaveStatus.DRAFT:
            (unchanged if _same(wave, spec, audience, campaign) else kept).append(spec.name)
        elif _same(wave, spec, audience, campaign):
            unchanged.append(spec.name)
        else:
            _copy(spec, audience, wave, campaign)
            updated.append(spec.name)
    session.flush()
    return ApplyResult(tuple(created), tuple(updated), tuple(unchanged), tuple(kept))


def create_wave(
    engine: Engine,
    spec: WaveSpec,
    campaign: str | None = None,
    templates_dir: Path | None = None,
) -> None:
    with session_scope(engine) as session:
        target = require_open(resolve_campaign(session, campaign))
        check_in_window(spec, target.window_start, target.window_end)
        check_languages(spec, target.languages or (), target.slug)
        audience = wave_audience(target, spec, templates_dir)
        if any(w.name == spec.name for w in repo.waves_of(session, target.id)):
            raise InvalidInput(f"a wave named {spec.name!r} exists already in {target.slug}")
        session.add(_new_wave(target, spec, audience))


def draft_version(wave: Wave) -> str:
    """A token of the draft's stored fields: a form carries it, and a save whose token no
    longer matches was made against a wave someone else changed meanwhile."""
    fields = (
        wave.name,
        wave.kind,
        wave.audience,
        wave.starts_at.isoformat(),
        wave.ends_at.isoformat(),
        str(wave.local_window_start),
        str(wave.local_window_end),
        wave.subjects,
        wave.preheaders or {},
        wave.rate_per_hour,
        wave.domain_rates or {},
        wave.subject_test or {},
        wave.status,
    )
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def edit_draft(
    engine: Engine,
    wave_id: int,
    spec: WaveSpec,
    version: str,
    templates_dir: Path | None = None,
) -> None:
    """Store a draft's new fields, checked as create_wave checks them; only a draft, only
    from the version the editor saw, and under its own name."""
    with session_scope(engine) as session:
        wave = session.get(Wave, wave_id)
        if wave is None:
            raise NotFound(f"no wave with id {wave_id}")
        target = require_open(session.get_one(Campaign, wave.campaign_id))
        if wave.status != WaveStatus.DRAFT:
            raise InvalidInput(f"wave {wave.name} is {wave.status}: only a draft can be edited")
        if version != draft_version(wave):
            raise InvalidInput(
                f"wave {wave.name} changed since this form was opened; nothing saved, "
                "reload it to see the new values"
            )
        if spec.name != wave.name:
            raise InvalidInput(f"a draft keeps its name ({wave.name})")
        check_in_window(spec, target.window_start, target.window_end)
        check_languages(spec, target.languages or (), target.slug)
        _copy(spec, wave_audience(target, spec, templates_dir), wave, target)


def wave_audience(campaign: Campaign, spec: WaveSpec, templates_dir: Path | None) -> AudienceRule:
    """The wave's audience: its own, else its kind's default. InvalidInput naming the wave
    when the campaign has no such kind (`check_kind`)."""
    kind = check_kind(campaign, spec.kind, spec.name, templates_dir)
    return spec.audience or kind.audience


def _new_wave(campaign: Campaign, spec: WaveSpec, audience: AudienceRule) -> Wave:
    wave = Wave(campaign_id=campaign.id, name=spec.name, status=WaveStatus.DRAFT)
    _copy(spec, audience, wave, campaign)
    return wave


def _local_window(spec: WaveSpec, campaign: Campaign) -> tuple[time, time]:
    if spec.window_start is None or spec.window_end is None:
        return campaign.local_window_start, campaign.local_window_end
    return spec.window_start, spec.window_end


def _copy(spec: WaveSpec, audience: AudienceRule, wave: Wave, campaign: Campaign) -> None:
    wave.kind = spec.kind
    wave.audience = audience
    wave.starts_at = spec.starts_at
    wave.ends_at = spec.ends_at
    wave.local_window_start, wave.local_window_end = _local_window(spec, campaign)
    wave.subjects = dict(spec.subjects)
    wave.preheaders = dict(spec.preheaders)
    wave.rate_per_hour = spec.rate_per_hour
    wave.domain_rates = dict(spec.domain_rates)
    wave.subject_test = spec.subject_test.to_json() if spec.subject_test else {}


def _same(wave: Wave, spec: WaveSpec, audience: AudienceRule, campaign: Campaign) -> bool:
    return (
        wave.kind == spec.kind
        and wave.audience == audience
        and wave.starts_at == spec.starts_at
        and wave.ends_at == spec.ends_at
        and (wave.local_window_start, wave.local_window_end) == _local_window(spec, campaign)
        and wave.subjects == dict(spec.subjects)
        and (wave.preheaders or {}) == dict(spec.preheaders)
        and wave.rate_per_hour == spec.rate_per_hour
        and (wave.domain_rates or {}) == dict(spec.domain_rates)
        and (wave.subject_test or {}) == (spec.subject_test.to_json() if spec.subject_test else {})
    )


# --- staff controls -------------------------------------------------------------

Checker = Callable[[Engine, Settings], Sequence[object]]


def launch(
    engine: Engine,
    settings: Settings,
    name: str,
    now: datetime,
    check: Checker | None = None,
    campaign: str | None = None,
) -> str:
    """draft → scheduled once the templates render; a second launch changes nothing."""
    with session_scope(engine) as session:
        wave = _wave(session, name, campaign)
        if wave.status != WaveStatus.DRAFT:
            return f"wave {name} is already {wave.status}; nothing changed"
        window_end = session.get_one(Campaign, wave.campaign_id).window_end
        if now >= min(wave.ends_at, window_end):
            repo.move_wave(session, wave.id, [WaveStatus.DRAFT], WaveStatus.MISSED, _late(wave))
            audit.record(
                session,
                audit.system_actor(),
                What.WAVE_MISSED,
                f"wave {name}",
                before="status=draft",
                after="status=missed",
                detail=_late(wave),
                campaign_id=wave.campaign_id,
            )
            session.commit()
            raise LaunchRefused(f"wave {name} not launched: {_late(wave)}")
    problems = (check or _preview_check)(engine, settings)
    if problems:
        listed = "; ".join(str(p) for p in problems[:5])
        raise LaunchRefused(f"wave {name} not launched, templates have problems: {listed}")
    with session_scope(engine) as session:
        wave = _wave(session, name, campaign)
        moved = repo.move_wave(
            session, wave.id, [WaveStatus.DRAFT], WaveStatus.SCHEDULED, launched_at=now
        )
    return f"wave {name} launched" if moved else f"wave {name} was launched meanwhile"


def _preview_check(engine: Engine, settings: Settings) -> Sequence[object]:
    from sender.render import preview  # written alongside; imported late to keep start-up light

    return preview.check_all(engine, settings)


def _late(wave: Wave) -> str:
    return f"its end ({wave.ends_at:%Y-%m-%d %H:%M} UTC) passed before it could start"


def pause(
    engine: Engine, name: str, reason: str = "paused by staff", campaign: str | None = None
) -> str:
    with session_scope(engine) as session:
        wave = _wave(session, name, campaign)
        moved = repo.move_wave(session, wave.id, PAUSABLE, WaveStatus.PAUSED, reason)
    return f"wave {name} paused" if moved else f"wave {name} is {wave.status}; nothing changed"


def apply_account_notices(
    session: Session, notices: Sequence[AccountNotice], now: datetime
) -> list[str]:
    """The provider stopped the account: pause every wave that would send, at once.

    The account is shared, so every campaign's waves pause, and a done wave whose
    mail was dropped for the stop too (resuming it resends that mail). A reactivation
    resumes nothing, staff decide; it is added to the paused waves' reason. Runs in
    the transaction that processes the events (sender.track.actions). Returns lines
    for the log.
    """
    lines: list[str] = []
    for notice in notices:
        if notice.change is AccountChange.STOPPED:
            lines += _pause_for(session, notice)
        else:
            lines += _note_reactivation(session, notice)
    for line in lines:
        log.warning(line)
    return lines


def _pause_for(session: Session, notice: AccountNotice) -> Iterable[str]:
    targets = repo.waves_in(session, PAUSABLE)
    if notice.wave_ids:
        targets += repo.waves_in(session, [WaveStatus.DONE], notice.wave_ids)
    for wave in targets:
        reason = account_pause_reason(notice, wave.name)
        before = wave.status
        if repo.move_wave(session, wave.id, [before], WaveStatus.PAUSED, reason):
            audit.record(
                session,
                audit.system_actor(),
                What.WAVE_AUTO_PAUSE,
                f"wave {wave.name}",
                before=f"status={before}",
                after="status=paused",
                detail=reason,
                campaign_id=wave.campaign_id,
            )
            yield f"wave {wave.name} paused: {reason}"


def account_pause_reason(notice: AccountNotice, name: str) -> str:
    """What staff read: what the provider did, when, what to do, and the command to go on."""
    todo = f"{notice.todo}, then" if notice.todo else "then"
    return f"{PAUSE_PREFIX}{notice.describe()}; {todo} `campaign wave resume {name}`"


def _note_reactivation(session: Session, notice: AccountNotice) -> Iterable[str]:
    for wave in repo.waves_in(session, [WaveStatus.PAUSED]):
        reason = wave.status_reason or ""
        if not reason.startswith(PAUSE_PREFIX):
            continue  # paused by staff or for another cause: not the account's to lift
        note = f"{notice.describe()}; nothing resumes by itself"
        if note in reason:
            continue
        repo.move_wave(
            session, wave.id, [WaveStatus.PAUSED], WaveStatus.PAUSED, f"{reason} | {note}"
        )
        yield f"wave {wave.name}: {note}"


def resume(engine: Engine, name: str, now: datetime, campaign: str | None = None) -> str:
    with session_scope(engine) as session:
        wave = _wave(session, name, campaign)
        if wave.status != WaveStatus.PAUSED:
            return f"wave {name} is {wave.status}; nothing changed"
        if wave.planned_at is None and now >= wave.ends_at:
            repo.move_wave(session, wave.id, [WaveStatus.PAUSED], WaveStatus.MISSED, _late(wave))
            return f"wave {name} missed: {_late(wave)}"
        back = WaveStatus.SENDING if wave.planned_at else WaveStatus.SCHEDULED
        # Mail the provider dropped for the account reached nobody: it goes again, once.
        again = repo.reopen_failed_messages(session, wave.id, resend_on_resume())
        repo.move_wave(session, wave.id, [WaveStatus.PAUSED], back, finished_at=None)
    resent = f", {again} dropped messages to send again" if again else ""
    return f"wave {name} resumed ({back}{resent})"


def cancel(engine: Engine, name: str, campaign: str | None = None) -> str:
    with session_scope(engine) as session:
        wave = _wave(session, name, campaign)
        batches = cancel_wave(session, wave, "cancelled")
        if batches is None:
            return f"wave {name} is {wave.status}; nothing changed"
    return f"wave {name} cancelled ({batches} unsent batches dropped)"


def cancel_wave(session: Session, wave: Wave, reason: str) -> int | None:
    """Stop an unfinished wave and drop its unsent batches; None if it was finished."""
    if not repo.move_wave(session, wave.id, UNFINISHED, WaveStatus.CANCELLED, reason):
        return None
    return repo.cancel_wave_batches(session, wave.id)


def retry_failed(engine: Engine, name: str, campaign: str | None = None) -> int:
    with session_scope(engine) as session:
        wave = _wave(session, name, campaign)
        count = repo.retry_failed(session, wave.id)
        if count:
            repo.move_wave(
                session, wave.id, [WaveStatus.DONE], WaveStatus.SENDING, finished_at=None
            )
    return count


def _wave(session: Session, name: str, campaign: str | None) -> Wave:
    """A wave of an open campaign: a closed campaign's waves take no more commands."""
    return repo.wave_by_name(session, require_open(resolve_campaign(session, campaign)).id, name)


def wave_status(engine: Engine, name: str, campaign: str | None = None) -> str | None:
    """`status=...` of the wave, None when it does not exist: an audit row's before/after."""
    try:
        with session_scope(engine) as session:
            wave = repo.wave_by_name(session, resolve_campaign(session, campaign).id, name)
            return f"status={wave.status}"
    except NotFound:
        return None
