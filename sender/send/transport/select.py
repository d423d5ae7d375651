"""Pick the way out: SendGrid when a key is configured, else the outbox folder."""

from __future__ import annotations

from sender.core.config import Settings, refuse_published_defaults
from sender.send.transport.base import Transport
from sender.send.transport.outbox import OutboxTransport
from sender.send.transport.sendgrid import SendGridTransport


def transport_for(settings: Settings) -> Transport:
    if settings.sendgrid_api_key:
        refuse_published_defaults(settings)
        return SendGridTransport(
            settings.sendgrid_api_key,
            host=settings.sendgrid_api_host,
            timeout_seconds=settings.sendgrid_timeout_seconds,
            open_tracking=settings.sendgrid_open_tracking,
        )
    return OutboxTransport(settings.outbox_dir)
