"""The wave form's subject test, the launch page's split and the hand pick on the wave page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from markupsafe import escape
from ops_fixtures import seed
from sqlalchemy import Engine, select
from wave_workspace_fixtures import (
    changes,
    client_as,
    counted_launch_page,
    post,
    seed_assigned,
    wave_count,
)
from web_fixtures import audit_rows, csrf_token

from sender.core.clock import SystemClock
from sender.core.db import session_scope
from sender.core.models import Campaign, SubjectTest, Wave
from sender.core.vocabulary import SubjectState
from sender.staff.roles import Role

NEW = "/workspace/waves/new/w4r-2020"


def with_languages(engine: Engine, *languages: str) -> None:
    with session_scope(engine) as session:
        session.scalars(select(Campaign)).one().languages = list(languages)


def filled(client: FlaskClient, **fields: str) -> dict[str, str]:
    """A good two-variant wave in English and Arabic, with `fields` typed over it."""
    start = SystemClock().now() + timedelta(hours=2)
    return {
        "csrf_token": csrf_token(client, NEW),
        "name": "autumn",
        "kind": "case_email",
        "start": f"{start:%Y-%m-%dT%H:%M}",
        "end": f"{start + timedelta(days=1):%Y-%m-%dT%H:%M}",
        "subject_en": "Write today",
        "subject_ar": "اكتبوا اليوم",
        "variant_count": "2",
        "variant_0_name": "A",
        "variant_1_name": "B",
        "variant_1_subject_en": "Nassima needs you",
        "variant_1_subject_ar": "نسيمة تحتاجكم",
        "test_share": "20",
        "test_seed": "7",
        "test_wait_hours": "2.5",
        "test_metric": "actions",
        "test_confidence": "90",
        "test_min_sends": "50",
        "test_default": "B",
        "action": "save",
        **fields,
    }


@pytest.fixture
def campaigner(pg_engine: Engine) -> FlaskClient:
    seed(pg_engine, SystemClock().now())
    with_languages(pg_engine, "en", "ar")
    return client_as(pg_engine, Role.CAMPAIGNER)


def test_a_wave_is_created_with_two_variants(pg_engine: Engine, campaigner: FlaskClient) -> None:
    response = campaigner.post(NEW, data=filled(campaigner))
    assert response.status_code == 302
    with session_scope(pg_engine) as session:
        wave = session.scalars(select(Wave).where(Wave.name == "autumn")).one()
        assert wave.subject_test == {
            "variants": [
                {"name": "A", "subjects": {}, "preheaders": {}},
                {
                    "name": "B",
                    "subjects": {"en": "Nassima needs you", "ar": "نسيمة تحتاجكم"},
                    "preheaders": {},
                },
            ],
            "default": "B",
            "share": 0.2,
            "seed": 7,
            "metric": "actions",
            "wait_minutes": 150,
            "confidence": 0.9,
            "min_sends": 50,
        }
    assert changes(pg_engine) == [("wave.create", "done")]
    assert "subject test A/B at 20%" in (audit_rows(pg_engine, "wave.create")[0].detail or "")


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"variant_count": "1"}, "variants", "2 to 4 variants, not 1"),
        (
            {
                "variant_count": "5",
                **{f"variant_{i}_subject_en": f"S{i}" for i in range(2, 5)},
                **{f"variant_{i}_subject_ar": f"ع{i}" for i in range(2, 5)},
            },
            "variants",
            "2 to 4 variants, not 5",
        ),
        ({"variant_count": "many"}, "variants", "is not a number of variants"),
        ({"variant_1_subject_ar": ""}, "variant_1", "`subjects.ar` is missing"),
        ({"variant_0_preheader_en": "Only English"}, "variant_0", "`preheaders.ar` is missing"),
        ({"variant_1_subject_en": "", "variant_1_subject_ar": ""}, "variants", "only one"),
        ({"variant_1_name": "B!"}, "variant_1", "should match pattern"),
        ({"test_share": "a fifth"}, "test_share", "is not a number"),
        ({"test_share": "60"}, "test_share", "less than or equal to 0.5"),
        ({"test_share": "0"}, "test_share", "greater than 0"),
        ({"test_seed": "1.5"}, "test_seed", "valid integer"),
        ({"test_wait_hours": "0"}, "test_wait_hours", "greater than 0"),
        ({"test_wait_hours": "400"}, "test_wait_hours", "less than or equal to 168"),
        ({"test_metric": "opens"}, "test_metric", "human_clicks"),
        ({"test_confidence": "100"}, "test_confidence", "less than 1"),
        ({"test_min_sends": "0"}, "test_min_sends", "greater than or equal to 1"),
        ({"test_default": "C"}, "variants", "default 'C' is not a variant"),
    ],
)
def test_a_bad_subject_test_is_named_beside_its_field_and_nothing_is_saved(
    pg_engine: Engine,
    campaigner: FlaskClient,
    fields: dict[str, str],
    field: str,
    message: str,
) -> None:
    before = wave_count(pg_engine)
    response = campaigner.post(NEW, data=filled(campaigner, **fields))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f'data-testid="err-{field}">' in html and str(escape(message)) in html, html
    assert "Nothing was saved" in html
    assert 'value="autumn"' in html  # what was typed is kept
    assert wave_count(pg_engine) == before
    assert [c for c in changes(pg_engine) if c[1] == "done"] == []


def test_the_variant_buttons_re_render_the_form_and_save_nothing(
    pg_engine: Engine, campaigner: FlaskClient
) -> None:
    before = wave_count(pg_engine)
    form = filled(campaigner, variant_count="0", action="add_variant")
    html = campaigner.post(NEW, data=form).get_data(as_text=True)
    assert 'data-testid="variant-A"' in html and 'data-testid="variant-B"' in html
    assert 'data-testid="variant-C"' not in html
    html = campaigner.post(NEW, data={**form, "variant_count": "3"}).get_data(as_text=True)
    assert 'data-testid="variant-D"' in html and ">Add variant<" not in html  # four at most
    removed = {**form, "variant_count": "2", "action": "remove_variant"}
    html = campaigner.post(NEW, data=removed).get_data(as_text=True)
    assert 'data-testid="variant-A"' not in html and "Add a subject test" in html
    assert 'value="Write today"' in html  # the typed fields survive every step
    assert wave_count(pg_engine) == before
    assert changes(pg_engine) == []


def test_the_inbox_preview_shows_each_variant_per_language(campaigner: FlaskClient) -> None:
    form = filled(campaigner, variant_0_preheader_en="Two minutes", variant_0_preheader_ar="")
    for html in (
        campaigner.post("/workspace/waves/preview-lines/w4r-2020", data=form).get_data(
            as_text=True
        ),
        campaigner.post(NEW, data={**form, "action": "preview"}).get_data(as_text=True),
    ):
        lines = " ".join(html.split())
        english = lines.split('data-testid="inbox-en"')[1].split("</ul>")[0]
        sender = '<span class="from">Write for Rights</span>'  # the campaign's From name
        assert f'<strong>A</strong> {sender} <span dir="ltr">Write today</span>' in english
        assert "– Two minutes" in english
        assert f'<strong>B</strong> {sender} <span dir="ltr">Nassima needs you</span>' in english
        arabic = lines.split('data-testid="inbox-ar"')[1].split("</ul>")[0]
        assert '<span dir="rtl">نسيمة تحتاجكم</span>' in arabic


def test_an_edit_opens_with_the_test_and_keeps_it(
    pg_engine: Engine, campaigner: FlaskClient
) -> None:
    assert campaigner.post(NEW, data=filled(campaigner)).status_code == 302
    with session_scope(pg_engine) as session:
        wave = session.scalars(select(Wave).where(Wave.name == "autumn")).one()
        wave_id, stored = wave.id, dict(wave.subject_test)
    html = campaigner.get(f"/workspace/waves/{wave_id}/edit").get_data(as_text=True)
    assert 'name="variant_1_subject_en" value="Nassima needs you"' in html
    assert 'name="test_wait_hours" value="2.5"' in html
    assert 'name="test_confidence" value="90"' in html
    assert '<option value="B" selected>' in html and '<option value="actions" selected>' in html
    version = html.split('name="version" value="')[1].split('"')[0]
    form = filled(campaigner, version=version, test_share="30")
    assert campaigner.post(f"/workspace/waves/{wave_id}/edit", data=form).status_code == 302
    with session_scope(pg_engine) as session:
        assert session.get_one(Wave, wave_id).subject_test == {**stored, "share": 0.3}


def test_the_launch_page_splits_the_audience_between_the_variants(pg_engine: Engine) -> None:
    seeded = seed_assigned(pg_engine)
    with session_scope(pg_engine) as session:
        draft = session.get_one(Wave, seeded.draft_wave_id)
        draft.subjects = {"en": "Write today", "ar": "اكتبوا اليوم"}
        draft.subject_test = two_variants(share=0.5)
    client = client_as(pg_engine, Role.CAMPAIGNER)
    html = counted_launch_page(client, seeded.draft_wave_id)
    text = " ".join(html.split())
    # bird/ar 2 and popi/en 4 at 50 %: one and two drawn; each
    # stratum deals from its own turn (its rank), so bird's one goes to B.
    assert "Subject test: 3 now, 3 wait for the winner" in text
    assert "<td>variant A (now)</td><td>1</td>" in text
    assert "<td>variant B (now)</td><td>2</td>" in text
    assert "<td>the winner (later)</td><td>3</td>" in text
    assert 'data-testid="variant-gaps"' not in text


def test_the_launch_page_and_the_launch_refuse_a_variant_missing_a_language(
    pg_engine: Engine,
) -> None:
    seeded = seed_assigned(pg_engine)
    with session_scope(pg_engine) as session:
        draft = session.get_one(Wave, seeded.draft_wave_id)
        draft.subjects = {"en": "Write today", "ar": "اكتبوا اليوم"}
        draft.subject_test = two_variants(b_subjects={"en": "Nassima needs you"})
    client = client_as(pg_engine, Role.CAMPAIGNER)
    page = counted_launch_page(client, seeded.draft_wave_id)
    assert "The launch will be refused" in page and "variant B: `subjects.ar` is missing" in page
    assert post(client, f"/workspace/waves/{seeded.draft_wave_id}/launch") == 302
    html = client.get(f"/workspace/waves/{seeded.draft_wave_id}").get_data(as_text=True)
    assert "templates have problems" in html and "variant B" in html
    assert "`subjects.ar` is missing" in html
    with session_scope(pg_engine) as session:
        assert session.get_one(Wave, seeded.draft_wave_id).status == "draft"
    assert changes(pg_engine) == [("wave.launch", "failed")]


def two_variants(share: float = 0.2, b_subjects: dict[str, str] | None = None) -> dict[str, object]:
    return {
        "variants": [
            {"name": "A", "subjects": {}, "preheaders": {}},
            {
                "name": "B",
                "subjects": b_subjects or {"en": "Nassima needs you", "ar": "نسيمة تحتاجكم"},
                "preheaders": {},
            },
        ],
        "default": "A",
        "share": share,
        "seed": 0,
        "metric": "human_clicks",
        "wait_minutes": 240,
        "confidence": 0.95,
        "min_sends": 100,
    }


def running_test(engine: Engine, started: bool = True) -> int:
    """The seed's sending wave as a subject test whose test share went out."""
    seeded = seed(engine, SystemClock().now())
    with session_scope(engine) as session:
        session.get_one(Wave, seeded.wave_id).subject_test = two_variants()
        if started:
            session.add(
                SubjectTest(
                    wave_id=seeded.wave_id,
                    state=SubjectState.TESTING,
                    started_at=SystemClock().now() - timedelta(minutes=40),
                )
            )
    return seeded.wave_id


def pick_state(engine: Engine, wave_id: int) -> tuple[str | None, str | None, str | None]:
    with session_scope(engine) as session:
        found = session.get(SubjectTest, wave_id)
        return (found.state, found.winner, found.decided_by) if found else (None, None, None)


def test_the_wave_page_shows_the_test_and_a_campaigner_picks_the_winner(
    pg_engine: Engine,
) -> None:
    wave_id = running_test(pg_engine)
    client = client_as(pg_engine, Role.CAMPAIGNER)
    html = client.get(f"/workspace/waves/{wave_id}").get_data(as_text=True)
    assert 'data-testid="subject-tests"' in html and "subject test A/B on human_clicks" in html
    assert "test share sending" in html  # a test batch is still to go: no decision time yet
    assert f"/workspace/waves/{wave_id}/pick" in html
    assert post(client, f"/workspace/waves/{wave_id}/pick", variant="B") == 302
    assert pick_state(pg_engine, wave_id) == ("decided", "B", "amara@example.org")
    html = client.get(f"/workspace/waves/{wave_id}").get_data(as_text=True)
    assert "B picked" in html and "B won" in html
    assert f"/workspace/waves/{wave_id}/pick" not in html  # decided: nothing left to pick
    assert changes(pg_engine) == [("wave.pick", "done")]


def test_a_second_pick_and_a_bad_one_are_refused_and_change_nothing(pg_engine: Engine) -> None:
    wave_id = running_test(pg_engine)
    client = client_as(pg_engine, Role.CAMPAIGNER)
    assert post(client, f"/workspace/waves/{wave_id}/pick", variant="Z") == 302
    assert pick_state(pg_engine, wave_id) == ("testing", None, None)
    assert "has no variant &#39;Z&#39;" in client.get(f"/workspace/waves/{wave_id}").get_data(
        as_text=True
    )
    assert post(client, f"/workspace/waves/{wave_id}/pick", variant="B") == 302
    assert post(client, f"/workspace/waves/{wave_id}/pick", variant="A") == 302
    assert pick_state(pg_engine, wave_id) == ("decided", "B", "amara@example.org")
    html = client.get(f"/workspace/waves/{wave_id}").get_data(as_text=True)
    assert "the test is decided already (B: picked by amara@example.org)" in html
    assert changes(pg_engine) == [
        ("wave.pick", "failed"),
        ("wave.pick", "done"),
        ("wave.pick", "failed"),
    ]


def test_a_pick_before_the_test_share_is_sent_is_refused(pg_engine: Engine) -> None:
    wave_id = running_test(pg_engine, started=False)
    client = client_as(pg_engine, Role.CAMPAIGNER)
    assert post(client, f"/workspace/waves/{wave_id}/pick", variant="B") == 302
    assert pick_state(pg_engine, wave_id) == (None, None, None)
    html = client.get(f"/workspace/waves/{wave_id}").get_data(as_text=True)
    assert "its test share is not sent yet" in html
    assert changes(pg_engine) == [("wave.pick", "failed")]


def test_a_viewer_sees_the_test_but_cannot_pick(pg_engine: Engine) -> None:
    wave_id = running_test(pg_engine)
    client = client_as(pg_engine, Role.VIEWER)
    html = client.get(f"/workspace/waves/{wave_id}").get_data(as_text=True)
    assert 'data-testid="subject-tests"' in html and "/pick" not in html
    assert post(client, f"/workspace/waves/{wave_id}/pick", variant="B") == 403
    assert pick_state(pg_engine, wave_id) == ("testing", None, None)
    assert changes(pg_engine) == [("wave.pick", "refused")]
