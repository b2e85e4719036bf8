"""What the repositories hand out: frozen dataclasses and the state enums.

ORM objects and SQLAlchemy rows never leave :mod:`voicebot.storage`; callers get these records.

Conversation states and the moves between them (``ConversationStatus.transition``)::

    active   -> handoff | resolved | ended
    handoff  -> active (handed back) | resolved (an agent closed it) | ended (customer left)
    resolved -> active (the customer wrote again) | handoff | ended
    ended       terminal

Handoff states (``HandoffStatus.transition``)::

    waiting -> taken | closed
    taken   -> closed
    closed     terminal

Staying in the same state is always allowed (a no-op).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from voicebot.errors import ConflictError

logger = logging.getLogger("voicebot.storage")


class ConversationStatus(StrEnum):
    ACTIVE = "active"
    HANDOFF = "handoff"
    RESOLVED = "resolved"
    ENDED = "ended"

    @classmethod
    def transition(cls, old: ConversationStatus | str, new: ConversationStatus | str) -> ConversationStatus:
        """Validate ``old -> new``; return ``new``. Raises ConflictError on an illegal move."""
        return _transition(cls(old), cls(new), _CONVERSATION_MOVES, "conversation")


class HandoffStatus(StrEnum):
    WAITING = "waiting"
    TAKEN = "taken"
    CLOSED = "closed"

    @classmethod
    def transition(cls, old: HandoffStatus | str, new: HandoffStatus | str) -> HandoffStatus:
        """Validate ``old -> new``; return ``new``. Raises ConflictError on an illegal move."""
        return _transition(cls(old), cls(new), _HANDOFF_MOVES, "handoff")


_CONVERSATION_MOVES: dict[StrEnum, frozenset[StrEnum]] = {
    ConversationStatus.ACTIVE: frozenset(
        {ConversationStatus.HANDOFF, ConversationStatus.RESOLVED, ConversationStatus.ENDED}
    ),
    ConversationStatus.HANDOFF: frozenset(
        {ConversationStatus.ACTIVE, ConversationStatus.RESOLVED, ConversationStatus.ENDED}
    ),
    ConversationStatus.RESOLVED: frozenset(
        {ConversationStatus.ACTIVE, ConversationStatus.HANDOFF, ConversationStatus.ENDED}
    ),
    ConversationStatus.ENDED: frozenset(),
}

_HANDOFF_MOVES: dict[StrEnum, frozenset[StrEnum]] = {
    HandoffStatus.WAITING: frozenset({HandoffStatus.TAKEN, HandoffStatus.CLOSED}),
    HandoffStatus.TAKEN: frozenset({HandoffStatus.CLOSED}),
    HandoffStatus.CLOSED: frozenset(),
}


S = TypeVar("S", bound=StrEnum)


def _transition(old: S, new: S, moves: dict[StrEnum, frozenset[StrEnum]], what: str) -> S:
    if old == new:
        return new
    if new not in moves[old]:
        raise ConflictError(f"{what} cannot move from {old.value} to {new.value}")
    logger.debug("%s %s -> %s", what, old.value, new.value)
    return new


class TurnRole(StrEnum):
    CUSTOMER = "customer"
    BOT = "bot"
    AGENT = "agent"


@dataclass(frozen=True, slots=True)
class ConversationRecord:
    id: str
    tenant_id: str
    channel: str
    status: ConversationStatus
    created_at: datetime
    updated_at: datetime
    language: str | None = None
    customer_id: str | None = None
    caller: str | None = None
    email: str | None = None
    first_response_ms: float | None = None
    csat: int | None = None
    resolved_without_human: bool | None = None
    state: dict[str, Any] = field(default_factory=dict)
    turn_count: int = 0  # stored turns of every role (customer, bot, agent)


@dataclass(frozen=True, slots=True)
class TurnRecord:
    id: int
    conversation_id: str
    role: TurnRole
    text: str
    created_at: datetime
    action: str | None = None
    intent: str | None = None
    confidence: float | None = None
    citations: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    latency_ms: float | None = None


@dataclass(frozen=True, slots=True)
class HandoffRecord:
    id: str
    conversation_id: str
    tenant_id: str
    channel: str
    reason: str
    summary: str
    status: HandoffStatus
    created_at: datetime
    context: dict[str, Any] = field(default_factory=dict)
    taken_at: datetime | None = None
    taken_by: str | None = None
    closed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    at: datetime
    tenant_id: str
    actor: str
    action: str
    customer_id: str | None = None
    conversation_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PassageRecord:
    """One knowledge-base passage. ``content_hash`` is computed from the text when left empty."""

    id: str
    source: str
    title: str
    text: str
    language: str | None = None
    tags: tuple[str, ...] = ()
    approved: bool = True
    questions: tuple[str, ...] = ()
    content_hash: str = ""
    updated_at: datetime | None = None  # set by KnowledgeRepository.replace


class InboundStatus(StrEnum):
    """A message in: taken in (``received``), being decided, then one of the three outcomes."""

    RECEIVED = "received"
    PROCESSING = "processing"
    REPLIED = "replied"
    DRAFTED = "drafted"
    IGNORED = "ignored"
    FAILED = "failed"


class OutboundStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class DraftStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"

    @classmethod
    def transition(cls, old: DraftStatus | str, new: DraftStatus | str) -> DraftStatus:
        """Validate ``old -> new``; return ``new``. Raises ConflictError on an illegal move."""
        return _transition(cls(old), cls(new), _DRAFT_MOVES, "draft")


_DRAFT_MOVES: dict[StrEnum, frozenset[StrEnum]] = {
    DraftStatus.PENDING: frozenset({DraftStatus.APPROVED, DraftStatus.REJECTED}),
    DraftStatus.APPROVED: frozenset(),
    DraftStatus.REJECTED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class EmailMessageRecord:
    id: str
    tenant_id: str
    direction: str  # in | out
    source: str
    status: str  # InboundStatus or OutboundStatus value
    subject: str
    text: str
    received_at: datetime
    message_id: str | None = None
    in_reply_to: str | None = None
    thread_refs: tuple[str, ...] = ()
    from_address: str | None = None
    to_addresses: tuple[str, ...] = ()
    attachments: tuple[dict[str, Any], ...] = ()
    conversation_id: str | None = None
    answers_id: str | None = None
    intent: str | None = None
    reasons: tuple[str, ...] = ()
    attempts: int = 0
    error: str | None = None
    uidvalidity: int | None = None
    uid: int | None = None
    claimed_at: datetime | None = None
    done_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EmailDraftRecord:
    id: str
    tenant_id: str
    message_id: str  # the email_messages row it answers
    status: DraftStatus
    subject: str
    proposed_text: str
    created_at: datetime
    to_address: str | None = None
    conversation_id: str | None = None
    final_text: str | None = None
    reasons: tuple[str, ...] = ()
    intent: str | None = None
    customer: dict[str, Any] | None = None
    answers: tuple[dict[str, Any], ...] = ()
    decided_at: datetime | None = None
    decided_by: str | None = None
    note: str | None = None
    reply_id: str | None = None


class CampaignStatus(StrEnum):
    DRAFT = "draft"  # created, not started
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"  # by an operator, for good
    COMPLETED = "completed"  # every contact ended

    @classmethod
    def transition(cls, old: CampaignStatus | str, new: CampaignStatus | str) -> CampaignStatus:
        """Validate ``old -> new``; return ``new``. Raises ConflictError on an illegal move."""
        return _transition(cls(old), cls(new), _CAMPAIGN_MOVES, "campaign")


_CAMPAIGN_MOVES: dict[StrEnum, frozenset[StrEnum]] = {
    CampaignStatus.DRAFT: frozenset({CampaignStatus.RUNNING, CampaignStatus.STOPPED}),
    CampaignStatus.RUNNING: frozenset(
        {CampaignStatus.PAUSED, CampaignStatus.STOPPED, CampaignStatus.COMPLETED}
    ),
    CampaignStatus.PAUSED: frozenset({CampaignStatus.RUNNING, CampaignStatus.STOPPED}),
    CampaignStatus.STOPPED: frozenset(),
    CampaignStatus.COMPLETED: frozenset(),
}


class ContactStatus(StrEnum):
    PENDING = "pending"  # waiting for its next attempt (next_due_at)
    CALLING = "calling"
    DONE = "done"  # ended, with an outcome


@dataclass(frozen=True, slots=True)
class CampaignRecord:
    id: str
    tenant_id: str
    name: str
    kind: str
    status: CampaignStatus
    definition: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class CampaignContactRecord:
    id: int
    campaign_id: str
    phone: str
    timezone: str
    status: ContactStatus
    source_line: int
    updated_at: datetime
    name: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    next_due_at: datetime | None = None
    outcome: str | None = None
    consent: bool | None = None
    result: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class CampaignAttemptRecord:
    """One attempt: planned (``planned_at``), dialled once (``started_at``), ended (``ended_at``)."""

    id: int
    campaign_id: str
    contact_id: int
    attempt: int
    phone: str
    due_at: datetime
    planned_at: datetime
    lease_until: datetime
    started_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    worker: str | None = None
    outcome: str | None = None
    detail: str | None = None
    call_id: str | None = None
    conversation_id: str | None = None
    transcript: list[Any] | None = None
    result: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: str
    tenant_id: str
    username: str
    display_name: str
    role: str
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None = None
    has_password: bool = False


@dataclass(frozen=True, slots=True)
class ApiTokenRecord:
    id: str
    user_id: str
    name: str
    prefix: str  # the token's first characters, to tell tokens apart in lists
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
