"""Pick the way out: SendGrid when a key is configured, else the outbox folder.

In production mode nothing goes out on published or weak secrets, whichever
way out (sender.core.runmode): the links in the mail would be forgeable.
"""

from __future__ import annotations

from sender.core.config import Settings
from sender.core.runmode import refuse_unsafe_start
from sender.send.transport.base import Transport
from sender.send.transport.outbox import OutboxTransport
from sender.send.transport.sendgrid import SendGridTransport


def transport_for(settings: Settings) -> Transport:
    refuse_unsafe_start(settings, "Sending")
    if settings.sendgrid_api_key:
        return SendGridTransport(
            settings.sendgrid_api_key,
            host=settings.sendgrid_api_host,
            timeout_seconds=settings.sendgrid_timeout_seconds,
            open_tracking=settings.sendgrid_open_tracking,
        )
    return OutboxTransport(settings.outbox_dir)
