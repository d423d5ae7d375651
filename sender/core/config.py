"""Settings from the environment and an optional `.env` file.

Every setting has an embedded default so that `campaign demo` runs on a fresh
machine with nothing configured: SQLite in the working directory, tasks run
in-process, mail written to an outbox folder instead of SendGrid.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from sender.core.errors import ConfigError

# Published in this repository, so anyone could use them: each is refused once
# real mail goes out (see `refuse_published_defaults`).
DEV_SECRET = "dev-only-secret-change-me"  # noqa: S105 - refused outside the embedded default
DEV_INBOUND_SECRET = "dev-inbound-secret"  # noqa: S105 - refused outside the embedded default
DEV_STAFF_PASSWORD = "change-me"  # noqa: S105 - refused outside the embedded default
REAL_SENDGRID = "https://api.sendgrid.com"

# SendGrid retries an Event Webhook POST that got no 2xx for up to 24 hours,
# then drops it (SendGrid's Event Webhook docs on retries, as noted in the
# project's SendGrid facts). SendGrid does not document that a retry carries a
# fresh signed timestamp, so a batch from the start of an outage may come back
# signed up to 24 h ago; refusing it as stale would lose every event of the
# outage. The hour of margin covers a last retry landing just past the 24 h mark
# and a slow clock on either side. A replay inside this window is harmless:
# events are deduplicated on sg_event_id (docs/SENDGRID.md, "Replays").
SENDGRID_RETRY_HORIZON_SECONDS = 24 * 3600
WEBHOOK_TOLERANCE_SECONDS = SENDGRID_RETRY_HORIZON_SECONDS + 3600


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    database_url: str = "sqlite:///campaign.db"
    redis_url: str | None = None

    secret_key: str = DEV_SECRET
    public_base_url: str = "https://act.example.org"
    inbound_domain: str = "parse.example.org"
    unsubscribe_mailto: str = "unsubscribe@example.org"

    sendgrid_api_key: str | None = None
    sendgrid_api_host: str = "https://api.sendgrid.com"
    sendgrid_timeout_seconds: float = 30.0
    # Open tracking stays on: opens are recorded and machine opens kept apart
    # (docs/SENDGRID.md). Click and subscription tracking are always off.
    sendgrid_open_tracking: bool = True
    sendgrid_webhook_public_key: str | None = None
    webhook_tolerance_seconds: int = Field(default=WEBHOOK_TOLERANCE_SECONDS, ge=1)
    inbound_secret: str = DEV_INBOUND_SECRET

    outbox_dir: Path = Path("outbox")
    templates_dir: Path | None = None  # None: the templates/ folder shipped with the code

    org_name: str = "Amnesty International (demo section)"
    org_address: str = "1 Easton Street, London WC1X 0DW, United Kingdom"
    from_email: str = "campaigns@example.org"
    from_name: str = "Write for Rights"
    logo_url: str = "https://act.example.org/static/logo.png"
    brand_primary: str = "#ffff00"
    brand_ink: str = "#000000"
    brand_accent: str = "#1a1a1a"

    # Machine clicks (docs/TRACKING.md): a fetch this soon after delivery, or
    # this soon after another link of the same message, is a scanner's; a click
    # taken for a person's is re-classified when machine evidence for its
    # message follows within the burst window.
    click_delivery_window_seconds: float = Field(default=30.0, ge=0)
    click_burst_window_seconds: float = Field(default=5.0, ge=0)

    frequency_cap_hours: int = 48
    # How long a batch whose outcome is unknown waits for `processed` events
    # before the rest of it is resent, and how long a QUEUED batch may wait for
    # a worker before the tick hands it out again (docs/SENDING.md).
    reconcile_grace_seconds: int = Field(default=600, ge=0)
    queued_timeout_seconds: int = Field(default=600, ge=1)
    send_attempts: int = Field(default=4, ge=1)
    batch_size: int = Field(default=1000, ge=1, le=1000)
    rate_per_hour: int = 1_000_000

    # Sent with every batch as a custom arg and required back on events: events for
    # another installation sharing the SendGrid account are refused (docs/SECURITY.md).
    # Unset: derived from SECRET_KEY, so two installations differ without configuring it.
    installation_id: str | None = Field(default=None, min_length=1, max_length=64)

    staff_user: str = "staff"
    staff_password: str = DEV_STAFF_PASSWORD
    report_token: str | None = None

    log_json: bool | None = None

    @property
    def uses_redis(self) -> bool:
        return bool(self.redis_url)

    @property
    def uses_sendgrid(self) -> bool:
        return bool(self.sendgrid_api_key)

    @property
    def installation(self) -> str:
        """This installation's id: INSTALLATION_ID, else an HMAC of SECRET_KEY (not the key)."""
        if self.installation_id:
            return self.installation_id
        digest = hmac.new(self.secret_key.encode(), b"installation-id", hashlib.sha256)
        return digest.hexdigest()[:16]

    @property
    def sends_real_mail(self) -> bool:
        """A SendGrid key aimed at SendGrid itself, not the local test server."""
        return self.uses_sendgrid and self.sendgrid_api_host.rstrip("/") == REAL_SENDGRID


def published_defaults(settings: Settings) -> list[str]:
    """Names of the secrets still at the value this repository publishes."""
    published = {
        "SECRET_KEY": (settings.secret_key, DEV_SECRET),
        "STAFF_PASSWORD": (settings.staff_password, DEV_STAFF_PASSWORD),
        "INBOUND_SECRET": (settings.inbound_secret, DEV_INBOUND_SECRET),
    }
    return [name for name, (value, default) in published.items() if not value or value == default]


def refuse_published_defaults(settings: Settings) -> None:
    """Real mail must not go out while a secret is one anyone can read here.

    With the default SECRET_KEY anyone could forge unsubscribe and action
    links for any supporter; with the default STAFF_PASSWORD anyone could read
    supporter data on the dashboard; with the default INBOUND_SECRET anyone
    could post fake replies. The demo and the local SendGrid of tests are
    exempt: they send nothing real.
    """
    if not settings.sends_real_mail:
        return
    names = published_defaults(settings)
    if names:
        raise ConfigError(
            f"{', '.join(names)} still at the development default: set long random values "
            "before sending through SendGrid (see .env.example)"
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget cached settings (tests and the demo change the environment)."""
    get_settings.cache_clear()
