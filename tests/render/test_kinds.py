"""Kinds as data on the rendering side (sender.render.kinds): the shipped list, a
campaign's own kinds rendered from their stored sources, and the launch check."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import render_fixtures as fx
from campaign_fixtures import the_2020_campaign
from sqlalchemy import Engine

from sender.core import db
from sender.core.errors import TemplateProblem
from sender.core.models import Case, Wave
from sender.core.vocabulary import AudienceRule, WaveKind
from sender.render.kinds import builtin_kinds, template_sources
from sender.render.merge import personalise
from sender.render.preview import check_all, html_warnings
from sender.render.renderer import Renderer, WaveContent
from sender.render.templating import DEFAULT_TEMPLATES_DIR
from sender.send.batch import CampaignIdentity
from sender.send.batch_store import kinds_digest
from sender.send.pipeline import Sender

HTML = """{% extends "layout.html" %}
{% block content %}
<h1 class="title">From the volunteers, for {{ case.person }}</h1>
{% include "_case_block.html" %}
{% with button_label="Keep going" %}{% include "_button.html" %}{% endwith %}
{% endblock %}
"""
TEXT = """{% extends "layout.txt" %}
{% block subject %}The volunteers thank you, {{ recipient.first_name }}{% endblock %}
{% block preheader %}About {{ case.person }}.{% endblock %}
{% block content %}
From the volunteers, for {{ case.person }}: {{ recipient.action_url }}
{% endblock %}
"""
STORED = {"volunteers": {"audience": "acted", "description": "", "html": HTML, "text": TEXT}}


def test_the_shipped_kinds_are_the_data_file_and_each_has_its_pair() -> None:
    kinds = builtin_kinds(DEFAULT_TEMPLATES_DIR)
    assert {name: info.audience for name, info in kinds.items()} == {
        "case_email": AudienceRule.ALL_ASSIGNED,
        "action_reminder": AudienceRule.NOT_ACTED,
        "last_chance": AudienceRule.NOT_ACTED,
        "thank_you": AudienceRule.ACTED,
        "good_news": AudienceRule.CASE_ASSIGNED,
    }
    assert set(kinds) == {str(kind) for kind in WaveKind}  # the constants name only these
    for name in kinds:
        assert (DEFAULT_TEMPLATES_DIR / f"{name}.html").is_file()
        assert (DEFAULT_TEMPLATES_DIR / f"{name}.txt").is_file()


def test_a_shipped_kind_is_a_template_pair_and_a_line(tmp_path: Path) -> None:
    templates = fx.copy_templates(tmp_path / "templates")
    (templates / "kinds.yaml").write_text(
        (templates / "kinds.yaml").read_text() + "newsletter: {audience: all_assigned}\n"
    )
    (templates / "newsletter.html").write_text(HTML)
    (templates / "newsletter.txt").write_text(TEXT)
    renderer = Renderer(fx.settings(templates_dir=templates))
    assert renderer.kinds["newsletter"].builtin
    assert "From the volunteers" in renderer.variant("newsletter", fx.case(), "en").html


def test_a_bad_kinds_file_is_a_template_problem(tmp_path: Path) -> None:
    templates = fx.copy_templates(tmp_path / "templates")
    (templates / "kinds.yaml").write_text("case_email: {audience: everyone}\n")
    with pytest.raises(TemplateProblem, match=r"kinds.yaml: case_email.audience: unknown rule"):
        Renderer(fx.settings(templates_dir=templates))


def test_a_campaign_kind_renders_from_its_stored_sources_with_the_shared_layout() -> None:
    renderer = Renderer(fx.settings(), kinds=STORED)
    variant = renderer.variant("volunteers", fx.case(), "ar")
    rec = renderer.recipient(variant, fx.who())
    html = personalise(variant.html, rec.substitutions)
    assert "From the volunteers, for Ana Ríos" in html
    assert 'lang="ar" dir="rtl"' in html  # the shared layout, in the reader's language
    assert "Portrait of Ana Ríos" not in html and "صورة Ana Ríos" in html  # shipped block
    assert personalise(variant.subject, rec.substitutions) == "The volunteers thank you, Maya"
    assert html_warnings(html) == []
    assert "-action_url_text-" in variant.text
    with pytest.raises(TemplateProblem, match="unknown email kind 'volunteers'"):
        Renderer(fx.settings()).variant("volunteers", fx.case(), "en")  # not this campaign's


def test_a_campaign_may_replace_a_shipped_kinds_templates_for_itself_only() -> None:
    stored = {"case_email": {**STORED["volunteers"], "audience": "all_assigned"}}
    own = Renderer(fx.settings(), kinds=stored).variant("case_email", fx.case(), "en")
    shipped = Renderer(fx.settings()).variant("case_email", fx.case(), "en")
    assert "From the volunteers" in own.html and "From the volunteers" not in shipped.html


@pytest.mark.parametrize(
    "attack",
    [
        "{{ case.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__.os.system('id') }}",
        "{{ lipsum.__globals__['os'].popen('id').read() }}",
    ],
)
def test_a_campaign_template_cannot_reach_python_internals(attack: str) -> None:
    stored = {"volunteers": {**STORED["volunteers"], "html": HTML.replace("<h1", attack + "<h1")}}
    with pytest.raises(TemplateProblem, match="SecurityError: access to attribute"):
        Renderer(fx.settings(), kinds=stored).variant("volunteers", fx.case(), "en")


def test_good_news_reads_as_a_release_for_a_resolved_case_and_prints_its_news() -> None:
    renderer = Renderer(fx.settings())
    freed = dataclasses.replace(fx.case(), status="resolved")
    for language, headline in [
        ("en", "Good news: Ana Ríos is free"),
        ("es", "Buenas noticias: Ana Ríos está en libertad"),
        ("fr", "Bonne nouvelle : Ana Ríos est libre"),
        ("ar", "خبر سار: أُطلق سراح Ana Ríos"),
    ]:
        variant = renderer.variant("good_news", freed, language)
        assert variant.subject == headline and headline in variant.text
        assert variant.fallbacks == ()
    active = renderer.variant("good_news", fx.case(), "en")
    assert active.subject == "Good news for Ana Ríos" and "is free" not in active.text
    news = {**fx.TEXTS, "en": {**fx.TEXTS_EN, "good_news": "Ana walked out on Monday.\nHome."}}
    told = renderer.variant("good_news", dataclasses.replace(freed, content=news), "en")
    assert "Ana walked out on Monday.<br>\nHome." in told.html
    assert "Ana walked out on Monday.\nHome." in told.text
    assert "has been released" not in told.text  # its own news, not the stock sentence


def _campaign_with(engine: Engine, kinds: Mapping[str, Any], wave_kind: str | None) -> None:
    with db.session_scope(engine) as session:
        campaign = the_2020_campaign(session)
        campaign.kinds = dict(kinds)
        session.add(
            Case(
                campaign_id=campaign.id,
                slug="ana-rios",
                person="Ana Ríos",
                country="CO",
                content=fx.TEXTS,
            )
        )
        if wave_kind:
            session.add(
                Wave(
                    campaign_id=campaign.id,
                    name="team",
                    kind=wave_kind,
                    audience="acted",
                    starts_at=campaign.window_start,
                    ends_at=campaign.window_end,
                    subjects={"en": "Hi"},
                )
            )


def test_the_launch_check_renders_the_campaigns_own_kinds(sqlite_engine: Engine) -> None:
    text = TEXT.replace("{% endblock %}\n", "{{ case.shoe_size }}\n{% endblock %}\n")
    broken = {"volunteers": {**STORED["volunteers"], "text": text}}
    _campaign_with(sqlite_engine, broken, "volunteers")
    problems = check_all(sqlite_engine, fx.settings())
    labels = {p.template for p in problems}
    assert labels == {
        f"volunteers × ana-rios × {lang}{wave}"
        for lang in ("en", "es", "fr", "ar")
        for wave in ("", " × wave team")
    }
    assert all("shoe_size" in p.message for p in problems)


def test_the_launch_check_refuses_a_wave_whose_kind_the_campaign_lacks(
    sqlite_engine: Engine,
) -> None:
    _campaign_with(sqlite_engine, {}, "volunteers")  # kinds removed after the plan was applied
    problems = check_all(sqlite_engine, fx.settings())
    assert problems and all("unknown email kind 'volunteers'" in p.message for p in problems)
    fine = {"volunteers": STORED["volunteers"]}
    with db.session_scope(sqlite_engine) as session:
        the_2020_campaign(session).kinds = fine
    assert check_all(sqlite_engine, fx.settings()) == []


def test_a_worker_renders_with_a_campaigns_current_kinds() -> None:
    sender = Sender(store=None, settings=fx.settings(), transport=None, bucket=None)  # type: ignore[arg-type]
    bare = CampaignIdentity(1, "w4r", {}, "a@example.org", "A")
    own = dataclasses.replace(bare, kinds=STORED, kinds_digest=kinds_digest(STORED))
    assert "volunteers" not in sender.renderer(bare).kinds
    assert "volunteers" in sender.renderer(own).kinds  # kinds changed: a new renderer
    assert sender.renderer(own) is sender.renderer(own)
    assert kinds_digest({}) == "" and kinds_digest(STORED) != kinds_digest({"x": {}})
    assert template_sources(STORED) == {"volunteers.html": HTML, "volunteers.txt": TEXT}


def test_wave_content_keeps_any_kind_name() -> None:
    assert WaveContent(1, "team", "volunteers").kind == "volunteers"
