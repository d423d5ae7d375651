"""Settings from the environment and an optional `.env` file.

Every setting has an embedded default so that `campaign demo` runs on a fresh
machine with nothing configured: SQLite in the working directory, tasks run
in-process, mail written to an outbox folder instead of SendGrid. Those
defaults include published secrets, so they are only good in dev or demo mode
(CAMPAIGN_MODE); in production, the default, sender.core.runmode refuses them.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from sender.core.vocabulary import RunMode

# Published in this repository, so anyone could use them: production refuses
# each (sender.core.runmode), dev and demo mode run on them.
DEV_SECRET = "dev-only-secret-change-me"  # noqa: S105 - refused in production
DEV_INBOUND_SECRET = "dev-inbound-secret"  # noqa: S105 - refused in production
DEV_STAFF_PASSWORD = "change-me"  # noqa: S105 - refused in production

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

    # CAMPAIGN_MODE: production unless the demo or the test suite says otherwise.
    campaign_mode: RunMode = RunMode.PRODUCTION

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
    # CSV uploads from the workspace land here while they are imported.
    upload_dir: Path = Path("uploads")
    upload_max_bytes: int = Field(default=2 * 1024**3, ge=1)
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
    # Staff sessions end this long after login whatever happens, and after this
    # long without a request (docs/SECURITY.md).
    session_lifetime_hours: float = Field(default=8.0, gt=0)
    session_idle_minutes: float = Field(default=30.0, gt=0)
    # How many reverse proxies in front of the web app set X-Forwarded-For and
    # -Proto (Werkzeug's ProxyFix); 0 = the peer address is the client's.
    trusted_proxies: int = Field(default=0, ge=0, le=5)
    # /metrics: open when both are unset; otherwise a matching bearer token or
    # a client address inside one of the comma-separated networks.
    metrics_token: str | None = None
    metrics_allow: str | None = None
    # Per-wave message counts on /metrics are re-read from the database at most
    # this often (per web process), however often Prometheus scrapes.
    metrics_refresh_seconds: float = Field(default=60.0, ge=0)
    # Read by Flower itself (user:password); checked here so Flower refuses a weak one.
    flower_basic_auth: str | None = None

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
    def is_production(self) -> bool:
        return self.campaign_mode == RunMode.PRODUCTION


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget cached settings (tests and the demo change the environment)."""
    get_settings.cache_clear()
