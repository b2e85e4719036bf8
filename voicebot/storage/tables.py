"""SQLAlchemy 2 declarative tables. Portable across SQLite and PostgreSQL.

Types: string ids (uuid4 hex when generated here), JSON, timezone-aware datetimes stored in UTC
(:class:`UTCDateTime` also makes SQLite hand them back aware), ``Numeric(12, 2)`` for money.
Customer-data tables are keyed by ``(tenant_id, id)`` so two tenants may use the same order number.

These classes are private to :mod:`voicebot.storage` (and the built-in SQL CRM adapter, which uses
their Core ``__table__``); repositories hand out the records of :mod:`voicebot.storage.records`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# An auto-incrementing 64-bit key (SQLite only auto-increments INTEGER PRIMARY KEY).
BigIntKey = BigInteger().with_variant(Integer(), "sqlite")


def new_id() -> str:
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, stored in UTC; naive values are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware value")
        converted = value.astimezone(UTC)
        return converted.replace(tzinfo=None) if dialect.name == "sqlite" else converted

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012
        datetime: UTCDateTime(),
        date: Date(),
        Decimal: Numeric(12, 2),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


# --- conversations ------------------------------------------------------------------------------


class ConversationRow(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        Index(None, "tenant_id", "created_at"),
        Index(None, "tenant_id", "status"),
        Index(None, "tenant_id", "contact_key", "created_at"),
        Index(None, "tenant_id", "updated_at"),
    )

    id: Mapped[str] = mapped_column(String(128), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    language: Mapped[str | None] = mapped_column(String(8))
    customer_id: Mapped[str | None] = mapped_column(String(64))
    caller: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    first_response_ms: Mapped[float | None] = mapped_column(Float)
    csat: Mapped[int | None] = mapped_column(Integer)
    resolved_without_human: Mapped[bool | None] = mapped_column(Boolean)
    state: Mapped[dict[str, Any]]
    turn_count: Mapped[int] = mapped_column(Integer, default=0)
    # Dashboard figures, kept up to date by ConversationRepository (see voicebot.storage.metrics):
    intent: Mapped[str | None] = mapped_column(String(100))  # the first intent the bot recognised
    handoff_reason: Mapped[str | None] = mapped_column(String(200))  # of the first handoff
    ended_at: Mapped[datetime | None]
    handle_ms: Mapped[float | None] = mapped_column(Float)  # start -> latest bot reply
    contact_key: Mapped[str | None] = mapped_column(String(330))  # who: customer id, else caller/email
    came_back: Mapped[bool | None] = mapped_column(Boolean)  # the same contact wrote again within 7 days


class DashboardDayRow(Base):
    """A UTC day whose dashboard rollup is up to date (voicebot.storage.dashboard_rollup)."""

    __tablename__ = "dashboard_days"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # days since 1970
    computed_at: Mapped[datetime]


class DashboardStateRow(Base):
    """Changes after ``watermark`` have not yet made their days' rollups stale."""

    __tablename__ = "dashboard_state"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    watermark: Mapped[datetime]


# The dashboard's sums of one day's conversations of one channel and intent ("" for none), in the
# order of DASHBOARD_SUMS (their meaning: voicebot.storage.dashboard).
DASHBOARD_SUMS = (
    "conversations", "answered", "deflected", "handed", "csat_sum", "csat_n", "csat_1", "csat_2",
    "csat_3", "csat_4", "csat_5", "closed", "came_back", "bot_handle_sum", "bot_handle_n",
    "human_handle_sum", "human_handle_n",
)  # fmt: skip
dashboard_daily = Table(
    "dashboard_daily",
    Base.metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("day", Integer, primary_key=True, autoincrement=False),
    Column("channel", String(16), primary_key=True),
    Column("intent", String(100), primary_key=True),
    *(Column(name, Float, nullable=False) for name in DASHBOARD_SUMS),
)


class DashboardHistogramRow(Base):
    """One histogram bin of one day and channel: ``metric`` first_response | voice_latency, by ``dim``
    channel (``key`` "") or intent (``key`` the intent, "" for none)."""

    __tablename__ = "dashboard_histogram"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    metric: Mapped[str] = mapped_column(String(16), primary_key=True)
    dim: Mapped[str] = mapped_column(String(8), primary_key=True)
    day: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    bin: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer)
    low: Mapped[float] = mapped_column(Float)
    high: Mapped[float] = mapped_column(Float)


class DashboardReasonRow(Base):
    """Handoffs of one day's conversations of one channel by reason."""

    __tablename__ = "dashboard_reasons"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    reason: Mapped[str] = mapped_column(String(200), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class TurnRow(Base):
    __tablename__ = "turns"
    __table_args__ = (Index(None, "conversation_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    action: Mapped[str | None] = mapped_column(String(16))
    intent: Mapped[str | None] = mapped_column(String(100))
    confidence: Mapped[float | None] = mapped_column(Float)
    citations: Mapped[list[Any]]
    reason: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime]


class HandoffRow(Base):
    __tablename__ = "handoffs"
    __table_args__ = (
        Index(None, "tenant_id", "status", "created_at"),
        Index(None, "conversation_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    tenant_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text)
    context: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    taken_at: Mapped[datetime | None]
    taken_by: Mapped[str | None] = mapped_column(String(128))
    closed_at: Mapped[datetime | None]


class AuditRow(Base):
    """Every action on customer data leaves one row here."""

    __tablename__ = "audit_log"
    __table_args__ = (Index(None, "tenant_id", "at"), Index(None, "tenant_id", "action", "at"))

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    tenant_id: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str | None] = mapped_column(String(64))
    conversation_id: Mapped[str | None] = mapped_column(String(128))
    details: Mapped[dict[str, Any]]


class PassageRow(Base):
    __tablename__ = "kb_passages"
    __table_args__ = (
        Index(None, "tenant_id", "approved"),
        Index(None, "tenant_id", "source"),
    )

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    source: Mapped[str] = mapped_column(String(500))
    title: Mapped[str] = mapped_column(String(500))
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(8))
    tags: Mapped[list[Any]]
    approved: Mapped[bool] = mapped_column(Boolean)
    questions: Mapped[list[Any]]
    content_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime]


# --- e-mail -------------------------------------------------------------------------------------


class EmailMailboxRow(Base):
    """How far the e-mail bot has read one IMAP mailbox (its UIDVALIDITY and highest UID taken in)."""

    __tablename__ = "email_mailboxes"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(300), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]


class EmailMessageRow(Base):
    """One message in (taken in once: ``dedupe_key`` is its Message-ID, else a hash) or out."""

    __tablename__ = "email_messages"
    __table_args__ = (
        Index(None, "tenant_id", "direction", "dedupe_key", unique=True),
        Index(None, "tenant_id", "direction", "status"),
        Index(None, "tenant_id", "message_id"),
        Index(None, "tenant_id", "from_address", "received_at"),
        Index(None, "conversation_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(3))
    source: Mapped[str] = mapped_column(String(300))
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    uid: Mapped[int | None] = mapped_column(BigInteger)
    dedupe_key: Mapped[str] = mapped_column(String(500))
    message_id: Mapped[str | None] = mapped_column(String(500))
    in_reply_to: Mapped[str | None] = mapped_column(String(500))
    thread_refs: Mapped[list[Any]]  # the References header's Message-IDs
    from_address: Mapped[str | None] = mapped_column(String(320))
    to_addresses: Mapped[list[Any]]
    subject: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    attachments: Mapped[list[Any]]
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    conversation_id: Mapped[str | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"))
    answers_id: Mapped[str | None] = mapped_column(String(32))  # out: the message it answers
    status: Mapped[str] = mapped_column(String(16))
    intent: Mapped[str | None] = mapped_column(String(100))
    reasons: Mapped[list[Any]]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]


class EmailDraftRow(Base):
    """A reply waiting for a person: approved (then sent), or rejected."""

    __tablename__ = "email_drafts"
    __table_args__ = (Index(None, "tenant_id", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(ForeignKey("email_messages.id", ondelete="CASCADE"), unique=True)
    conversation_id: Mapped[str | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"))
    to_address: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text)
    proposed_text: Mapped[str] = mapped_column(Text)
    final_text: Mapped[str | None] = mapped_column(Text)
    reasons: Mapped[list[Any]]
    intent: Mapped[str | None] = mapped_column(String(100))
    customer: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    answers: Mapped[list[Any]]
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(Text)
    reply_id: Mapped[str | None] = mapped_column(String(32))


# --- outbound campaigns ---------------------------------------------------------------------------


class CampaignRow(Base):
    __tablename__ = "campaigns"
    __table_args__ = (Index(None, "tenant_id", "status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    definition: Mapped[dict[str, Any]]  # the validated campaign file, as JSON
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    paced_until: Mapped[datetime | None]  # the start slot of the last call planned (calls_per_second)


class CampaignContactRow(Base):
    """One contact of one campaign, with where its calling stands."""

    __tablename__ = "campaign_contacts"
    __table_args__ = (
        Index(None, "campaign_id", "phone", unique=True),
        Index(None, "campaign_id", "status", "next_due_at"),
    )

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(32))  # E.164
    name: Mapped[str | None] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    variables: Mapped[dict[str, Any]]
    source_line: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_due_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime]
    consent: Mapped[bool | None]  # from the contacts file; None: not stated
    result: Mapped[dict[str, Any] | None]  # structured answers of the last answered call


class CampaignAttemptRow(Base):
    """One attempt to call one contact: planned, dialled (once), ended. A lease held by the worker
    making the call lets another process tell a live call from one a crash left behind."""

    __tablename__ = "campaign_attempts"
    __table_args__ = (
        Index(None, "contact_id", "attempt", unique=True),
        Index(None, "campaign_id", "ended_at"),
    )

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("campaign_contacts.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    phone: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[datetime]  # when the contact became due
    planned_at: Mapped[datetime]  # its paced start slot
    started_at: Mapped[datetime | None]  # dialling began (set once: no attempt is dialled twice)
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    lease_until: Mapped[datetime]
    worker: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)  # SIP status, hang-up reason, AMD verdict
    call_id: Mapped[str | None] = mapped_column(String(200))
    conversation_id: Mapped[str | None] = mapped_column(String(32))
    transcript: Mapped[list[Any] | None]
    result: Mapped[dict[str, Any] | None]


class DoNotCallRow(Base):
    """A number never to be called: by any campaign (``scope`` "*") or by one campaign (its id)."""

    __tablename__ = "do_not_call"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    phone: Mapped[str] = mapped_column(String(32), primary_key=True)
    scope: Mapped[str] = mapped_column(String(32), primary_key=True)
    reason: Mapped[str | None] = mapped_column(Text)
    added_at: Mapped[datetime]


# --- customer data (the built-in SQL CRM) ---------------------------------------------------------


def _customer_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(["tenant_id", "customer_id"], ["customers.tenant_id", "customers.id"])


class CustomerRow(Base):
    __tablename__ = "customers"
    __table_args__ = (
        Index(None, "tenant_id", "phone"),
        Index(None, "tenant_id", "email"),
    )

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32))  # E.164
    email: Mapped[str | None] = mapped_column(String(320))
    postcode: Mapped[str | None] = mapped_column(String(16))
    birth_date: Mapped[date | None]
    language: Mapped[str | None] = mapped_column(String(8))


class OrderRow(Base):
    __tablename__ = "orders"
    __table_args__ = (_customer_fk(), Index(None, "tenant_id", "customer_id"))

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    delivery_address: Mapped[str] = mapped_column(Text)
    items: Mapped[list[Any]]
    total: Mapped[Decimal | None]
    currency: Mapped[str] = mapped_column(String(3))
    updated_at: Mapped[datetime | None]
    tracking_url: Mapped[str | None] = mapped_column(String(500))


class AppointmentRow(Base):
    __tablename__ = "appointments"
    __table_args__ = (_customer_fk(), Index(None, "tenant_id", "customer_id", "starts_at"))

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    starts_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    service: Mapped[str] = mapped_column(String(200))
    location: Mapped[str] = mapped_column(String(200))


class InvoiceRow(Base):
    __tablename__ = "invoices"
    __table_args__ = (_customer_fk(), Index(None, "tenant_id", "customer_id"))

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3))
    due_date: Mapped[date]
    status: Mapped[str] = mapped_column(String(16))
    paid_at: Mapped[datetime | None]


class TicketRow(Base):
    __tablename__ = "tickets"
    __table_args__ = (_customer_fk(), Index(None, "tenant_id", "customer_id"))

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str | None] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    fields: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class NoteRow(Base):
    __tablename__ = "notes"
    __table_args__ = (_customer_fk(), Index(None, "tenant_id", "customer_id"))

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


# --- console accounts ------------------------------------------------------------------------------


class UserRow(Base):
    """A person (or machine) that uses the console and the API, with one role."""

    __tablename__ = "users"
    __table_args__ = (Index(None, "tenant_id", "username", unique=True),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(64))
    username: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(Text)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]


class ApiTokenRow(Base):
    """An API token of a user; only its SHA-256 is stored (the token is 256 random bits)."""

    __tablename__ = "api_tokens"
    __table_args__ = (Index(None, "token_hash", unique=True), Index(None, "user_id"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class ConsoleSessionRow(Base):
    """A logged-in browser; the id is the SHA-256 of the cookie's value."""

    __tablename__ = "console_sessions"
    __table_args__ = (Index(None, "user_id"), Index(None, "expires_at"))

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    client: Mapped[str | None] = mapped_column(String(64))


class LoginAttemptRow(Base):
    """Every password login, for rate limiting (by username and by client address)."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index(None, "tenant_id", "username", "at"), Index(None, "tenant_id", "client", "at"))

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    username: Mapped[str] = mapped_column(String(64))
    client: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    succeeded: Mapped[bool] = mapped_column(Boolean)


class AnswerReviewRow(Base):
    """A reviewer's verdict on one bot answer (one per reviewer and turn)."""

    __tablename__ = "answer_reviews"
    __table_args__ = (
        Index(None, "turn_id", "reviewer", unique=True),
        Index(None, "tenant_id", "verdict", "created_at"),
        Index(None, "conversation_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(64))
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    turn_id: Mapped[int] = mapped_column(BigInteger)
    verdict: Mapped[str] = mapped_column(String(8))
    note: Mapped[str] = mapped_column(Text, default="")
    reviewer: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


metadata = Base.metadata

conversations = cast(Table, ConversationRow.__table__)
turns = cast(Table, TurnRow.__table__)
handoffs = cast(Table, HandoffRow.__table__)
audit_log = cast(Table, AuditRow.__table__)
kb_passages = cast(Table, PassageRow.__table__)
customers = cast(Table, CustomerRow.__table__)
orders = cast(Table, OrderRow.__table__)
appointments = cast(Table, AppointmentRow.__table__)
invoices = cast(Table, InvoiceRow.__table__)
tickets = cast(Table, TicketRow.__table__)
notes = cast(Table, NoteRow.__table__)
email_mailboxes = cast(Table, EmailMailboxRow.__table__)
email_messages = cast(Table, EmailMessageRow.__table__)
email_drafts = cast(Table, EmailDraftRow.__table__)
campaigns = cast(Table, CampaignRow.__table__)
campaign_contacts = cast(Table, CampaignContactRow.__table__)
do_not_call = cast(Table, DoNotCallRow.__table__)
campaign_attempts = cast(Table, CampaignAttemptRow.__table__)
users = cast(Table, UserRow.__table__)
api_tokens = cast(Table, ApiTokenRow.__table__)
console_sessions = cast(Table, ConsoleSessionRow.__table__)
login_attempts = cast(Table, LoginAttemptRow.__table__)
answer_reviews = cast(Table, AnswerReviewRow.__table__)
dashboard_days = cast(Table, DashboardDayRow.__table__)
dashboard_state = cast(Table, DashboardStateRow.__table__)
dashboard_histogram = cast(Table, DashboardHistogramRow.__table__)
dashboard_reasons = cast(Table, DashboardReasonRow.__table__)
