from __future__ import annotations

import pytest

from sender.core.config import Settings, published_defaults, refuse_published_defaults
from sender.core.errors import ConfigError

CHOSEN = {
    "secret_key": "a-long-random-secret",
    "staff_password": "another-long-random-one",
    "inbound_secret": "and-a-third",
}


def test_every_published_default_is_named() -> None:
    assert published_defaults(Settings()) == ["SECRET_KEY", "STAFF_PASSWORD", "INBOUND_SECRET"]
    assert published_defaults(Settings.model_validate(CHOSEN)) == []
    assert published_defaults(Settings.model_validate({**CHOSEN, "staff_password": ""})) == [
        "STAFF_PASSWORD"
    ]


@pytest.mark.parametrize("left", ["secret_key", "staff_password", "inbound_secret"])
def test_real_sendgrid_refuses_each_default_by_name(left: str) -> None:
    settings = Settings.model_validate({**CHOSEN, left: Settings.model_fields[left].default})
    real = settings.model_copy(update={"sendgrid_api_key": "SG.real"})
    with pytest.raises(ConfigError, match=left.upper()):
        refuse_published_defaults(real)


def test_defaults_are_fine_where_no_real_mail_goes_out() -> None:
    refuse_published_defaults(Settings())  # the demo: outbox, nothing sent
    local = Settings(sendgrid_api_key="SG.test", sendgrid_api_host="http://127.0.0.1:8025")
    assert not local.sends_real_mail
    refuse_published_defaults(local)  # tests: the local SendGrid-compatible server
    refuse_published_defaults(Settings.model_validate({"sendgrid_api_key": "SG.real", **CHOSEN}))
