"""The preview workspace: the variant grid, one variant sandboxed, "as seen by", proofs."""

from __future__ import annotations

from pathlib import Path

from flask.testing import FlaskClient
from ops_fixtures import EMAILS
from sqlalchemy import Engine, func, select
from wave_workspace_fixtures import CAMPAIGNER, changes, post, seed_assigned
from web_fixtures import add_staff, audit_rows, make_app, sign_in

from sender.core.db import session_scope
from sender.core.models import Case, Message, Wave
from sender.staff.roles import Role


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


def test_a_proof_goes_to_staff_for_every_variant(pg_engine: Engine, tmp_path: Path) -> None:
    wave_id = arabic_wave(pg_engine)
    client = client_in(pg_engine, Role.CAMPAIGNER, tmp_path)
    before = messages(pg_engine)
    to = "desk@staff.example.org, editor@staff.example.org"
    assert post(client, f"/workspace/preview/{wave_id}/proof", to=to) == 302
    assert len(list(tmp_path.rglob("*.eml"))) == 8  # four variants, two addresses each
    assert messages(pg_engine) == before  # a proof is recorded as nobody's message
    assert audit_rows(pg_engine, "wave.test")[0].detail == "4 variants to 2 addresses"


def test_a_proof_to_a_supporter_is_refused(pg_engine: Engine, tmp_path: Path) -> None:
    wave_id = arabic_wave(pg_engine)
    client = client_in(pg_engine, Role.CAMPAIGNER, tmp_path)
    assert post(client, f"/workspace/preview/{wave_id}/proof", to=EMAILS[0]) == 302
    page = client.get(f"/workspace/preview/{wave_id}").get_data(as_text=True)
    assert "proofs go to staff only" in page
    assert list(tmp_path.rglob("*.eml")) == []
    assert changes(pg_engine) == [("wave.test", "failed")]


def test_a_viewer_sends_no_proof(pg_engine: Engine, tmp_path: Path) -> None:
    wave_id = arabic_wave(pg_engine)
    client = client_in(pg_engine, Role.VIEWER, tmp_path)
    assert "Send every variant" not in client.get(f"/workspace/preview/{wave_id}").get_data(
        as_text=True
    )
    assert post(client, f"/workspace/preview/{wave_id}/proof", to="desk@staff.example.org") == 403
    assert list(tmp_path.rglob("*")) == []
    assert changes(pg_engine) == [("wave.test", "refused")]
