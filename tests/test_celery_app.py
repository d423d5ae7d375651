"""The Celery app: task names, the beat schedule, and what workers do at start-up."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from celery.signals import worker_init, worker_process_init
from celery.utils.dispatch import Signal

import sender.celery_app
from sender.celery_app import TASK_NAMES, TICK_TASK, create_celery
from sender.core.config import Settings


def test_registered_task_names_are_exactly_the_deployed_ones() -> None:
    # Queued messages name their task: these strings must survive every deploy.
    app = create_celery(Settings(_env_file=None, secret_key="test"))  # type: ignore[call-arg]
    app.loader.import_default_modules()
    ours = {name for name in app.tasks if not name.startswith("celery.")}
    assert (
        ours
        == set(TASK_NAMES)
        == {
            "sender.tick",
            "sender.send_batch",
            "sender.tasks.process_events",
            "sender.tasks.parse_reply",
            "sender.tasks.import_supporters",
            "sender.tasks.send_proofs",
            "sender.tasks.count_reach",
        }
    )
    assert app.conf.beat_schedule["tick"]["task"] == TICK_TASK


@pytest.mark.parametrize("signal", [worker_init, worker_process_init])
def test_worker_start_up_signals_freeze_the_heap(
    signal: Signal, monkeypatch: pytest.MonkeyPatch
) -> None:
    frozen: list[bool] = []
    monkeypatch.setattr(sender.celery_app, "freeze_start_up_heap", lambda: frozen.append(True))
    # (dispatch_uid, sender id) -> receiver; ours are connected strongly, by uid.
    ours = [receiver for key, receiver in signal.receivers if key[0].startswith("sender.freeze")]
    assert len(ours) == 1
    ours[0](signal=signal, sender=None)  # as the worker sends it
    assert frozen == [True]


ROOT = Path(__file__).resolve().parents[1]
PRODUCTION_DEFAULTS = ["SECRET_KEY", "STAFF_PASSWORD", "INBOUND_SECRET", "PUBLIC_BASE_URL"]


def _celery(role: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SECRET_KEY", "FLOWER"))}
    environ.update(
        CAMPAIGN_MODE="production",
        DATABASE_URL=f"sqlite:///{tmp_path / 'c.db'}",
        REDIS_URL="redis://127.0.0.1:1/0",  # never reached: the refusal comes first
        **env,
    )
    command = [sys.executable, "-m", "celery", "-A", "worker", *role]
    return subprocess.run(
        command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("role", [["worker", "--pool=solo"], ["beat"]])
def test_workers_and_beat_refuse_to_start_on_published_secrets(
    role: list[str], tmp_path: Path
) -> None:
    """Attack: forged unsubscribe links under the published SECRET_KEY. No worker sends them."""
    done = _celery(role, tmp_path)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "refuses to start in production mode" in output
    for name in PRODUCTION_DEFAULTS:
        assert f"- {name} " in output, name
    assert "campaign secret" in output


def test_flower_refuses_without_strong_basic_auth(tmp_path: Path) -> None:
    done = _celery(["flower", "--port=0"], tmp_path, FLOWER_BASIC_AUTH="staff:change-me")
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "Flower refuses to start" in output and "- FLOWER_BASIC_AUTH " in output


def test_the_check_names_the_process_and_flowers_own_setting() -> None:
    from sender.celery_app import refuse_unsafe_celery_start
    from sender.core.runmode import UnsafeSettings

    strong = {
        "campaign_mode": "production",
        "secret_key": secrets.token_urlsafe(32),
        "staff_password": secrets.token_urlsafe(32),
        "inbound_secret": secrets.token_urlsafe(32),
        "public_base_url": "https://act.amnesty-demo.org",
    }
    good = Settings.model_validate(strong)
    refuse_unsafe_celery_start(good, ["celery", "-A", "worker", "worker"])
    refuse_unsafe_celery_start(good, ["celery", "-A", "worker", "beat"])
    with pytest.raises(UnsafeSettings, match="Flower refuses") as refused:
        refuse_unsafe_celery_start(good, ["celery", "-A", "worker", "flower"])
    assert [p.setting for p in refused.value.problems] == ["FLOWER_BASIC_AUTH"]
    with_auth = Settings.model_validate(
        {**strong, "flower_basic_auth": f"ops:{secrets.token_urlsafe(32)}"}
    )
    refuse_unsafe_celery_start(with_auth, ["celery", "-A", "worker", "flower"])
    dev = Settings.model_validate({"campaign_mode": "dev"})
    refuse_unsafe_celery_start(dev, ["celery", "-A", "worker", "flower"])  # the suite, the demo
