"""The project's shared vocabulary: every state and kind is a `str` enum.

Stored as plain strings in the database so that reports and SQL read well,
and so that a new member never needs a schema change.
"""

from __future__ import annotations

from enum import StrEnum


class SupporterStatus(StrEnum):
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    FORGOTTEN = "forgotten"


class ImportState(StrEnum):
    """Where a workspace import (models.ImportRun) stands."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ProofState(StrEnum):
    """Where a workspace proof send (models.ProofRun) stands."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ReachState(StrEnum):
    """Where a launch confirmation's count (models.ReachCount) stands."""

    COUNTING = "counting"
    DONE = "done"
    FAILED = "failed"


class CampaignStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"  # everything stopped; read-only from then on


class CaseStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    RESOLVED = "resolved"


class WaveKind(StrEnum):
    """The names of the shipped email kinds, for code that names one.

    Kinds are data, not this enum: `templates/kinds.yaml` lists the shipped ones
    (a template pair each, and a default audience) and a campaign may declare its
    own (sender.campaign.kinds). A wave's kind is any such name, stored as text.
    """

    CASE_EMAIL = "case_email"
    ACTION_REMINDER = "action_reminder"
    LAST_CHANCE = "last_chance"
    THANK_YOU = "thank_you"
    GOOD_NEWS = "good_news"


class AudienceRule(StrEnum):
    """Who a wave goes to, among the supporters assigned to its campaign's cases.

    Rules are code (each is SQL in sender.send.eligibility); kinds pick one.
    """

    ALL_ASSIGNED = "all_assigned"
    NOT_ACTED = "not_acted"
    OPENED_NOT_ACTED = "opened_not_acted"
    ACTED = "acted"  # acted on their case: a thank-you
    CASE_ASSIGNED = "case_assigned"  # assigned a case, resolved ones included: good news


class WaveStatus(StrEnum):
    DRAFT = "draft"  # declared, not launched
    SCHEDULED = "scheduled"  # launched, waiting for its start
    SENDING = "sending"  # planned; batches are being released
    PAUSED = "paused"
    DONE = "done"
    CANCELLED = "cancelled"
    MISSED = "missed"  # its time passed before it could fire: never sent late


class BatchStatus(StrEnum):
    PENDING = "pending"  # planned, its send slot has not opened
    QUEUED = "queued"  # handed to a worker
    SENDING = "sending"  # request in flight: outcome unknown if the worker dies now
    SENT = "sent"  # provider accepted it
    FAILED = "failed"  # provider refused it (400/413); staff may retry after a fix
    CANCELLED = "cancelled"


class MessageStatus(StrEnum):
    PLANNED = "planned"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"  # no longer eligible at send time
    CANCELLED = "cancelled"


class EventType(StrEnum):
    """Normalised delivery and engagement events, whatever the provider."""

    QUEUED = "queued"
    DELIVERED = "delivered"
    DEFERRED = "deferred"
    BOUNCED = "bounced"
    BLOCKED = "blocked"
    DROPPED = "dropped"
    OPENED = "opened"
    CLICKED = "clicked"
    COMPLAINED = "complained"
    UNSUBSCRIBED = "unsubscribed"
    GROUP_UNSUBSCRIBED = "group_unsubscribed"
    GROUP_RESUBSCRIBED = "group_resubscribed"
    ACCOUNT_STATUS = "account_status"  # about our provider account, not a recipient
    UNKNOWN = "unknown"


class AccountChange(StrEnum):
    """What an account-level event means for sending: every wave stops, or may go again."""

    STOPPED = "stopped"  # quota used up, or the provider suspended the account
    REACTIVATED = "reactivated"  # staff still decide when to resume


class BounceClass(StrEnum):
    """The provider's class of a bounce, for reports; never a reason to act by itself."""

    INVALID_ADDRESS = "invalid_address"
    TECHNICAL = "technical"
    CONTENT = "content"
    REPUTATION = "reputation"
    FREQUENCY_OR_VOLUME = "frequency_or_volume"
    MAILBOX_UNAVAILABLE = "mailbox_unavailable"
    UNCLASSIFIED = "unclassified"


class RejectionKind(StrEnum):
    """Why a webhook event is kept raw in rejected_events instead of taking effect.

    The first four: it could not be stored as an event. The last two: it was stored,
    but its custom args do not bind it to a message we sent (sender.track.binding),
    so it changes no supporter.
    """

    NOT_AN_OBJECT = "not_an_object"
    MISSING_TYPE = "missing_type"
    MISSING_TIMESTAMP = "missing_timestamp"
    INVALID_TEXT = "invalid_text"  # NUL characters or lone surrogates: jsonb holds neither
    MISMATCHED = "mismatched"  # names a message or supporter it does not match
    FOREIGN = "foreign"  # carries another installation's id


# The rejections of events that were stored but refused when processed.
REFUSED_KINDS = frozenset({RejectionKind.MISMATCHED, RejectionKind.FOREIGN})


class ActionKind(StrEnum):
    OPENED = "opened"
    OPENED_MACHINE = "opened_machine"
    CLICKED = "clicked"  # a person's click (sender.track.clicks): acting when on the action link
    CLICKED_MACHINE = "clicked_machine"  # a gateway's or scanner's fetch: never acting
    LETTER_SENT = "letter_sent"
    REPLIED = "replied"


class LinkTarget(StrEnum):
    """The links of one email whose fetches are recorded (sender.track.clicks)."""

    ACTION = "action"
    UNSUBSCRIBE = "unsubscribe"  # the confirmation page, not the one-click POST
    HONEYPOT = "honeypot"  # hidden from people: only machines follow it


class ClickClass(StrEnum):
    HUMAN = "human"
    MACHINE = "machine"


class MachineSign(StrEnum):
    """Why a fetch was taken for a machine's: the first rule that matched."""

    HONEYPOT = "honeypot"
    HEAD_REQUEST = "head_request"
    SCANNER_AGENT = "scanner_agent"  # a known scanner, a script library or no user agent
    RIGHT_AFTER_DELIVERY = "right_after_delivery"
    BURST = "burst"  # other links of the same message fetched seconds before
    LATER_EVIDENCE = "later_evidence"  # taken for a person's, until machine evidence came


class SuppressionReason(StrEnum):
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    DROPPED = "dropped"  # stored before drops were told apart by reason; no longer written
    INVALID = "invalid"  # the provider refused the address itself as malformed
    FORGOTTEN = "forgotten"
    MANUAL = "manual"


class ReplyStatus(StrEnum):
    RECEIVED = "received"  # stored raw, not parsed yet
    MATCHED = "matched"
    AUTO_REPLY = "auto_reply"
    UNSUBSCRIBE = "unsubscribe"
    REVIEW = "review"  # matched no supporter, or could not be parsed


class ReviewOutcome(StrEnum):
    """What a person decided for a reply on the review list (sender.track.reply_review)."""

    ASSIGNED = "assigned"  # counted as a supporter's reply to a case
    DISMISSED = "dismissed"
    UNSUBSCRIBED = "unsubscribed"


class RunMode(StrEnum):
    """How much the process trusts its settings (sender.core.runmode).

    Production is the default: every process that serves or sends refuses to
    start on a published or weak secret. `campaign demo` and the test suite
    run in demo / dev mode, where the published development values are fine
    because nothing reaches real supporters.
    """

    PRODUCTION = "production"
    DEV = "dev"
    DEMO = "demo"


class SubjectMetric(StrEnum):
    """What a subject test counts to pick its winner: people only, never machines."""

    HUMAN_CLICKS = "human_clicks"  # a person's click on the action link (`clicked`)
    ACTIONS = "actions"  # a letter sent or a reply (`letter_sent`, `replied`)
    HUMAN_OPENS = "human_opens"  # `opened`; a privacy proxy's `opened_machine` never counts


class SubjectState(StrEnum):
    """Where a wave's subject test stands (table `subject_tests`)."""

    TESTING = "testing"  # the test share is planned; waiting for its results
    DECIDED = "decided"  # a winner (or the default) is chosen; the remainder is not planned yet
    FINISHED = "finished"  # the remainder is planned with the winner
