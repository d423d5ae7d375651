"""The workspace benchmark's database: supporters, three waves, events, replies, an import.

Supporters, cases and assignments come from bench.wave's set-up (COPY). The
waves are made as staff make them (`create_wave`, `launch`, the scheduler's
`tick` to plan), then SQL moves them on: the case email all sent, the
reminder half sent, the last chance left a draft. Events, the actions they
stand for and the running totals are written in SQL too, as bench.report
writes them; the actions are then rolled up by the production code.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, select, text

from bench.wave import SUBJECTS, fill
from sender.audience.import_runs import run_import, save_upload, start_run
from sender.campaign.plan_file import wave_spec
from sender.campaign.waves import create_wave, launch
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.models import Campaign, Case, Wave
from sender.report.totals import roll_up_actions
from sender.send.scheduler import tick
from sender.staff.audit import Actor
from sender.staff.roles import Role
from sender.track.providers.sendgrid import PROVIDER

# (name, kind, what SQL leaves it as): one wave per state the pages show differently.
WAVES = (
    ("case-email", "case_email", "sent"),
    ("action-reminder", "action_reminder", "sending"),
    ("last-chance", "last_chance", "draft"),
)
# The acting rule counts clicks: one supporter in ten who clicked acted.
EVENTS_SQL = """
INSERT INTO events (provider, provider_event_id, event_type, raw_type, email_hash,
  message_id, supporter_id, case_id, wave_id, batch_key, occurred_at, received_at,
  processed_at, raw)
SELECT CAST(:provider AS text), 'ev' || m.id || '-' || k,
  (ARRAY['queued','delivered','opened','clicked','opened'])[k % 5 + 1],
  (ARRAY['processed','delivered','open','click','open'])[k % 5 + 1], NULL, m.id,
  m.supporter_id, m.case_id, m.wave_id, 'k' || m.batch_id,
  m.sent_at + k * interval '1 hour', m.sent_at, m.sent_at,
  jsonb_build_object('event', 'x', 'sg_event_id', 'ev' || m.id || '-' || k)
FROM messages m CROSS JOIN generate_series(0, :per_message - 1) k
WHERE m.status = 'sent' LIMIT :events
"""
ACTIONS_SQL = """
INSERT INTO actions (supporter_id, case_id, wave_id, message_id, kind, url, source,
  dedupe_key, occurred_at, acting)
SELECT supporter_id, case_id, wave_id, message_id,
  CASE WHEN event_type = 'clicked' THEN 'clicked' ELSE 'opened' END, NULL,
  CAST(:provider AS text), CAST(:prefix AS text) || ':' || provider_event_id, occurred_at,
  event_type = 'clicked' AND supporter_id % 10 = 0
FROM events WHERE event_type IN ('opened', 'clicked')
"""
DELIVERIES_SQL = """
INSERT INTO report_counts (case_id, wave_id, language, day, metric, count)
SELECT e.case_id, e.wave_id, m.language, (e.occurred_at AT TIME ZONE 'UTC')::date,
  'deliveries', count(*)
FROM events e JOIN messages m ON m.id = e.message_id
WHERE e.event_type = 'delivered' GROUP BY 1, 2, 3, 4
"""
SENDS_SQL = """
INSERT INTO report_counts (case_id, wave_id, language, day, metric, count)
SELECT case_id, wave_id, language, (sent_at AT TIME ZONE 'UTC')::date, 'sends', count(*)
FROM messages WHERE sent_at IS NOT NULL GROUP BY 1, 2, 3, 4
"""
REPLIES_SQL = """
INSERT INTO replies (received_at, raw_form, status, problem, from_email, subject, body,
  language, supporter_id, case_id, wave_id)
SELECT m.sent_at + interval '2 hours', '{}'::jsonb,
  CASE WHEN m.id % 5 = 0 THEN 'review' ELSE 'matched' END,
  CASE WHEN m.id % 5 = 0 THEN 'no supporter matched' END, s.email,
  'Re: one letter can change a life', 'Solidarity from far away, ' || s.first_name || '.',
  m.language, CASE WHEN m.id % 5 = 0 THEN NULL ELSE s.id END, m.case_id, m.wave_id
FROM messages m JOIN supporters s ON s.id = m.supporter_id
WHERE m.status = 'sent' ORDER BY m.id LIMIT :replies
"""
ROLL_UP_LIMIT = 20_000  # message ids per round stay below PostgreSQL's parameter limit


class _Nowhere:
    """Released batches go nowhere: SQL marks them sent afterwards."""

    def dispatch(self, batch_ids: Sequence[int]) -> None:
        return None


@dataclass(frozen=True)
class Seeded:
    """The ids the pages' URLs need."""

    campaign: str
    case: str
    waves: dict[str, int]  # state -> wave id
    import_run: int
    supporter_email: str
    seconds: float
    supporters: int
    events: int


def seed(
    engine: Engine, settings: Settings, supporters: int, events: int, upload_dir: Path
) -> Seeded:
    began = time.perf_counter()
    fill(engine, supporters)
    now = datetime.now(UTC)
    waves: dict[str, int] = {}
    for name, kind, state in WAVES:
        waves[state] = _wave(engine, settings, name, kind, state, now)
    with engine.begin() as connection:
        params = {"provider": PROVIDER.name, "prefix": PROVIDER.action_key_prefix}
        sent = connection.scalar(text("SELECT count(*) FROM messages WHERE status = 'sent'"))
        per_message = max(1, -(-events // max(1, int(sent or 0))))
        connection.execute(
            text(EVENTS_SQL), {**params, "events": events, "per_message": per_message}
        )
        connection.execute(text(ACTIONS_SQL), params)
        connection.execute(text(DELIVERIES_SQL))
        connection.execute(text(SENDS_SQL))
        connection.execute(text(REPLIES_SQL), {"replies": max(10, supporters // 500)})
    while True:
        with session_scope(engine) as session:
            if not roll_up_actions(session, now, ROLL_UP_LIMIT):
                break
    run_id = _import_run(engine, upload_dir)
    with engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        connection.commit()
    with session_scope(engine) as session:
        campaign = session.scalars(select(Campaign.slug)).one()
        case = session.scalars(select(Case.slug).order_by(Case.id)).first()
    return Seeded(
        campaign,
        str(case),
        waves,
        run_id,
        "supporter7@example.org",
        time.perf_counter() - began,
        supporters,
        events,
    )


def _wave(
    engine: Engine, settings: Settings, name: str, kind: str, state: str, now: datetime
) -> int:
    spec = wave_spec(
        name=name,
        kind=kind,
        audience="all_assigned",
        start=now - timedelta(minutes=5),
        end=now + timedelta(days=1),
        subjects=SUBJECTS,
        window="00:00-24:00",
        rate_per_hour=200_000_000,
    )
    create_wave(engine, spec)
    with session_scope(engine) as session:
        wave_id = int(session.scalars(select(Wave.id).where(Wave.name == name)).one())
    if state == "draft":
        return wave_id
    launch(engine, settings, name, now)
    # The reminder follows the case email within the installation's frequency cap:
    # planned without it here, so that it has recipients (the launch page counts the cap).
    tick(engine, settings.model_copy(update={"frequency_cap_hours": 0}), now, _Nowhere())
    # The case email went out yesterday; half the reminder's batches have gone since.
    sent_at = now - timedelta(hours=20 if state == "sent" else 1)
    share = "" if state == "sent" else " AND id % 2 = 0"
    with engine.begin() as connection:
        values = {"wave": wave_id, "at": sent_at}
        connection.execute(
            text(f"UPDATE batches SET status = 'sent' WHERE wave_id = :wave{share}"), values
        )
        connection.execute(
            text(
                "UPDATE messages SET status = 'sent', sent_at = :at WHERE batch_id IN"
                " (SELECT id FROM batches WHERE wave_id = :wave AND status = 'sent')"
            ),
            values,
        )
        if state == "sent":
            connection.execute(text("UPDATE waves SET status = 'done' WHERE id = :wave"), values)
    return wave_id


def _import_run(engine: Engine, upload_dir: Path) -> int:
    """One finished workspace import, with its rejected rows on disk (the run's pages)."""
    body = b"email,first_name\nnew.one@example.org,New\nnot-an-address,Bad\n"
    saved = save_upload(iter([body]), upload_dir, 1024**2)
    actor = Actor("bootstrap:staff", Role.ADMIN, "127.0.0.1")
    run_id = start_run(engine, saved, "crm-small.csv", actor)
    run_import(engine, upload_dir, run_id, actor)
    return run_id
