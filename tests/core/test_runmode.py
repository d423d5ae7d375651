"""Production refuses published, short and low-entropy secrets, and plain-http links, by name."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest
from werkzeug.security import generate_password_hash

from sender.core.config import DEV_INBOUND_SECRET, DEV_SECRET, DEV_STAFF_PASSWORD, Settings
from sender.core.runmode import (
    PUBLISHED_SECRETS,
    UnsafeSettings,
    estimated_bits,
    production_problems,
    refuse_unsafe_start,
    secret_weakness,
)
from sender.core.vocabulary import RunMode

ROOT = Path(__file__).resolve().parents[2]
GOOD = {
    "campaign_mode": "production",
    "secret_key": secrets.token_urlsafe(32),
    "staff_password": secrets.token_urlsafe(32),
    "inbound_secret": secrets.token_urlsafe(32),
    "public_base_url": "https://act.amnesty-demo.org",
    "database_url": "postgresql://campaign:Zq7xK2pLm9Rt4vWn8bYc3dFg6hJk1sA5@db/campaign",
}
SECRET_SETTINGS = ("SECRET_KEY", "STAFF_PASSWORD", "INBOUND_SECRET", "REPORT_TOKEN",
                   "METRICS_TOKEN", "FLOWER_BASIC_AUTH", "POSTGRES_PASSWORD")  # fmt: skip


def settings(**changes: object) -> Settings:
    return Settings(_env_file=None, **{**GOOD, **changes})  # type: ignore[arg-type, call-arg]


def named(found: Settings, *, flower: bool = False) -> list[str]:
    return [p.setting for p in production_problems(found, flower=flower)]


def test_good_settings_have_no_problems() -> None:
    assert production_problems(settings()) == []
    refuse_unsafe_start(settings(), "The web app")


def test_the_embedded_defaults_are_refused_by_name() -> None:
    defaults = Settings(_env_file=None, campaign_mode=RunMode.PRODUCTION)  # type: ignore[call-arg]
    assert named(defaults) == ["SECRET_KEY", "STAFF_PASSWORD", "INBOUND_SECRET", "PUBLIC_BASE_URL"]


def test_env_example_as_copied_is_refused_for_every_secret_it_holds() -> None:
    copied = Settings(_env_file=ROOT / ".env.example", campaign_mode=RunMode.PRODUCTION)  # type: ignore[call-arg]
    assert named(copied, flower=True) == [
        "SECRET_KEY",
        "STAFF_PASSWORD",
        "INBOUND_SECRET",
        "FLOWER_BASIC_AUTH",
        "PUBLIC_BASE_URL",
    ]


def test_every_secret_of_env_example_is_on_the_published_list() -> None:
    # Commented-out examples too: someone will uncomment them as they are.
    line = re.compile(r"^#?\s*(" + "|".join(SECRET_SETTINGS) + r")=(\S*)")
    found = {}
    for text in (ROOT / ".env.example").read_text().splitlines():
        match = line.match(text)
        if match:
            found[match.group(1)] = match.group(2).strip("\"'")
    assert set(found) >= {"SECRET_KEY", "STAFF_PASSWORD", "INBOUND_SECRET", "FLOWER_BASIC_AUTH"}
    for name, value in found.items():
        value = value.partition(":")[2] if name == "FLOWER_BASIC_AUTH" else value
        if value and not value.startswith("${"):
            assert secret_weakness(value) is not None, (name, value)


def test_the_demo_and_development_values_are_published() -> None:
    from sender.devtools.demo import DEMO_INBOUND_SECRET

    for value in (DEV_SECRET, DEV_INBOUND_SECRET, DEV_STAFF_PASSWORD, DEMO_INBOUND_SECRET):
        assert value.lower() in PUBLISHED_SECRETS
        assert secret_weakness(value) == (
            "is a value published in this repository, so anyone can use it"
        )


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("x", "1 bytes long"),
        ("a-chosen-but-short-secret", "25 bytes long"),
        ("  Change-Me ", "published"),
        ("REPLACE-WITH-A-LONG-RANDOM-STRING", "published"),
        ("a" * 64, "entropy"),
        ("changeme" * 4, "entropy"),
        ("ab" * 40, "entropy"),
    ],
)
@pytest.mark.parametrize("setting", ["secret_key", "staff_password", "inbound_secret"])
def test_each_weak_secret_is_refused_with_its_reason(setting: str, value: str, why: str) -> None:
    problems = production_problems(settings(**{setting: value}))
    assert [p.setting for p in problems] == [setting.upper()]
    assert why in problems[0].wrong
    assert "campaign secret" in problems[0].fix


def test_what_campaign_secret_prints_is_far_above_the_bar() -> None:
    from sender.cli.secret import new_secret

    for _ in range(50):
        value = new_secret()
        assert secret_weakness(value) is None
        assert estimated_bits(value) > 150


@pytest.mark.parametrize(
    "host",
    ["https://api.sendgrid.com", "https://api.eu.sendgrid.com", "https://API.sendgrid.com:443",
     "http://127.0.0.1:8025"],
)  # fmt: skip
@pytest.mark.parametrize("key", [None, "SG.real-key"])
def test_the_refusal_holds_for_every_host_and_without_an_api_key(
    host: str, key: str | None
) -> None:
    found = settings(secret_key=DEV_SECRET, sendgrid_api_host=host, sendgrid_api_key=key)
    assert named(found) == ["SECRET_KEY"]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://act.amnesty-demo.org", "not https"),
        ("HTTP://act.amnesty-demo.org", "not https"),
        ("act.amnesty-demo.org", "not https"),
        ("https://act.example.org", "placeholder"),
        ("https://EXAMPLE.com/", "placeholder"),
        ("https://localhost:8443", "placeholder"),
        ("https://", "no host"),
    ],
)
def test_public_base_url_must_be_a_real_https_address(url: str, problem: str) -> None:
    problems = production_problems(settings(public_base_url=url))
    assert [p.setting for p in problems] == ["PUBLIC_BASE_URL"]
    assert problem in problems[0].wrong


def test_a_staff_password_hash_is_accepted_unless_it_hides_a_published_one() -> None:
    assert named(settings(staff_password=generate_password_hash(secrets.token_hex(8)))) == []
    weak = settings(staff_password=generate_password_hash(DEV_STAFF_PASSWORD))
    assert named(weak) == ["STAFF_PASSWORD"]
    assert "published" in production_problems(weak)[0].wrong
    broken = settings(staff_password="scrypt:not-a-hash")
    assert "not one werkzeug can check" in production_problems(broken)[0].wrong


def test_optional_tokens_are_checked_once_set() -> None:
    assert named(settings(report_token="a-token-for-read-only-report-access")) == ["REPORT_TOKEN"]
    assert named(settings(metrics_token="short")) == ["METRICS_TOKEN"]
    strong = secrets.token_urlsafe(32)
    assert named(settings(report_token=strong, metrics_token=strong)) == []


def test_flower_needs_strong_basic_auth() -> None:
    assert named(settings(), flower=True) == ["FLOWER_BASIC_AUTH"]
    assert named(settings()) == []  # a web process does not need Flower's credentials
    published = settings(flower_basic_auth="staff:change-me")
    assert named(published) == ["FLOWER_BASIC_AUTH"]  # checked wherever it is set
    assert named(settings(flower_basic_auth="staff"), flower=True) == ["FLOWER_BASIC_AUTH"]
    strong = f"ops:{secrets.token_urlsafe(32)},staff:{secrets.token_urlsafe(32)}"
    assert named(settings(flower_basic_auth=strong), flower=True) == []
    mixed = f"ops:{secrets.token_urlsafe(32)},staff:change-me"
    assert "'staff'" in production_problems(settings(flower_basic_auth=mixed))[0].wrong


def test_the_published_database_password_is_refused() -> None:
    readme = settings(database_url="postgresql://campaign:campaign@127.0.0.1/campaign")
    assert named(readme) == ["DATABASE_URL"]
    assert "campaign" not in production_problems(readme)[0].wrong.split()  # no password echoed
    assert named(settings(database_url="sqlite:///campaign.db")) == []


def test_the_refusal_names_every_problem_and_how_to_fix_it() -> None:
    bad = settings(
        secret_key=DEV_SECRET,
        staff_password="short",
        inbound_secret="replace-me",
        public_base_url="http://act.amnesty-demo.org",
    )
    with pytest.raises(UnsafeSettings) as refused:
        refuse_unsafe_start(bad, "The web app")
    text = str(refused.value)
    assert text.startswith("The web app refuses to start in production mode")
    for name in ("SECRET_KEY", "STAFF_PASSWORD", "INBOUND_SECRET", "PUBLIC_BASE_URL"):
        assert f"  - {name} " in text
    assert "campaign secret" in text and "secrets.token_urlsafe(32)" in text
    assert len(refused.value.problems) == 4
    assert DEV_SECRET not in text and "replace-me" not in text  # values are not echoed


@pytest.mark.parametrize("mode", ["dev", "demo"])
def test_dev_and_demo_run_on_the_published_values(mode: str) -> None:
    relaxed = Settings(_env_file=None, campaign_mode=RunMode(mode))  # type: ignore[call-arg]
    refuse_unsafe_start(relaxed, "The web app")
    assert production_problems(relaxed)  # the problems are still there, only not refused
