"""The pipeline's decisions against an in-memory SendStore: no database, every branch.

The real-database behaviour (exactly once, re-checks, reconciliation) is in
tests/send/test_pipeline.py; these cover the paths a database run rarely reaches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

from sending_fixtures import CASE_TEXT, DEC1, RecordingTransport

from sender.core.clock import MovableClock
from sender.core.config import Settings
from sender.core.vocabulary import WaveKind
from sender.render.renderer import CaseContent, RecipientData, WaveContent
from sender.send.batch import (
    BatchOutcome,
    CampaignIdentity,
    Ending,
    PreparedBatch,
    Settled,
)
from sender.send.pipeline import BatchResult, Sender, SendPolicy, send_batch
from sender.send.ratelimit import LocalTokenBucket
from sender.send.transport.base import RetryLater

SETTINGS = Settings(secret_key="test")
NINE = DEC1 + timedelta(hours=9)


def _prepared(content: dict[str, dict[str, str]] = CASE_TEXT) -> PreparedBatch:
    case = CaseContent(7, "nassima", "Nassima", "MA", "active", None, None, content)
    return PreparedBatch(
        id=1,
        language="en",
        campaign=CampaignIdentity(3, "w4r", MappingProxyType({}), "a@example.org", "Amnesty"),
        wave=WaveContent(5, "first", WaveKind.CASE_EMAIL, {"en": "Stand with Nassima"}),
        case=case,
        rate_per_hour=None,
        domain_rates=MappingProxyType({}),
        going=(RecipientData(11, "ana@example.org", "Ana", None, 101, 7, 5),),
        skipped=0,
    )


@dataclass
class MemoryStore:
    """A SendStore over one batch, noting every call."""

    claimed: PreparedBatch | Settled
    sendable: bool = True
    rekeys_hold: bool = True
    keys: list[str] = field(default_factory=list)  # the key of each claim and rekey
    accepted: list[str] = field(default_factory=list)
    finished: list[tuple[Ending, str | None, datetime | None]] = field(default_factory=list)

    def claim(self, batch_id: int, send_key: str, now: datetime) -> PreparedBatch | Settled:
        self.keys.append(send_key)
        return self.claimed

    def rekey(self, batch_id: int, old_key: str, new_key: str, now: datetime) -> bool:
        assert old_key == self.keys[-1]
        self.keys.append(new_key)
        return self.rekeys_hold

    def still_sendable(self, wave_id: int, case_id: int) -> bool:
        return self.sendable

    def accept(self, batch_id: int, send_key: str, now: datetime, provider_id: str | None) -> int:
        self.accepted.append(send_key)
        return 1

    def finish(
        self,
        batch: PreparedBatch,
        send_key: str,
        ending: Ending,
        error: str | None,
        retry_at: datetime | None = None,
    ) -> None:
        assert send_key == self.keys[-1]
        self.finished.append((ending, error, retry_at))


def _send(store: MemoryStore, transport: RecordingTransport) -> BatchResult:
    sender = Sender(
        store=store,
        settings=SETTINGS,
        transport=transport,
        bucket=LocalTokenBucket(),
        clock=MovableClock(NINE),
        policy=SendPolicy(),
        sleep=lambda _: None,
    )
    return send_batch(1, sender)


def test_a_settled_claim_is_reported_as_it_is_and_nothing_is_sent() -> None:
    store = MemoryStore(Settled(BatchOutcome.HELD, 5, 7, detail="wave paused, case active"))
    transport = RecordingTransport()
    result = _send(store, transport)
    assert result == BatchResult(1, BatchOutcome.HELD, detail="wave paused, case active")
    assert transport.attempts == 0 and store.finished == []


def test_every_retry_goes_under_a_new_key_and_the_last_is_accepted() -> None:
    store = MemoryStore(_prepared())
    transport = RecordingTransport(script=[RetryLater("503", status_code=503)] * 2)
    result = _send(store, transport)
    assert (result.outcome, result.sent) == (BatchOutcome.SENT, 1)
    assert len(set(store.keys)) == 3
    assert [b.send_key for b in transport.tried] == store.keys
    assert store.accepted == [store.keys[-1]]


def test_a_wave_paused_during_a_retry_wait_gets_its_batch_back_unsent() -> None:
    store = MemoryStore(_prepared(), sendable=False)
    transport = RecordingTransport(script=[RetryLater("429", wait_seconds=1.0, status_code=429)])
    result = _send(store, transport)
    assert (result.outcome, result.detail) == (BatchOutcome.HELD, "paused")
    assert store.finished == [(Ending.LATER, "paused", None)]
    assert transport.attempts == 1 and store.accepted == []


def test_a_batch_taken_over_during_a_retry_wait_is_left_alone() -> None:
    store = MemoryStore(_prepared(), rekeys_hold=False)
    transport = RecordingTransport(script=[RetryLater("503", status_code=503)])
    result = _send(store, transport)
    assert (result.outcome, result.detail) == (BatchOutcome.NOT_MINE, "taken over")
    assert transport.attempts == 1 and store.finished == [] and store.accepted == []


def test_a_variant_that_cannot_render_fails_the_batch_before_any_request() -> None:
    store = MemoryStore(_prepared(content={}))
    transport = RecordingTransport()
    result = _send(store, transport)
    assert result.outcome is BatchOutcome.FAILED and result.detail.startswith("render: ")
    ((ending, error, _),) = store.finished
    assert ending is Ending.FAILED and error == result.detail
    assert transport.attempts == 0
