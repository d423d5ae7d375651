"""The preview workspace: the variant grid, one variant sandboxed, "as seen by", proofs."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from ops_fixtures import EMAILS
from proof_fixtures import ArabicRefused
from sqlalchemy import Engine, func, select
from wave_workspace_fixtures import CAMPAIGNER, changes, post, seed_assigned
from web_fixtures import add_staff, audit_rows, csrf_token, make_app, sign_in
from werkzeug.test import TestResponse as Response

from sender.core.db import session_scope
from sender.core.models import Case, Message, ProofRun, Wave
from sender.core.vocabulary import ProofState
from sender.devtools.waiting import wait_until
from sender.send.proof_runs import ProofRunView, read_proof_run
from sender.staff.roles import Role
from sender.web.workspace import preview


def client_in(engine: Engine, role: Role, outbox: Path) -> FlaskClient:
    add_staff(engine, role, email=CAMPAIGNER)
    client = make_app(engine, outbox_dir=outbox).test_client()
    assert sign_in(client, email=CAMPAIGNER) == 302
    return client


def arabic_wave(engine: Engine) -> int:
    """The seeded draft with an Arabic subject beside the English one."""
    seeded = seed_assigned(engine)
    with session_scope(engine) as session:
        wave = session.get_one(Wave, seeded.draft_wave_id)
        wave.subjects = {"en": "Write today, {{ first_name }}", "ar": "اكتبوا اليوم"}
        wave.preheaders = {"en": "One letter, two minutes", "ar": "رسالة واحدة"}
    return seeded.draft_wave_id


def messages(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(session.scalar(select(func.count()).select_from(Message)) or 0)


def test_the_grid_lists_every_case_and_language(pg_engine: Engine, tmp_path: Path) -> None:
    wave_id = arabic_wave(pg_engine)
    client = client_in(pg_engine, Role.CAMPAIGNER, tmp_path)
    html = client.get(f"/workspace/preview/{wave_id}").get_data(as_text=True)
    assert html.count('data-testid="variant"') == 4  # two cases, two languages
    assert f"/workspace/preview/{wave_id}/bird/ar" in html
    assert 'data-testid="launch-ok"' in html


def test_the_grid_shows_what_stops_a_launch(pg_engine: Engine, tmp_path: Path) -> None:
    wave_id = arabic_wave(pg_engine)
    with session_scope(pg_engine) as session:
        session.scalars(select(Case).where(Case.slug == "popi")).one().content = {}
    client = client_in(pg_engine, Role.CAMPAIGNER, tmp_path)
    html = client.get(f"/workspace/preview/{wave_id}").get_data(as_text=True)
    assert 'data-testid="launch-blocked"' in html and "case popi: no content" in html
    assert f"/workspace/preview/{wave_id}/popi/en" not in html  # an error has nothing to open


def test_one_variant_is_sandboxed_at_two_widths(pg_engine: Engine, tmp_path: Path) -> None:
    wave_id = arabic_wave(pg_engine)
    client = client_in(pg_engine, Role.CAMPAIGNER, tmp_path)
    response = client.get(f"/workspace/preview/{wave_id}/bird/ar")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.count('<iframe sandbox=""') == 2 and 'width="640"' in html and 'width="375"' in html
    assert "dir=&#34;rtl&#34;" in html or "dir=&quot;rtl&quot;" in html  # escaped into srcdoc
    assert 'data-testid="subject">اكتبوا اليوم<' in html
    assert 'data-testid="preheader">رسالة واحدة<' in html
    assert 'data-testid="text-part"' in html


def test_as_seen_by_a_supporter_and_an_unknown_one(pg_engine: Engine, tmp_path: Path) -> None:
    wave_id = arabic_wave(pg_engine)
    client = client_in(pg_engine, Role.CAMPAIGNER, tmp_path)
    seen = client.get(f"/workspace/preview/{wave_id}/bird/en?as={EMAILS[4]}")
    assert seen.status_code == 200 and "Name4" in seen.get_data(as_text=True)
    unknown = client.get(f"/workspace/preview/{wave_id}/bird/en?as=nobody@example.net")
    assert unknown.status_code == 422
    assert "no supporter with email" in unknown.get_data(as_text=True)
    assert client.get(f"/workspace/preview/{wave_id}/bird/xx").status_code == 404


def proof_over(engine: Engine, run_id: int) -> ProofRunView:
    wait_until(lambda: read_proof_run(engine, run_id).finished, 30.0, f"proof #{run_id} to end")
    return read_proof_run(engine, run_id)


def ask_proof(client: FlaskClient, wave_id: int, to: str, key: str = "form-1") -> Response:
    token = csrf_token(client, "/dashboard/account")
    data = {"csrf_token": token, "to": to, "key": key}
    return client.post(f"/workspace/preview/{wave_id}/proof", data=data)


def run_id_of(response: Response) -> int:
    assert response.status_code == 303, response.status_code
    return int(response.headers["Location"].rstrip("/").split("/")[-1])


def test_a_proof_goes_to_staff_for_every_variant(pg_engine: Engine, tmp_path: Path) -> None:
    wave_id = arabic_wave(pg_engine)
    client = client_in(pg_engine, Role.CAMPAIGNER, tmp_path)
    before = messages(pg_engine)
    grid = client.get(f"/workspace/preview/{wave_id}").get_data(as_text=True)
    assert 'name="key" value="' in grid  # one submission key per form shown
    response = ask_proof(client, wave_id, "desk@staff.example.org, editor@staff.example.org")
    run = proof_over(pg_engine, run_id_of(response))
    assert run.status is ProofState.DONE, run.problem
    assert sorted(run.sent) == ["bird/ar", "bird/en", "popi/ar", "popi/en"] and not run.failed
    assert len(list(tmp_path.rglob("*.eml"))) == 8  # four variants, two addresses each
    assert messages(pg_engine) == before  # a proof is recorded as nobody's message
    assert audit_rows(pg_engine, "wave.test")[0].detail == "4 variants to 2 addresses"

    page = client.get(response.headers["Location"]).get_data(as_text=True)  # a reload finds it
    assert "4 variants sent to 2 staff addresses" in page and 'data-state="done"' in page
    fragment = client.get(response.headers["Location"] + "/progress").get_data(as_text=True)
    assert 'data-testid="proof-done"' in fragment and "hx-get" not in fragment  # polling stops


def test_the_post_answers_before_any_proof_is_sent(
    pg_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wave_id = arabic_wave(pg_engine)
    client = client_in(pg_engine, Role.CAMPAIGNER, tmp_path)
    release = threading.Event()
    real = preview.run_proofs

    def held(*args: Any) -> ProofRunView:
        release.wait(30)  # the send waits until the request has answered
        return real(*args)

    monkeypatch.setattr(preview, "run_proofs", held)
    response = ask_proof(client, wave_id, "desk@staff.example.org")
    run_id = run_id_of(response)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'data-state="queued"' in page and "hx-get" in page and "updates by itself" in page
    assert list(tmp_path.rglob("*.eml")) == []
    release.set()
    assert proof_over(pg_engine, run_id).status is ProofState.DONE


def test_a_double_submit_sends_once(pg_engine: Engine, tmp_path: Path) -> None:
    wave_id = arabic_wave(pg_engine)
    client = client_in(pg_engine, Role.CAMPAIGNER, tmp_path)
    first = run_id_of(ask_proof(client, wave_id, "desk@staff.example.org", key="same-form"))
    second = run_id_of(ask_proof(client, wave_id, "desk@staff.example.org", key="same-form"))
    assert first == second
    proof_over(pg_engine, first)
    assert len(list(tmp_path.rglob("*.eml"))) == 4
    assert changes(pg_engine) == [("wave.test", "done")]
    with session_scope(pg_engine) as session:
        assert session.scalar(select(func.count()).select_from(ProofRun)) == 1


def test_a_failing_variant_is_shown_with_its_reason(
    pg_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wave_id = arabic_wave(pg_engine)
    monkeypatch.setattr(preview, "transport_for", lambda settings: ArabicRefused())
    client = client_in(pg_engine, Role.CAMPAIGNER, tmp_path)
    response = ask_proof(client, wave_id, "desk@staff.example.org")
    run = proof_over(pg_engine, run_id_of(response))
    assert sorted(run.sent) == ["bird/en", "popi/en"]
    assert sorted(run.failed) == ["bird/ar", "popi/ar"]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "2 variants sent to 1 staff addresses; 2 failed" in page
    assert "the subject was refused" in page and "bird/ar" in page


def test_a_proof_to_a_supporter_is_refused(pg_engine: Engine, tmp_path: Path) -> None:
    wave_id = arabic_wave(pg_engine)
    client = client_in(pg_engine, Role.CAMPAIGNER, tmp_path)
    response = ask_proof(client, wave_id, EMAILS[0])
    run = proof_over(pg_engine, run_id_of(response))
    assert run.status is ProofState.FAILED and run.sent == ()
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "proofs go to staff only" in page
    assert list(tmp_path.rglob("*.eml")) == []
    assert changes(pg_engine) == [("wave.test", "failed")]


def test_a_proof_without_an_address_or_key_is_refused(pg_engine: Engine, tmp_path: Path) -> None:
    wave_id = arabic_wave(pg_engine)
    client = client_in(pg_engine, Role.CAMPAIGNER, tmp_path)
    assert ask_proof(client, wave_id, " , ").status_code == 302
    page = client.get(f"/workspace/preview/{wave_id}").get_data(as_text=True)
    assert "give at least one staff address" in page
    assert ask_proof(client, wave_id, "desk@staff.example.org", key="").status_code == 302
    page = client.get(f"/workspace/preview/{wave_id}").get_data(as_text=True)
    assert "submission key" in page
    with session_scope(pg_engine) as session:
        assert session.scalar(select(func.count()).select_from(ProofRun)) == 0
    assert list(tmp_path.rglob("*.eml")) == []


def test_a_proof_page_of_another_wave_is_not_found(pg_engine: Engine, tmp_path: Path) -> None:
    seeded = seed_assigned(pg_engine)
    client = client_in(pg_engine, Role.CAMPAIGNER, tmp_path)
    run_id = run_id_of(ask_proof(client, seeded.draft_wave_id, "desk@staff.example.org"))
    proof_over(pg_engine, run_id)
    other = seeded.draft_wave_id + 1000
    assert client.get(f"/workspace/preview/{other}/proofs/{run_id}").status_code == 404
    assert client.get(f"/workspace/preview/{seeded.draft_wave_id}/proofs/999999").status_code == 404


def test_a_viewer_sends_no_proof(pg_engine: Engine, tmp_path: Path) -> None:
    wave_id = arabic_wave(pg_engine)
    client = client_in(pg_engine, Role.VIEWER, tmp_path)
    assert "Send every variant" not in client.get(f"/workspace/preview/{wave_id}").get_data(
        as_text=True
    )
    assert post(client, f"/workspace/preview/{wave_id}/proof", to="desk@staff.example.org") == 403
    assert list(tmp_path.rglob("*")) == []
    assert changes(pg_engine) == [("wave.test", "refused")]
    with session_scope(pg_engine) as session:
        assert session.scalar(select(func.count()).select_from(ProofRun)) == 0
