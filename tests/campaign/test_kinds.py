"""A campaign's own email kinds (sender.campaign.kinds): read from its folder, checked
whole before anything is stored, and the check that a wave's kind exists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from campaign_fixtures import add_2020_campaign, the_2020_campaign
from sending_fixtures import campaign_kinds_now, set_campaign_kinds
from sqlalchemy import Engine, select

from sender.campaign.kinds import MAX_TEMPLATE_BYTES, check_kind, parse_kinds
from sender.campaign.plan_file import parse_plan
from sender.campaign.waves import apply_plan, create_wave
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.errors import InvalidInput
from sender.core.models import Wave
from sender.core.vocabulary import AudienceRule

SETTINGS = Settings(secret_key="test")

HTML = """{% extends "layout.html" %}
{% block content %}
<p class="lede">{{ _("Dear %(name)s,", name=recipient.first_name) }}</p>
<h1 class="title">Volunteers' thanks for {{ case.person }}</h1>
{% with button_label="Keep going" %}{% include "_button.html" %}{% endwith %}
{% endblock %}
"""
TEXT = """{% extends "layout.txt" %}
{% block subject %}Thank you from the volunteers{% endblock %}
{% block preheader %}You made {{ case.person }}'s week.{% endblock %}
{% block content %}
Volunteers' thanks for {{ case.person }}: {{ recipient.action_url }}
{% endblock %}
"""


def _folder(tmp_path: Path, **templates: str) -> Path:
    """A campaign folder whose templates/ holds `templates` (file name -> source)."""
    folder = tmp_path / "w4r-2026"
    (folder / "templates").mkdir(parents=True)
    for name, source in templates.items():
        (folder / "templates" / name.replace("__", ".")).write_text(source, encoding="utf-8")
    return folder


def test_a_campaign_kind_is_stored_with_its_audience_and_template_sources(
    tmp_path: Path,
) -> None:
    folder = _folder(tmp_path, volunteers__html=HTML, volunteers__txt=TEXT)
    raw = {"volunteers": {"audience": "acted", "description": "Thanks,\n  from the team"}}
    kinds = parse_kinds(raw, folder)
    assert kinds == {
        "volunteers": {
            "audience": "acted",
            "description": "Thanks, from the team",
            "html": HTML,
            "text": TEXT,
        }
    }
    assert parse_kinds(None, folder) == {}  # no `kinds:`: the shipped kinds only


def test_a_shipped_kind_may_get_the_campaigns_own_templates_and_keeps_its_audience(
    tmp_path: Path,
) -> None:
    folder = _folder(tmp_path, case_email__html=HTML, case_email__txt=TEXT)
    kinds = parse_kinds({"case_email": None}, folder)
    assert kinds["case_email"]["audience"] == "all_assigned"
    assert kinds["case_email"]["html"] == HTML
    moved = parse_kinds({"case_email": {"audience": "not_acted"}}, folder)
    assert moved["case_email"]["audience"] == "not_acted"


@pytest.mark.parametrize(
    ("raw", "files", "message"),
    [
        (
            {"good_news_2026": {"audience": "case_assigned"}},
            {"good_news_2026__txt": TEXT},
            "campaign.yaml: kinds.good_news_2026: templates/good_news_2026.html is missing",
        ),
        (
            {"good_news_2026": {"audience": "case_assigned"}},
            {"good_news_2026__html": HTML},
            "campaign.yaml: kinds.good_news_2026: templates/good_news_2026.txt is missing",
        ),
        (
            {"volunteers": {"audience": "foo"}},
            {"volunteers__html": HTML, "volunteers__txt": TEXT},
            "campaign.yaml: kinds.volunteers.audience: unknown rule 'foo' (one of all_assigned,",
        ),
        (
            {"volunteers": {}},
            {"volunteers__html": HTML, "volunteers__txt": TEXT},
            "campaign.yaml: kinds.volunteers.audience: a new kind needs its audience rule",
        ),
        (
            {"volunteers": {"audience": "acted", "colour": "red"}},
            {"volunteers__html": HTML, "volunteers__txt": TEXT},
            "campaign.yaml: kinds.volunteers: unknown field 'colour'",
        ),
        (
            {"Thank You": {"audience": "acted"}},
            {},
            "campaign.yaml: kinds: 'Thank You' is not a kind name",
        ),
        (
            {"layout": {"audience": "acted"}},
            {"layout__html": HTML, "layout__txt": TEXT},
            "campaign.yaml: kinds.layout: layout is a shared template, not a kind",
        ),
        (["thank_you"], {}, "campaign.yaml: kinds: expected a mapping"),
        (
            {"volunteers": {"audience": "acted"}},
            {"volunteers__html": "{% if recipient.email %}x{% endif %}", "volunteers__txt": TEXT},
            "campaign.yaml: kinds.volunteers: templates/volunteers.html: volunteers.html, line 1:"
            " unknown recipient field 'email'",
        ),
        (
            {"volunteers": {"audience": "acted"}},
            {"volunteers__html": HTML, "volunteers__txt": "{% block subject %}"},
            "campaign.yaml: kinds.volunteers: templates/volunteers.txt: volunteers.txt, line 1:",
        ),
    ],
)
def test_bad_kinds_are_refused_naming_the_file_and_the_field(
    tmp_path: Path, raw: Any, files: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_kinds(raw, _folder(tmp_path, **files))
    assert str(refused.value).startswith(message), str(refused.value)


def test_a_template_that_is_not_utf8_or_too_big_is_refused(tmp_path: Path) -> None:
    folder = _folder(tmp_path, volunteers__txt=TEXT)
    (folder / "templates" / "volunteers.html").write_bytes(b"caf\xe9")
    with pytest.raises(InvalidInput, match=r"kinds.volunteers: templates/volunteers.html is not"):
        parse_kinds({"volunteers": {"audience": "acted"}}, folder)
    (folder / "templates" / "volunteers.html").write_text("x" * (MAX_TEMPLATE_BYTES + 1))
    with pytest.raises(InvalidInput, match=r"templates/volunteers.html is 200 KB"):
        parse_kinds({"volunteers": {"audience": "acted"}}, folder)


def test_a_folder_with_a_missing_template_stores_nothing(
    any_engine: Engine, tmp_path: Path
) -> None:
    """As `campaigns create` does it: parsed first, stored after, in one transaction."""
    folder = _folder(tmp_path, volunteers__html=HTML, volunteers__txt=TEXT)
    set_campaign_kinds(
        any_engine, SETTINGS, parse_kinds({"volunteers": {"audience": "acted"}}, folder)
    )
    (folder / "templates" / "volunteers.txt").unlink()
    with (
        pytest.raises(InvalidInput, match=r"templates/volunteers\.txt is missing"),
        session_scope(any_engine) as session,
    ):
        campaign = the_2020_campaign(session)
        campaign.name = "renamed"  # a change made before the kinds are read
        campaign.kinds = parse_kinds({"volunteers": {"audience": "acted"}}, folder)
    assert campaign_kinds_now(any_engine, SETTINGS)["volunteers"]["text"] == TEXT
    with session_scope(any_engine) as session:
        assert the_2020_campaign(session).name == "Write for Rights 2020"


def _wave(name: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "start": "2020-12-01T00:00:00Z",
        "end": "2020-12-03T00:00:00Z",
        "subjects": {"en": "Hello {{ first_name }}"},
        **extra,
    }


def _stored(engine: Engine) -> dict[str, tuple[str, str]]:
    with session_scope(engine) as session:
        return {w.name: (w.kind, w.audience) for w in session.scalars(select(Wave))}


def test_a_wave_of_an_unknown_kind_is_refused_at_apply_naming_the_wave(
    any_engine: Engine,
) -> None:
    add_2020_campaign(any_engine)
    plan = parse_plan({"waves": [_wave("first", "case_email"), _wave("news", "newsletter")]})
    with pytest.raises(InvalidInput) as refused:
        apply_plan(any_engine, plan)
    message = str(refused.value)
    assert message.startswith("wave 'news': campaign w4r-2020 has no email kind 'newsletter'")
    assert "(known: action_reminder, case_email, good_news, last_chance, thank_you)" in message
    assert _stored(any_engine) == {}  # the good wave was not stored either
    spec = parse_plan({"waves": [_wave("news", "newsletter")]}).waves[0]
    with pytest.raises(InvalidInput, match="wave 'news': campaign w4r-2020 has no email kind"):
        create_wave(any_engine, spec)
    assert _stored(any_engine) == {}


def test_waves_get_their_kinds_default_audience_the_campaigns_own_kinds_included(
    any_engine: Engine, tmp_path: Path
) -> None:
    folder = _folder(
        tmp_path,
        volunteers__html=HTML,
        volunteers__txt=TEXT,
        action_reminder__html=HTML,
        action_reminder__txt=TEXT,
    )
    raw = {"volunteers": {"audience": "acted"}, "action_reminder": {"audience": "opened_not_acted"}}
    set_campaign_kinds(any_engine, SETTINGS, parse_kinds(raw, folder))
    waves = [
        _wave("first", "case_email"),
        _wave("thanks", "thank_you"),
        _wave("news", "good_news"),
        _wave("team", "volunteers"),
        _wave("nudge", "action_reminder"),
        _wave("all", "volunteers", audience="all_assigned"),
    ]
    apply_plan(any_engine, parse_plan({"waves": waves}))
    assert _stored(any_engine) == {
        "first": ("case_email", "all_assigned"),
        "thanks": ("thank_you", "acted"),
        "news": ("good_news", "case_assigned"),
        "team": ("volunteers", "acted"),
        "nudge": ("action_reminder", "opened_not_acted"),
        "all": ("volunteers", "all_assigned"),
    }
    again = apply_plan(any_engine, parse_plan({"waves": waves}))
    assert len(again.unchanged) == 6 and not again.updated  # idempotent, defaults included


def test_check_kind_answers_for_one_campaign(any_engine: Engine) -> None:
    with session_scope(any_engine) as session:
        campaign = the_2020_campaign(session)
        assert check_kind(campaign, "thank_you").audience is AudienceRule.ACTED
        assert check_kind(campaign, "good_news").builtin
        with pytest.raises(InvalidInput, match="a wave: campaign w4r-2020 has no email kind 'x'"):
            check_kind(campaign, "x")
