"""Events about the provider account as a whole: a quota drop, a suspension, a reactivation.

Tracking only reports them, as `AccountNotice` values, one per kind of change in a
processing run (a quota drop of a thousand recipients is one notice). Acting on them
is the campaign's job (sender.campaign.waves.apply_account_notices pauses every wave
that is sending): tracking does not import sending. The hook runs in the processing
transaction, so a stop is never recorded without its pause.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from sender.core.vocabulary import AccountChange
from sender.track import providers
from sender.track.providers.base import NormalisedEvent

# How a wave paused by an account notice reads: its status_reason begins with this.
PAUSE_PREFIX = "account stop: "
# A skip reason is "dropped: <the provider's reason>" (sender.track.suppressions).
_DROPPED = "dropped: "
_MAX_SKIP_REASON = 64


@dataclass(frozen=True)
class AccountNotice:
    provider: str
    change: AccountChange
    what: str  # in the provider's words: "SendGrid dropped mail: ..."
    todo: str | None  # what staff do before resuming; None for a reactivation
    occurred_at: datetime | None
    wave_ids: tuple[int, ...] = ()  # waves whose mail the provider dropped for it

    def describe(self) -> str:
        when = f" (at {self.occurred_at:%Y-%m-%d %H:%M} UTC)" if self.occurred_at else ""
        return f"{self.what}{when}"


AccountHook = Callable[[Session, Sequence[AccountNotice], datetime], object]


def notices_for(events: Iterable[tuple[NormalisedEvent, int | None]]) -> list[AccountNotice]:
    """One notice per (provider, change, what), at its first event, naming its waves."""
    firsts: dict[tuple[str, AccountChange, str], NormalisedEvent] = {}
    waves: dict[tuple[str, AccountChange, str], set[int]] = {}
    for event, wave_id in events:
        if event.account_change is None:
            continue
        key = (event.provider, event.account_change, event.account_note or event.raw_type or "")
        first = firsts.setdefault(key, event)
        if _earlier(event, first):
            firsts[key] = event
        if wave_id is not None:
            waves.setdefault(key, set()).add(wave_id)
    return [
        AccountNotice(
            provider=key[0],
            change=key[1],
            what=key[2],
            todo=event.account_todo,
            occurred_at=event.occurred_at,
            wave_ids=tuple(sorted(waves.get(key, ()))),
        )
        for key, event in firsts.items()
    ]


def _earlier(event: NormalisedEvent, than: NormalisedEvent) -> bool:
    if event.occurred_at is None or than.occurred_at is None:
        return False
    return event.occurred_at < than.occurred_at


def resend_on_resume() -> frozenset[str]:
    """The skip reasons (lower case) of messages dropped for the account: never delivered."""
    return frozenset(
        f"{_DROPPED}{reason}"[:_MAX_SKIP_REASON].casefold()
        for provider in providers.registered()
        for reason in provider.account_drop_reasons
    )
