"""Pick the way out: SendGrid when a key is configured, else the outbox folder."""

from __future__ import annotations

from sender.config import DEV_SECRET, Settings
from sender.errors import ConfigError
from sender.transport.base import Transport
from sender.transport.outbox import OutboxTransport
from sender.transport.sendgrid import SendGridTransport

REAL_SENDGRID = "https://api.sendgrid.com"


def transport_for(settings: Settings) -> Transport:
    if settings.sendgrid_api_key:
        refuse_public_secret(settings)
        return SendGridTransport(
            settings.sendgrid_api_key,
            host=settings.sendgrid_api_host,
            timeout_seconds=settings.sendgrid_timeout_seconds,
        )
    return OutboxTransport(settings.outbox_dir)


def refuse_public_secret(settings: Settings) -> None:
    """Real mail must not carry links signed with the secret everyone can read here.

    With the default secret anyone could forge unsubscribe and action links
    for any supporter; the local SendGrid of tests and the demo is exempt.
    """
    real = settings.sendgrid_api_host.rstrip("/") == REAL_SENDGRID
    if real and settings.secret_key == DEV_SECRET:
        raise ConfigError(
            "SECRET_KEY is still the development default: set a long random SECRET_KEY "
            "before sending through SendGrid"
        )
