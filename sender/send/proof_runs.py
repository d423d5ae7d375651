"""Proofs asked for in the workspace: recorded at once, sent in the background.

Rendering and sending every variant (cases x languages x subject variants)
takes longer than a web request may, so the request only records a run in
models.ProofRun and hands it to a Celery worker or a thread. The run keeps
which variants went and which failed (with the reason), so its page can poll
it and a reload finds it again. The form's one-off key is unique: a second
submission of the same form finds the first run instead of sending again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from sender.core.clock import SystemClock
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.errors import InvalidInput, NotFound
from sender.core.models import Campaign, ProofRun, Wave
from sender.core.vocabulary import ProofState
from sender.send.proofs import ProofSent, send_proofs
from sender.send.transport.base import Transport
from sender.staff import audit
from sender.staff.actions import What
from sender.staff.audit import Actor

MAX_KEY = 64


@dataclass(frozen=True)
class ProofRunView:
    run_id: int
    wave_id: int
    status: ProofState
    addresses: int
    sent: tuple[str, ...]
    failed: Mapping[str, str]
    problem: str | None
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.status in (ProofState.DONE, ProofState.FAILED)


def start_proof_run(
    engine: Engine, wave_id: int, addresses: Sequence[str], actor: Actor, key: str
) -> tuple[int, bool]:
    """The run for this form submission and whether it is new (False: a repeated submission)."""
    key = key.strip()
    if not key or len(key) > MAX_KEY:
        raise InvalidInput("the form is missing its submission key; reload the page")
    try:
        with session_scope(engine) as session:
            run = ProofRun(
                request_key=key,
                wave_id=wave_id,
                started_by=actor.name,
                addresses=list(addresses),
                status=ProofState.QUEUED.value,
                sent=[],
                failed={},
            )
            session.add(run)
            session.flush()
            return run.id, True
    except IntegrityError:  # the same form again: the first submission's run stands
        with session_scope(engine) as session:
            found = session.scalar(select(ProofRun.id).where(ProofRun.request_key == key))
        if found is None:
            raise
        return found, False


def _set(engine: Engine, run_id: int, **values: object) -> None:
    with session_scope(engine) as session:
        session.execute(update(ProofRun).where(ProofRun.id == run_id).values(**values))


def _claim(engine: Engine, run_id: int) -> bool:
    with session_scope(engine) as session:
        claimed = session.execute(
            update(ProofRun)
            .where(ProofRun.id == run_id, ProofRun.status == ProofState.QUEUED.value)
            .values(status=ProofState.RUNNING.value)
        )
        return bool(claimed.rowcount)  # type: ignore[attr-defined]


def _record(engine: Engine, run_id: int, proof: ProofSent, problem: str | None) -> None:
    # Only the run's own worker writes it, so reading then writing loses nothing.
    with session_scope(engine) as session:
        run = session.get_one(ProofRun, run_id)
        if problem is None:
            run.sent = [*run.sent, proof.label]
        else:
            run.failed = {**run.failed, proof.label: problem[:500]}


def run_proofs(
    engine: Engine, settings: Settings, run_id: int, actor: Actor, transport: Transport
) -> ProofRunView:
    """Send the run's proofs as `actor` (audited), recording each variant as it goes."""
    if not _claim(engine, run_id):
        return read_proof_run(engine, run_id)  # a redelivered task: the run is started or over
    with session_scope(engine) as session:
        run = session.get_one(ProofRun, run_id)
        wave = session.get_one(Wave, run.wave_id)
        campaign = session.get_one(Campaign, wave.campaign_id)
        slug, name, campaign_id = campaign.slug, wave.name, campaign.id
        addresses = list(run.addresses)
    try:
        audit.audited(
            engine,
            actor,
            What.WAVE_PROOF,
            f"wave {slug}/{name}",
            lambda: send_proofs(
                engine,
                settings,
                slug,
                name,
                addresses,
                transport,
                lambda proof, problem: _record(engine, run_id, proof, problem),
            ),
            campaign_id=campaign_id,
            # A count, not the addresses, as the CLI records it.
            detail=lambda sent: f"{len(sent)} variants to {len(addresses)} addresses",
        )
    except Exception as error:  # any failure ends the run and is shown on its page
        _set(
            engine,
            run_id,
            status=ProofState.FAILED.value,
            problem=str(error)[:2000],
            finished_at=SystemClock().now(),
        )
    else:
        _set(engine, run_id, status=ProofState.DONE.value, finished_at=SystemClock().now())
    return read_proof_run(engine, run_id)


def read_proof_run(engine: Engine, run_id: int) -> ProofRunView:
    with session_scope(engine) as session:
        run = session.get(ProofRun, run_id)
        if run is None:
            raise NotFound(f"no proof run #{run_id}")
        return ProofRunView(
            run.id,
            run.wave_id,
            ProofState(run.status),
            len(run.addresses),
            tuple(str(label) for label in run.sent),
            MappingProxyType({str(k): str(v) for k, v in run.failed.items()}),
            run.problem,
            run.finished_at,
        )
