"""Proof sends: every variant to staff, run in the background with per-variant outcomes."""

from __future__ import annotations

import pytest
from proof_fixtures import ArabicRefused
from sqlalchemy import Engine, func, select
from wave_workspace_fixtures import changes, seed_assigned

from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.errors import InvalidInput
from sender.core.models import Campaign, ProofRun, Wave
from sender.core.vocabulary import ProofState
from sender.send.proof_runs import read_proof_run, run_proofs, start_proof_run
from sender.send.proofs import send_proofs
from sender.send.transport.base import Rejected
from sender.staff.audit import Actor
from sender.staff.roles import Role

ACTOR = Actor("desk@staff.example.org", Role.CAMPAIGNER, "127.0.0.1")
TO = ["desk@staff.example.org"]


def settings_for(engine: Engine) -> Settings:
    url = engine.url.render_as_string(hide_password=False)
    return Settings(database_url=url, public_base_url="http://localhost")


def two_language_wave(engine: Engine) -> tuple[int, str, str]:
    seeded = seed_assigned(engine)
    with session_scope(engine) as session:
        wave = session.get_one(Wave, seeded.draft_wave_id)
        wave.subjects = {"en": "Write today, {{ first_name }}", "ar": "اكتبوا اليوم"}
        wave.preheaders = {"en": "One letter", "ar": "رسالة واحدة"}
        campaign = session.get_one(Campaign, wave.campaign_id)
        return wave.id, campaign.slug, wave.name


def proof_runs(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(session.scalar(select(func.count()).select_from(ProofRun)) or 0)


def test_a_refused_variant_is_reported_and_the_others_still_go(pg_engine: Engine) -> None:
    wave_id, _, _ = two_language_wave(pg_engine)
    transport = ArabicRefused()
    run_id, new = start_proof_run(pg_engine, wave_id, TO, ACTOR, "form-1")
    assert new
    assert read_proof_run(pg_engine, run_id).status is ProofState.QUEUED

    run = run_proofs(pg_engine, settings_for(pg_engine), run_id, ACTOR, transport)
    assert run.status is ProofState.DONE and run.finished
    assert sorted(run.sent) == ["bird/en", "popi/en"] and len(transport.sent) == 2
    assert sorted(run.failed) == ["bird/ar", "popi/ar"]
    assert all("the subject was refused" in reason for reason in run.failed.values())
    assert changes(pg_engine) == [("wave.test", "done")]


def test_a_redelivered_run_sends_nothing_more(pg_engine: Engine) -> None:
    wave_id, _, _ = two_language_wave(pg_engine)
    transport = ArabicRefused()
    run_id, _ = start_proof_run(pg_engine, wave_id, TO, ACTOR, "form-1")
    settings = settings_for(pg_engine)
    first = run_proofs(pg_engine, settings, run_id, ACTOR, transport)
    again = run_proofs(pg_engine, settings, run_id, ACTOR, transport)
    assert again == first and len(transport.sent) == 2
    assert changes(pg_engine) == [("wave.test", "done")]


def test_the_same_form_key_finds_the_first_run(pg_engine: Engine) -> None:
    wave_id, _, _ = two_language_wave(pg_engine)
    first, new = start_proof_run(pg_engine, wave_id, TO, ACTOR, "form-1")
    again, repeated = start_proof_run(pg_engine, wave_id, TO, ACTOR, "form-1")
    other, _ = start_proof_run(pg_engine, wave_id, TO, ACTOR, "form-2")
    assert (new, repeated) == (True, False) and again == first and other != first
    assert proof_runs(pg_engine) == 2


@pytest.mark.parametrize("key", ["", "   ", "k" * 65])
def test_a_bad_form_key_is_refused(pg_engine: Engine, key: str) -> None:
    wave_id, _, _ = two_language_wave(pg_engine)
    with pytest.raises(InvalidInput, match="submission key"):
        start_proof_run(pg_engine, wave_id, TO, ACTOR, key)
    assert proof_runs(pg_engine) == 0


def test_a_run_that_cannot_start_is_failed_with_the_reason(pg_engine: Engine) -> None:
    wave_id, _, _ = two_language_wave(pg_engine)
    run_id, _ = start_proof_run(pg_engine, wave_id, ["not an address"], ACTOR, "form-1")
    run = run_proofs(pg_engine, settings_for(pg_engine), run_id, ACTOR, ArabicRefused())
    assert run.status is ProofState.FAILED and run.problem and run.sent == ()
    assert changes(pg_engine) == [("wave.test", "failed")]


def test_without_progress_the_first_refusal_stops_the_send(pg_engine: Engine) -> None:
    _, slug, name = two_language_wave(pg_engine)
    transport = ArabicRefused()
    with pytest.raises(Rejected):  # the CLI's behaviour: the command fails as a whole
        send_proofs(pg_engine, settings_for(pg_engine), slug, name, TO, transport)
