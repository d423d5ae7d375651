"""The database tables, as SQLAlchemy 2 typed mappings.

Schema changes go through Alembic migrations (`sender/core/migrations`); tests
check that the migrations and these models agree.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    Time,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sender.core.vocabulary import (
    BatchStatus,
    CampaignStatus,
    CaseStatus,
    MessageStatus,
    ReplyStatus,
    SubjectState,
    SupporterStatus,
    WaveStatus,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")
Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only
# Addresses and their hex hashes are compared for equality only (unique-index
# probes on every import row). PostgreSQL's "C" collation compares bytes; the
# server's locale (C.UTF-8 in tests) would go through strcoll on every probe.
# SQLite compares bytes already and knows no "C" collation.
EmailText = String(320).with_variant(String(320, collation="C"), "postgresql")
HashText = String(64).with_variant(String(64, collation="C"), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSONType}  # noqa: RUF012


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    from_email: Mapped[str] = mapped_column(String(320))
    from_name: Mapped[str] = mapped_column(String(200))
    brand: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The rest comes from the campaign folder's campaign.yaml (sender.campaign.folder).
    status: Mapped[str] = mapped_column(String(16), default=CampaignStatus.OPEN)
    closed_at: Mapped[datetime | None]
    languages: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # None: the installation's INBOUND_DOMAIN.
    reply_domain: Mapped[str | None] = mapped_column(String(253))
    local_window_start: Mapped[time] = mapped_column(Time, default=time(9, 0))
    local_window_end: Mapped[time] = mapped_column(Time, default=time(11, 0))
    # None: the installation's FREQUENCY_CAP_HOURS. The cap counts every campaign's mail.
    frequency_cap_hours: Mapped[int | None] = mapped_column(Integer)
    # Email kinds beyond the built-in ones: {name: {...}} (sender.campaign.kinds).
    kinds: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (UniqueConstraint("campaign_id", "slug"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    slug: Mapped[str] = mapped_column(String(64))
    person: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))  # ISO 3166-1 alpha-2
    status: Mapped[str] = mapped_column(String(16), default=CaseStatus.ACTIVE)
    action_url: Mapped[str | None] = mapped_column(String(500))
    image_url: Mapped[str | None] = mapped_column(String(500))
    excluded_countries: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # {"en": {"title":..., "summary":..., "ask":..., "authority":..., "letter":...}, "es": ...}
    content: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Supporter(Base):
    __tablename__ = "supporters"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    # NULL once forgotten; the hash stays so a re-import is recognised and refused.
    email: Mapped[str | None] = mapped_column(EmailText, unique=True)
    email_hash: Mapped[str] = mapped_column(HashText, unique=True)
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    country: Mapped[str | None] = mapped_column(String(2))
    language: Mapped[str] = mapped_column(String(8), default="en")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    consent: Mapped[bool] = mapped_column(Boolean, default=False)
    # Not indexed: nearly everyone is subscribed, so no query is helped by an
    # index on it, and every imported row would pay for one more index entry.
    status: Mapped[str] = mapped_column(String(16), default=SupporterStatus.SUBSCRIBED)
    case_preference: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    forgotten_at: Mapped[datetime | None]


class Assignment(Base):
    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("supporter_id", "case_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    supporter_id: Mapped[int] = mapped_column(ForeignKey("supporters.id", ondelete="CASCADE"))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    strategy: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Wave(Base):
    __tablename__ = "waves"
    __table_args__ = (UniqueConstraint("campaign_id", "name"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=WaveStatus.DRAFT, index=True)
    audience: Mapped[str] = mapped_column(String(32))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    local_window_start: Mapped[time] = mapped_column(Time, default=time(9, 0))
    local_window_end: Mapped[time] = mapped_column(Time, default=time(11, 0))
    # {"en": "...", "es": ...}; may hold merge fields
    subjects: Mapped[dict[str, Any]] = mapped_column(default=dict)
    preheaders: Mapped[dict[str, Any]] = mapped_column(default=dict)
    rate_per_hour: Mapped[int | None] = mapped_column(Integer)
    # {"gmail.com": 5000}: warm-up limits per recipient domain, messages/hour
    domain_rates: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # A subject test as declared (sender.core.subject_test.SubjectTestSpec.to_json); {} for none.
    subject_test: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    launched_at: Mapped[datetime | None]
    planned_at: Mapped[datetime | None]
    # Set while the wave is half-planned (rows still wait in plan_rows): the
    # planner holding it renews it with every chunk, and once it has passed,
    # the next tick takes the plan over (a planner that died mid-way).
    planning_until: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    status_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Batch(Base):
    """Up to 1,000 messages sharing one variant and one send slot: one provider request."""

    __tablename__ = "batches"
    __table_args__ = (
        Index("ix_batches_wave_status", "wave_id", "status"),
        UniqueConstraint("wave_id", "case_id", "language", "slot_at", "variant", "seq"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    wave_id: Mapped[int] = mapped_column(ForeignKey("waves.id", ondelete="CASCADE"))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    language: Mapped[str] = mapped_column(String(8))
    send_after: Mapped[datetime] = mapped_column(index=True)
    send_before: Mapped[datetime]
    # The hour the batch was planned into, and its number inside that slot's variant.
    slot_at: Mapped[datetime | None]
    seq: Mapped[int] = mapped_column(Integer, default=0)
    # The subject test variant its mail carries ("" for a wave without a test).
    variant: Mapped[str] = mapped_column(String(8), default="", server_default="")
    # Not before this instant (rate limit or retry back-off); the slot stays in send_after.
    retry_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default=BatchStatus.PENDING)
    size: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Set before the request leaves: lets a reconciler find the batch's events.
    send_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    error: Mapped[str | None] = mapped_column(Text)
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The batch's messages by status (sender.core.tallies), moved in the
    # statements that move the messages, under this row's lock: the staff
    # pages sum a wave's ~1,000 batch rows instead of scanning `messages`,
    # which has no index on wave_id so that sending stays heap-only updates.
    planned_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sent_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    skipped_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failed_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    cancelled_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Message(Base):
    """One wave to one supporter; the unique key is the exactly-once guarantee.

    A row is written once when planned and updated once when its batch is
    accepted. That update touches no indexed column and the pages are filled
    only half-way, so PostgreSQL can make it heap-only (no index entries
    rewritten): a fifth of the cost of accepting 1,000 messages.
    """

    __tablename__ = "messages"
    __table_args__ = (
        # Supporter first: the same index serves the frequency cap (a
        # supporter's other recent messages) and erasure, so planning a
        # million messages maintains three indexes, not four. sent_at is in
        # no index: it would make every acceptance rewrite index entries; a
        # supporter has a few messages and the cap reads their rows.
        UniqueConstraint("supporter_id", "wave_id"),
        {"postgresql_with": {"fillfactor": 50}},
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    # The wave, case and batch carry no foreign key: the planner writes each
    # message joined to the batch it made in the same transaction, whose own
    # keys name the wave and case, and none of these rows is ever deleted. A
    # key is checked per inserted row (a query and a row lock each): with four,
    # the checks were 80 % of planning a million messages (docs/PERFORMANCE.md).
    # The supporter keeps its key: the one row the planner did not make.
    wave_id: Mapped[int] = mapped_column(Id)
    supporter_id: Mapped[int] = mapped_column(ForeignKey("supporters.id", ondelete="CASCADE"))
    case_id: Mapped[int] = mapped_column(Id)
    batch_id: Mapped[int | None] = mapped_column(Id, index=True)
    language: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default=MessageStatus.PLANNED)
    skip_reason: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SubjectTest(Base):
    """A wave's subject test as it runs: one row from its test share's planning on."""

    __tablename__ = "subject_tests"

    wave_id: Mapped[int] = mapped_column(
        ForeignKey("waves.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(String(16), default=SubjectState.TESTING)
    started_at: Mapped[datetime]
    winner: Mapped[str | None] = mapped_column(String(8))
    reason: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(String(320))  # "rule" or a staff name
    decided_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class WaveSlot(Base):
    """The send slot of one wave for one timezone, computed once per distinct zone."""

    __tablename__ = "wave_slots"

    wave_id: Mapped[int] = mapped_column(
        ForeignKey("waves.id", ondelete="CASCADE"), primary_key=True
    )
    timezone: Mapped[str] = mapped_column(String(64), primary_key=True)
    slot_at: Mapped[datetime]
    send_after: Mapped[datetime]
    send_before: Mapped[datetime]


class PlanRow(Base):
    """One supporter staged for a wave being planned, already numbered into a batch.

    Planning stages every eligible row here in one statement, then moves them
    into `batches` and `messages` a few batches per transaction
    (sender.send.plan_chunks), so no transaction holds locks for long; the rows
    left are the work a dead planner's successor goes on with. The key is the
    order chunks are taken in, so each chunk is one index range. No foreign
    keys: each would be checked once per staged row, and the message insert
    checks them anyway.
    """

    __tablename__ = "plan_rows"

    wave_id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=False)
    slot_at: Mapped[datetime] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=False)
    language: Mapped[str] = mapped_column(String(8), primary_key=True)
    # The subject test variant of the batch it goes into ("" for a wave without a test).
    variant: Mapped[str] = mapped_column(String(8), primary_key=True)
    batch_seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    supporter_id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=False)
    timezone: Mapped[str] = mapped_column(String(64))


class Event(Base):
    """A provider event, stored raw beside its normalised type."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))  # a registered name: track.providers
    provider_event_id: Mapped[str] = mapped_column(String(128), unique=True)
    event_type: Mapped[str] = mapped_column(String(32), index=True)
    raw_type: Mapped[str | None] = mapped_column(String(64))
    email_hash: Mapped[str | None] = mapped_column(String(64))
    message_id: Mapped[int | None] = mapped_column(Integer, index=True)
    supporter_id: Mapped[int | None] = mapped_column(Integer)
    case_id: Mapped[int | None] = mapped_column(Integer)
    wave_id: Mapped[int | None] = mapped_column(Integer)
    batch_key: Mapped[str | None] = mapped_column(String(64), index=True)
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(index=True)
    raw: Mapped[dict[str, Any]] = mapped_column(default=dict)


class RejectedEvent(Base):
    """A webhook event that could not be stored as an event, kept raw with the reason.

    Its batch was answered 2xx, so the provider will not send it again: this row is
    the only copy. `raw` is the event as JSON text with every non-ASCII character
    escaped, so NUL characters and lone surrogates survive as escapes. `digest` (of
    provider and raw) keeps a redelivered copy from being stored twice.
    """

    __tablename__ = "rejected_events"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(HashText, unique=True)
    position: Mapped[int] = mapped_column(Integer)  # in the batch it came in
    kind: Mapped[str] = mapped_column(String(32))  # vocabulary.RejectionKind
    reason: Mapped[str] = mapped_column(String(200))
    raw: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Action(Base):
    __tablename__ = "actions"
    __table_args__ = (
        Index("ix_actions_case_kind", "case_id", "kind"),
        # Only the actions not yet counted, so finding them stays as cheap as the
        # backlog is short. A full index on rolled_up_at kept millions of counted
        # rows, and right after a bulk load the planner, going by statistics that
        # still said "all pending", scanned the whole table on every report.
        Index(
            "ix_actions_pending_roll_up",
            "id",
            postgresql_where=text("rolled_up_at IS NULL"),
            sqlite_where=text("rolled_up_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    supporter_id: Mapped[int | None] = mapped_column(
        ForeignKey("supporters.id", ondelete="SET NULL"), index=True
    )
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    wave_id: Mapped[int | None] = mapped_column(ForeignKey("waves.id", ondelete="SET NULL"))
    message_id: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    url: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))  # sendgrid, link, inbound
    # Idempotency: one action per source event (event id, reply id, link token+kind).
    dedupe_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # A click on the case's own action link counts as acting (letters and replies always do).
    acting: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Set once sender.report.totals has added the action to report_counts.
    rolled_up_at: Mapped[datetime | None] = mapped_column()


class LinkHit(Base):
    """One fetch of an email's action, unsubscribe-page or honeypot link, classified.

    The machine-click rules (sender.track.clicks) read the fetches of the same
    message seconds apart. Neither the IP address nor the user agent is kept:
    the verdict and its reason are all a report or a re-classification needs.
    """

    __tablename__ = "link_hits"
    __table_args__ = (Index("ix_link_hits_link_key_fetched_at", "link_key", "fetched_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    link_key: Mapped[str] = mapped_column(String(40))  # as in the action's dedupe_key
    target: Mapped[str] = mapped_column(String(16))  # vocabulary.LinkTarget
    method: Mapped[str] = mapped_column(String(8))
    verdict: Mapped[str] = mapped_column(String(16))  # vocabulary.ClickClass
    reason: Mapped[str | None] = mapped_column(String(32))  # vocabulary.MachineSign
    fetched_at: Mapped[datetime]


class Suppression(Base):
    """Addresses never to email again, by hash so that erasure keeps them."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    email_hash: Mapped[str] = mapped_column(HashText, unique=True)
    reason: Mapped[str] = mapped_column(String(16))
    source: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Reply(Base):
    """An inbound email, stored raw first and parsed after."""

    __tablename__ = "replies"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    raw_form: Mapped[dict[str, Any]] = mapped_column(default=dict)
    raw_email: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default=ReplyStatus.RECEIVED, index=True)
    problem: Mapped[str | None] = mapped_column(Text)
    from_email: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(8))
    supporter_id: Mapped[int | None] = mapped_column(
        ForeignKey("supporters.id", ondelete="SET NULL")
    )
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    wave_id: Mapped[int | None] = mapped_column(ForeignKey("waves.id", ondelete="SET NULL"))
    parsed_at: Mapped[datetime | None]
    # A person's decision on a reply from the review list (sender.track.reply_review):
    # set once, so a second submit of the same form finds it taken.
    reviewed_at: Mapped[datetime | None]
    reviewed_by: Mapped[str | None] = mapped_column(String(320))
    review_outcome: Mapped[str | None] = mapped_column(String(16))
    review_note: Mapped[str | None] = mapped_column(Text)
    # A solidarity message handed to the case team, and who handed it over.
    delivered_at: Mapped[datetime | None]
    delivered_by: Mapped[str | None] = mapped_column(String(320))


class ReportCount(Base):
    """Running totals behind `campaign report`, so it never scans millions of events."""

    __tablename__ = "report_counts"

    case_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # 0: not known
    wave_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    language: Mapped[str] = mapped_column(String(8), primary_key=True)  # "": not known
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class CaseActor(Base):
    """Supporters who acted on a case, once each: the numerator of the action rate."""

    __tablename__ = "case_actors"

    case_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    supporter_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_acted_at: Mapped[datetime]


class VariantCount(Base):
    """A subject test's running totals: distinct people per signal, variant and part.

    Kept by sender.report.variant_counts as the roll-up counts actions, so the
    per-variant report reads a few dozen rows instead of the wave's messages.
    """

    __tablename__ = "variant_counts"

    wave_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    variant: Mapped[str] = mapped_column(String(8), primary_key=True)
    part: Mapped[str] = mapped_column(String(16), primary_key=True)  # test or remainder
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class VariantActor(Base):
    """A supporter counted once per signal of a tested wave, as case_actors per case."""

    __tablename__ = "variant_actors"

    wave_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    supporter_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    variant: Mapped[str] = mapped_column(String(8))
    part: Mapped[str] = mapped_column(String(16))


class RollUpMark(Base):
    """When a roll-up last worked off everything waiting: what "as of" on a report means."""

    __tablename__ = "roll_up_marks"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    at: Mapped[datetime]


class BounceStreak(Base):
    """Soft bounces in a row per address; a delivery resets it."""

    __tablename__ = "bounce_streaks"

    email_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    soft_bounces: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class StaffSessionVersion(Base):
    """The server-side session version of one staff login; every session names it.

    Logout and a password change bump `version`, which ends every session
    issued before (sender.core.staff_sessions). `credential` is a keyed digest
    of the configured password, so a password changed in the settings is seen
    on the next request. When staff accounts get rows of their own, these two
    columns move there.
    """

    __tablename__ = "staff_session_versions"

    user_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    credential: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ImportRun(Base):
    """One CSV import started from the workspace: its progress, then its outcome.

    Written by the background import as it goes, so a page reload (or another
    staff member) sees where it stands. Counts only: never a supporter's data.
    """

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    filename: Mapped[str] = mapped_column(String(200))
    started_by: Mapped[str] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(16))  # vocabulary.ImportState
    bytes_total: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_read: Mapped[int] = mapped_column(BigInteger, default=0)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    imported: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[dict[str, Any]] = mapped_column(default=dict)  # reason -> rows
    problem: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class ProofRun(Base):
    """One "send every variant" proof asked for in the workspace, sent in the background.

    The form's one-off key is unique, so a double-click finds the run the first
    click made. Per-variant outcomes only: labels and failure reasons.
    """

    __tablename__ = "proof_runs"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    request_key: Mapped[str] = mapped_column(String(64), unique=True)
    wave_id: Mapped[int] = mapped_column(ForeignKey("waves.id", ondelete="CASCADE"))
    started_by: Mapped[str] = mapped_column(String(320))
    addresses: Mapped[list[str]] = mapped_column(JSONType, default=list)
    status: Mapped[str] = mapped_column(String(16))  # vocabulary.ProofState
    sent: Mapped[list[str]] = mapped_column(JSONType, default=list)  # "case/language[/variant]"
    failed: Mapped[dict[str, Any]] = mapped_column(default=dict)  # label -> reason
    problem: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class ReachCount(Base):
    """Who a wave would reach, counted in the background for its launch confirmation.

    One row per wave, overwritten by each count. `fingerprint` names what the
    count was made for (sender.send.reach_counts: the wave's row and the cap),
    `counted_for` the instant it judged the rules at; `attempt` goes up with
    every start, so a count that outlived its turn cannot write over the next.
    Counts only: (case, language, reason, supporters) rows, never a supporter.
    """

    __tablename__ = "reach_counts"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    wave_id: Mapped[int] = mapped_column(ForeignKey("waves.id", ondelete="CASCADE"), unique=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    counted_for: Mapped[datetime]
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(16))  # vocabulary.ReachState
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    rows: Mapped[list[Any]] = mapped_column(JSONType, default=list)  # [case, language, reason, n]
    error: Mapped[str | None] = mapped_column(Text)


# The staff tables share this metadata; imported last because they need Base.
from sender.core import staff_models  # noqa: E402, F401
