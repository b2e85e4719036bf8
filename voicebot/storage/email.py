"""The e-mail bot's bookkeeping: mailboxes read, messages in and out, drafts waiting for a person.

Exactly once rests on three rules:

* a message is taken in by one transaction that inserts it (ignored when its ``dedupe_key``, the
  Message-ID or else a hash of the bytes, is already there) and advances the mailbox's last UID, so a
  message fetched twice (a restart, a second worker, the same mail in two mailboxes) is stored once;
* a message is decided by whoever ``claim``s it (``received`` -> ``processing``, under the write lock
  or ``FOR UPDATE SKIP LOCKED``); a claim older than the lease (its process died) may be taken again;
* the outcome (status, the queued reply or the draft, the audit row) is written in one transaction,
  and replies leave from that queue, so a reply exists once and is sent until SMTP accepted it.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Insert, RowMapping, and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from voicebot.errors import ConflictError, NotFoundError
from voicebot.storage import tables
from voicebot.storage._common import insert_ignoring_duplicates, utc
from voicebot.storage.audit import AuditRepository
from voicebot.storage.db import Database
from voicebot.storage.records import (
    DraftStatus,
    EmailDraftRecord,
    EmailMessageRecord,
    InboundStatus,
    OutboundStatus,
)

_M = tables.email_messages
_D = tables.email_drafts
_B = tables.email_mailboxes

IN, OUT = "in", "out"


@dataclass(frozen=True)
class MailRecord:
    """What is stored of one message, in or out (the raw bytes are kept as they came or went)."""

    raw: bytes
    dedupe_key: str
    subject: str
    text: str
    message_id: str | None = None
    in_reply_to: str | None = None
    thread_refs: tuple[str, ...] = ()
    from_address: str | None = None
    to_addresses: tuple[str, ...] = ()
    attachments: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class DraftValues:
    to_address: str | None
    subject: str
    proposed_text: str
    reasons: tuple[str, ...]
    intent: str | None
    customer: dict[str, Any] | None
    answers: tuple[dict[str, Any], ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class AuditEntry:
    action: str
    actor: str
    customer_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def message_record(row: RowMapping | dict[str, Any]) -> EmailMessageRecord:
    return EmailMessageRecord(
        id=row["id"],
        tenant_id=row["tenant_id"],
        direction=row["direction"],
        source=row["source"],
        status=row["status"],
        subject=row["subject"],
        text=row["text"],
        received_at=row["received_at"],
        message_id=row["message_id"],
        in_reply_to=row["in_reply_to"],
        thread_refs=tuple(row["thread_refs"] or ()),
        from_address=row["from_address"],
        to_addresses=tuple(row["to_addresses"] or ()),
        attachments=tuple(row["attachments"] or ()),
        conversation_id=row["conversation_id"],
        answers_id=row["answers_id"],
        intent=row["intent"],
        reasons=tuple(row["reasons"] or ()),
        attempts=row["attempts"],
        error=row["error"],
        uidvalidity=row["uidvalidity"],
        uid=row["uid"],
        claimed_at=row["claimed_at"],
        done_at=row["done_at"],
    )


def draft_record(row: RowMapping | dict[str, Any]) -> EmailDraftRecord:
    return EmailDraftRecord(
        id=row["id"],
        tenant_id=row["tenant_id"],
        message_id=row["message_id"],
        status=DraftStatus(row["status"]),
        subject=row["subject"],
        proposed_text=row["proposed_text"],
        created_at=row["created_at"],
        to_address=row["to_address"],
        conversation_id=row["conversation_id"],
        final_text=row["final_text"],
        reasons=tuple(row["reasons"] or ()),
        intent=row["intent"],
        customer=row["customer"],
        answers=tuple(row["answers"] or ()),
        decided_at=row["decided_at"],
        decided_by=row["decided_by"],
        note=row["note"],
        reply_id=row["reply_id"],
    )


# every column but the raw bytes (lists and pages never need them)
_MESSAGE_COLUMNS = [c for c in _M.c if c.name != "raw"]


class EmailRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- taking mail in -------------------------------------------------------------------------

    async def start_mailbox(self, tenant_id: str, source: str, uidvalidity: int, now: datetime) -> int:
        """Note the mailbox's UIDVALIDITY; return the last UID taken in under it (0 when it is new
        or its UIDs were renumbered, so every message is looked at again; dedupe keys catch repeats)."""
        now = utc(now)
        async with self._db.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(_B.c.uidvalidity, _B.c.last_uid).where(
                        _B.c.tenant_id == tenant_id, _B.c.source == source
                    )
                )
            ).first()
            if row is not None and int(row[0]) == uidvalidity:
                return int(row[1])
            values = {"uidvalidity": uidvalidity, "last_uid": 0, "updated_at": now}
            if row is None:
                await conn.execute(insert(_B).values(tenant_id=tenant_id, source=source, **values))
            else:
                await conn.execute(
                    update(_B).where(_B.c.tenant_id == tenant_id, _B.c.source == source).values(values)
                )
        return 0

    async def intake(
        self,
        tenant_id: str,
        source: str,
        mail: MailRecord,
        now: datetime,
        *,
        uidvalidity: int | None = None,
        uid: int | None = None,
        status: InboundStatus = InboundStatus.RECEIVED,
    ) -> EmailMessageRecord | None:
        """Store one message in and advance the mailbox past ``uid``, in one transaction.
        None when the message was taken in before (same dedupe key)."""
        now = utc(now)
        values = _mail_values(mail) | {
            "id": tables.new_id(),
            "tenant_id": tenant_id,
            "direction": IN,
            "source": source,
            "uidvalidity": uidvalidity,
            "uid": uid,
            "conversation_id": None,
            "answers_id": None,
            "status": status.value,
            "intent": None,
            "reasons": [],
            "attempts": 0,
            "error": None,
            "received_at": now,
            "claimed_at": None,
            "next_attempt_at": None,
            "done_at": now if status is not InboundStatus.RECEIVED else None,
        }
        async with self._db.engine.begin() as conn:
            statement = insert_ignoring_duplicates(self._db.dialect, _M, values)
            inserted = (await conn.execute(statement.returning(_M.c.id))).first()
            if uid is not None and uidvalidity is not None:
                await conn.execute(
                    update(_B)
                    .where(
                        _B.c.tenant_id == tenant_id,
                        _B.c.source == source,
                        _B.c.uidvalidity == uidvalidity,
                        _B.c.last_uid < uid,
                    )
                    .values(last_uid=uid, updated_at=now)
                )
        if inserted is None:
            return None
        return message_record(values)

    # --- deciding -------------------------------------------------------------------------------

    async def claim(self, tenant_id: str, now: datetime, lease: timedelta) -> EmailMessageRecord | None:
        """Take the oldest message waiting to be decided (or one whose claim outlived ``lease``)."""
        now = utc(now)
        waiting = and_(
            _M.c.status == InboundStatus.RECEIVED.value,
            or_(_M.c.next_attempt_at.is_(None), _M.c.next_attempt_at <= now),
        )
        abandoned = and_(_M.c.status == InboundStatus.PROCESSING.value, _M.c.claimed_at < now - lease)
        query = (
            select(*_MESSAGE_COLUMNS)
            .where(_M.c.tenant_id == tenant_id, _M.c.direction == IN, or_(waiting, abandoned))
            .order_by(_M.c.received_at, _M.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        async with self._db.engine.begin() as conn:
            row = (await conn.execute(query)).mappings().first()
            if row is None:
                return None
            changes = {
                "status": InboundStatus.PROCESSING.value,
                "claimed_at": now,
                "attempts": row["attempts"] + 1,
            }
            await conn.execute(update(_M).where(_M.c.id == row["id"]).values(changes))
        return message_record({**row, **changes})

    async def thread_conversation(self, tenant_id: str, message_ids: list[str]) -> str | None:
        """The conversation of the newest stored message (in or out) among ``message_ids``."""
        if not message_ids:
            return None
        query = (
            select(_M.c.conversation_id)
            .where(
                _M.c.tenant_id == tenant_id,
                _M.c.message_id.in_(message_ids),
                _M.c.conversation_id.is_not(None),
            )
            .order_by(_M.c.received_at.desc())
            .limit(1)
        )
        async with self._db.reader.connect() as conn:
            return (await conn.execute(query)).scalar_one_or_none()

    async def replied_to(self, tenant_id: str, address: str, since: datetime) -> int:
        """Messages from ``address`` taken in since ``since`` that the bot answered itself."""
        query = select(func.count()).where(
            _M.c.tenant_id == tenant_id,
            _M.c.direction == IN,
            func.lower(_M.c.from_address) == address.lower(),
            _M.c.received_at >= utc(since),
            _M.c.status == InboundStatus.REPLIED.value,
        )
        async with self._db.reader.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def finish(
        self,
        message_id: str,
        *,
        status: InboundStatus,
        now: datetime,
        conversation_id: str | None = None,
        intent: str | None = None,
        reasons: tuple[str, ...] = (),
        reply: MailRecord | None = None,
        draft: DraftValues | None = None,
        audit: AuditEntry | None = None,
        claimed_at: datetime | None = None,
    ) -> tuple[EmailMessageRecord, EmailDraftRecord | None, EmailMessageRecord | None]:
        """Write a decision in one transaction: the message's outcome, the queued reply or the
        draft, and the audit row. ConflictError when the message is no longer this claim's."""
        now = utc(now)
        async with self._db.engine.begin() as conn:
            row = await _message_row(conn, message_id)
            if row["status"] != InboundStatus.PROCESSING.value or (
                claimed_at is not None and row["claimed_at"] != claimed_at
            ):
                raise ConflictError(f"e-mail {message_id} is {row['status']}, no longer this claim's")
            changes = {
                "status": status.value,
                "conversation_id": conversation_id,
                "intent": intent,
                "reasons": list(reasons),
                "done_at": now,
                "error": None,
            }
            await conn.execute(update(_M).where(_M.c.id == message_id).values(changes))
            reply_values = None
            if reply is not None:
                reply_values = _outbound_values(row["tenant_id"], reply, conversation_id, message_id, now)
                await conn.execute(insert(_M).values(reply_values))
            draft_values = None
            if draft is not None:
                draft_values = _draft_values(row["tenant_id"], message_id, conversation_id, draft, now)
                await conn.execute(insert(_D).values(draft_values))
            if audit is not None:
                await conn.execute(_audit(row["tenant_id"], audit, now, conversation_id))
        return (
            message_record({**row, **changes}),
            draft_record(draft_values) if draft_values is not None else None,
            message_record(reply_values) if reply_values is not None else None,
        )

    async def retry_later(
        self, message_id: str, *, error: str, now: datetime, retry_at: datetime | None
    ) -> None:
        """Deciding failed: try again at ``retry_at``, or give up (``failed``) when it is None."""
        now = utc(now)
        changes: dict[str, Any] = {"error": error[:2000]}
        if retry_at is None:
            changes |= {"status": InboundStatus.FAILED.value, "done_at": now}
        else:
            changes |= {"status": InboundStatus.RECEIVED.value, "next_attempt_at": utc(retry_at)}
        async with self._db.engine.begin() as conn:
            await conn.execute(
                update(_M)
                .where(_M.c.id == message_id, _M.c.status == InboundStatus.PROCESSING.value)
                .values(changes)
            )

    # --- sending --------------------------------------------------------------------------------

    async def claim_outbound(
        self, tenant_id: str, now: datetime, lease: timedelta, limit: int = 20
    ) -> list[tuple[EmailMessageRecord, bytes]]:
        """Take queued replies whose time has come (or whose send outlived ``lease``), oldest first,
        with their bytes."""
        now = utc(now)
        due = and_(
            _M.c.status == OutboundStatus.QUEUED.value,
            or_(_M.c.next_attempt_at.is_(None), _M.c.next_attempt_at <= now),
        )
        abandoned = and_(_M.c.status == OutboundStatus.SENDING.value, _M.c.claimed_at < now - lease)
        query = (
            select(_M)
            .where(_M.c.tenant_id == tenant_id, _M.c.direction == OUT, or_(due, abandoned))
            .order_by(_M.c.received_at, _M.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with self._db.engine.begin() as conn:
            rows = (await conn.execute(query)).mappings().all()
            if rows:
                await conn.execute(
                    update(_M)
                    .where(_M.c.id.in_([r["id"] for r in rows]))
                    .values(status=OutboundStatus.SENDING.value, claimed_at=now)
                )
        changes = {"status": OutboundStatus.SENDING.value, "claimed_at": now}
        return [(message_record({**r, **changes}), bytes(r["raw"])) for r in rows]

    async def next_retry_at(self, tenant_id: str) -> datetime | None:
        """When the earliest queued reply that failed before is due again (None: none waits)."""
        query = select(func.min(_M.c.next_attempt_at)).where(
            _M.c.tenant_id == tenant_id, _M.c.direction == OUT, _M.c.status == OutboundStatus.QUEUED.value
        )
        async with self._db.reader.connect() as conn:
            return (await conn.execute(query)).scalar_one_or_none()

    async def mark_sent(self, message_id: str, now: datetime) -> None:
        async with self._db.engine.begin() as conn:
            await conn.execute(
                update(_M)
                .where(_M.c.id == message_id)
                .values(status=OutboundStatus.SENT.value, done_at=utc(now), error=None)
            )

    async def send_failed(
        self, message_id: str, *, error: str, now: datetime, retry_at: datetime | None
    ) -> None:
        """SMTP did not take the reply: try again at ``retry_at``, or give up when it is None."""
        changes: dict[str, Any] = {"error": error[:2000], "attempts": _M.c.attempts + 1}
        if retry_at is None:
            changes |= {"status": OutboundStatus.FAILED.value, "done_at": utc(now)}
        else:
            changes |= {"status": OutboundStatus.QUEUED.value, "next_attempt_at": utc(retry_at)}
        async with self._db.engine.begin() as conn:
            await conn.execute(update(_M).where(_M.c.id == message_id).values(changes))

    # --- drafts ---------------------------------------------------------------------------------

    async def drafts(
        self, tenant_id: str, status: DraftStatus | None = DraftStatus.PENDING, limit: int = 100
    ) -> list[EmailDraftRecord]:
        """The tenant's drafts in ``status`` (None: all), oldest first."""
        query = select(_D).where(_D.c.tenant_id == tenant_id)
        if status is not None:
            query = query.where(_D.c.status == status.value)
        query = query.order_by(_D.c.created_at, _D.c.id).limit(max(0, limit))
        async with self._db.reader.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [draft_record(r) for r in rows]

    async def draft(self, draft_id: str) -> EmailDraftRecord:
        async with self._db.reader.connect() as conn:
            row = (await conn.execute(select(_D).where(_D.c.id == draft_id))).mappings().first()
        if row is None:
            raise NotFoundError(f"draft {draft_id} does not exist")
        return draft_record(row)

    async def decide_draft(
        self,
        draft_id: str,
        *,
        status: DraftStatus,
        agent: str,
        now: datetime,
        final_text: str | None = None,
        note: str | None = None,
        reply: MailRecord | None = None,
        audit: AuditEntry,
    ) -> tuple[EmailDraftRecord, EmailMessageRecord | None]:
        """Approve (with the reply to queue) or reject a pending draft, audited, in one transaction."""
        now = utc(now)
        async with self._db.engine.begin() as conn:
            query = select(_D).where(_D.c.id == draft_id).with_for_update()
            row = (await conn.execute(query)).mappings().first()
            if row is None:
                raise NotFoundError(f"draft {draft_id} does not exist")
            if row["status"] != DraftStatus.PENDING.value:
                raise ConflictError(f"draft {draft_id} is already {row['status']} by {row['decided_by']}")
            DraftStatus.transition(row["status"], status)
            reply_values = None
            changes: dict[str, Any] = {
                "status": status.value,
                "decided_at": now,
                "decided_by": agent,
                "final_text": final_text,
                "note": note,
            }
            if reply is not None:
                reply_values = _outbound_values(
                    row["tenant_id"], reply, row["conversation_id"], row["message_id"], now
                )
                await conn.execute(insert(_M).values(reply_values))
                changes["reply_id"] = reply_values["id"]
            await conn.execute(update(_D).where(_D.c.id == draft_id).values(changes))
            await conn.execute(_audit(row["tenant_id"], audit, now, row["conversation_id"]))
        return draft_record({**row, **changes}), (
            message_record(reply_values) if reply_values is not None else None
        )

    # --- reading --------------------------------------------------------------------------------

    async def message(self, message_id: str) -> EmailMessageRecord:
        async with self._db.reader.connect() as conn:
            row = await _message_row(conn, message_id, raw=False)
        return message_record(row)

    async def raw(self, message_id: str) -> bytes:
        async with self._db.reader.connect() as conn:
            value = (await conn.execute(select(_M.c.raw).where(_M.c.id == message_id))).scalar_one_or_none()
        if value is None:
            raise NotFoundError(f"e-mail {message_id} does not exist")
        return bytes(value)

    async def messages(
        self,
        tenant_id: str,
        *,
        direction: str | None = None,
        status: str | None = None,
        conversation_id: str | None = None,
        limit: int = 100,
    ) -> builtins.list[EmailMessageRecord]:
        """Newest first."""
        query = select(*_MESSAGE_COLUMNS).where(_M.c.tenant_id == tenant_id)
        if direction is not None:
            query = query.where(_M.c.direction == direction)
        if status is not None:
            query = query.where(_M.c.status == status)
        if conversation_id is not None:
            query = query.where(_M.c.conversation_id == conversation_id)
        query = query.order_by(_M.c.received_at.desc(), _M.c.id).limit(max(0, limit))
        async with self._db.reader.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [message_record(r) for r in rows]

    async def counts(self, tenant_id: str) -> dict[str, dict[str, int]]:
        """``{"in": {status: n}, "out": {...}, "drafts": {...}}``."""
        result: dict[str, dict[str, int]] = {IN: {}, OUT: {}, "drafts": {}}
        by_status = (
            select(_M.c.direction, _M.c.status, func.count())
            .where(_M.c.tenant_id == tenant_id)
            .group_by(_M.c.direction, _M.c.status)
        )
        drafts = select(_D.c.status, func.count()).where(_D.c.tenant_id == tenant_id).group_by(_D.c.status)
        async with self._db.reader.connect() as conn:
            for direction, status, n in (await conn.execute(by_status)).all():
                result[direction][status] = int(n)
            for status, n in (await conn.execute(drafts)).all():
                result["drafts"][status] = int(n)
        return result


async def _message_row(conn: AsyncConnection, message_id: str, *, raw: bool = False) -> RowMapping:
    columns = list(_M.c) if raw else _MESSAGE_COLUMNS
    row = (await conn.execute(select(*columns).where(_M.c.id == message_id))).mappings().first()
    if row is None:
        raise NotFoundError(f"e-mail {message_id} does not exist")
    return row


def _mail_values(mail: MailRecord) -> dict[str, Any]:
    return {
        "dedupe_key": mail.dedupe_key[:500],
        "message_id": mail.message_id[:500] if mail.message_id else None,
        "in_reply_to": mail.in_reply_to[:500] if mail.in_reply_to else None,
        "thread_refs": list(mail.thread_refs),
        "from_address": mail.from_address[:320] if mail.from_address else None,
        "to_addresses": list(mail.to_addresses),
        "subject": mail.subject,
        "text": mail.text,
        "attachments": list(mail.attachments),
        "raw": mail.raw,
    }


def _outbound_values(
    tenant_id: str, mail: MailRecord, conversation_id: str | None, answers_id: str, now: datetime
) -> dict[str, Any]:
    return _mail_values(mail) | {
        "id": tables.new_id(),
        "tenant_id": tenant_id,
        "direction": OUT,
        "source": "smtp",
        "uidvalidity": None,
        "uid": None,
        "conversation_id": conversation_id,
        "answers_id": answers_id,
        "status": OutboundStatus.QUEUED.value,
        "intent": None,
        "reasons": [],
        "attempts": 0,
        "error": None,
        "received_at": now,
        "claimed_at": None,
        "next_attempt_at": None,
        "done_at": None,
    }


def _draft_values(
    tenant_id: str, message_id: str, conversation_id: str | None, draft: DraftValues, now: datetime
) -> dict[str, Any]:
    return {
        "id": tables.new_id(),
        "tenant_id": tenant_id,
        "message_id": message_id,
        "conversation_id": conversation_id,
        "to_address": draft.to_address,
        "subject": draft.subject,
        "proposed_text": draft.proposed_text,
        "final_text": None,
        "reasons": list(draft.reasons),
        "intent": draft.intent,
        "customer": draft.customer,
        "answers": list(draft.answers),
        "status": DraftStatus.PENDING.value,
        "created_at": now,
        "decided_at": None,
        "decided_by": None,
        "note": None,
        "reply_id": None,
    }


def _audit(tenant_id: str, entry: AuditEntry, now: datetime, conversation_id: str | None) -> Insert:
    return AuditRepository.insert_statement(
        tenant_id=tenant_id,
        actor=entry.actor,
        action=entry.action,
        now=now,
        customer_id=entry.customer_id,
        conversation_id=conversation_id,
        details=entry.details,
    )
