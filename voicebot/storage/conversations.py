"""Conversations and their turns.

``record_exchange`` is on the hot path (every reply of every channel): one transaction of one
SELECT (the current row, locked on PostgreSQL), one multi-row INSERT of both turns, one UPDATE
(counters as SQL expressions, so they stay right under concurrency), on a handoff one INSERT, and
on the exchange that first identifies the customer one UPDATE of their earlier conversations.

The dashboard's columns (voicebot.storage.metrics) are written here, when they become known:
``intent`` (the first the bot recognised), ``handoff_reason`` (of the first handoff), ``ended_at``,
``handle_ms`` (start -> latest bot reply), ``contact_key`` (``customer:<id>`` once the customer is
known, else ``caller:<number>`` / ``email:<address>``) and ``came_back``: set on a conversation when
the same contact starts another one within ``REPEAT_WINDOW`` (first-contact resolution).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import RowMapping, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from voicebot.errors import ConflictError, InputError, NotFoundError
from voicebot.storage import tables
from voicebot.storage._common import utc
from voicebot.storage.db import Database
from voicebot.storage.records import ConversationRecord, ConversationStatus, TurnRecord, TurnRole

_C = tables.conversations
_T = tables.turns
_H = tables.handoffs

_HANDOFF_KEYS = ("reason", "summary")
_INSERT_TURN = insert(_T)

REPEAT_WINDOW = timedelta(days=7)  # a contact again within this: the first one did not resolve it
_REASON_CHARS = 200  # conversations.handoff_reason


def contact_key(*, customer_id: str | None, caller: str | None, email: str | None) -> str | None:
    """Who the customer is, for repeat contacts: the CRM id when known, else the number/address."""
    if customer_id:
        return f"customer:{customer_id}"[:330]
    if caller and caller.strip():
        return f"caller:{caller.strip()}"[:330]
    if email and email.strip():
        return f"email:{email.strip().lower()}"[:330]
    return None


async def _mark_came_back(
    conn: AsyncConnection,
    tenant_id: str,
    keys: list[str],
    conversation_id: str,
    started: datetime,
    now: datetime,
) -> None:
    """The contact is here again (in a conversation that ``started``): their conversations of the
    REPEAT_WINDOW before it came back. ``updated_at`` moves too: the dashboard's rollup of their day
    is stale (voicebot.storage.dashboard_rollup)."""
    await conn.execute(
        update(_C)
        .where(
            _C.c.tenant_id == tenant_id,
            _C.c.contact_key.in_(keys) if len(keys) > 1 else _C.c.contact_key == keys[0],
            _C.c.created_at >= started - REPEAT_WINDOW,
            _C.c.created_at <= started,
            _C.c.id != conversation_id,
            or_(_C.c.came_back.is_(None), _C.c.came_back.is_(False)),
        )
        .values(came_back=True, updated_at=now)
    )


def conversation_record(row: RowMapping | dict[str, Any]) -> ConversationRecord:
    return ConversationRecord(
        id=row["id"],
        tenant_id=row["tenant_id"],
        channel=row["channel"],
        status=ConversationStatus(row["status"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        language=row["language"],
        customer_id=row["customer_id"],
        caller=row["caller"],
        email=row["email"],
        first_response_ms=row["first_response_ms"],
        csat=row["csat"],
        resolved_without_human=row["resolved_without_human"],
        state=row["state"] or {},
        turn_count=row["turn_count"],
    )


def turn_record(row: RowMapping) -> TurnRecord:
    return TurnRecord(
        id=row["id"],
        conversation_id=row["conversation_id"],
        role=TurnRole(row["role"]),
        text=row["text"],
        created_at=row["created_at"],
        action=row["action"],
        intent=row["intent"],
        confidence=row["confidence"],
        citations=row["citations"] or [],
        reason=row["reason"],
        latency_ms=row["latency_ms"],
    )


def _next_status(old: ConversationStatus, action: str) -> ConversationStatus:
    """Where a bot reply with ``action`` moves the conversation (validated by ``transition``)."""
    if old is ConversationStatus.ENDED:
        raise ConflictError("the conversation has ended; start a new one")
    if action == "handoff":
        target = ConversationStatus.HANDOFF
    elif action == "end":
        target = ConversationStatus.ENDED
    elif old is ConversationStatus.RESOLVED:
        target = ConversationStatus.ACTIVE  # the customer wrote again
    else:
        target = old  # answer / clarify: the bot keeps talking (also while a human is on the way)
    return ConversationStatus.transition(old, target)


class ConversationRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        *,
        tenant_id: str,
        channel: str,
        now: datetime,
        caller: str | None = None,
        email: str | None = None,
        conversation_id: str | None = None,
    ) -> ConversationRecord:
        now = utc(now)
        values: dict[str, Any] = {
            "id": conversation_id or tables.new_id(),
            "tenant_id": tenant_id,
            "channel": channel,
            "status": ConversationStatus.ACTIVE.value,
            "language": None,
            "customer_id": None,
            "caller": caller,
            "email": email,
            "created_at": now,
            "updated_at": now,
            "first_response_ms": None,
            "csat": None,
            "resolved_without_human": None,
            "state": {},
            "turn_count": 0,
            "intent": None,
            "handoff_reason": None,
            "ended_at": None,
            "handle_ms": None,
            "contact_key": contact_key(customer_id=None, caller=caller, email=email),
            "came_back": None,
        }
        try:
            async with self._db.engine.begin() as conn:
                await conn.execute(insert(_C), values)
                if values["contact_key"] is not None:
                    await _mark_came_back(conn, tenant_id, [values["contact_key"]], values["id"], now, now)
        except IntegrityError as exc:
            raise ConflictError(f"conversation {values['id']} already exists") from exc
        return conversation_record(values)

    async def get(self, conversation_id: str) -> ConversationRecord:
        async with self._db.reader.connect() as conn:
            row = (await conn.execute(select(_C).where(_C.c.id == conversation_id))).mappings().first()
        if row is None:
            raise NotFoundError(f"conversation {conversation_id} does not exist")
        return conversation_record(row)

    async def record_exchange(
        self,
        conversation_id: str,
        *,
        customer_text: str,
        bot_text: str,
        action: str,
        intent: str | None,
        confidence: float,
        citations: list[dict[str, Any]],
        reason: str | None,
        state: dict[str, Any],
        language: str | None,
        customer_id: str | None,
        latency_ms: float,
        now: datetime,
        handoff: dict[str, Any] | None = None,
        channel: str | None = None,
    ) -> ConversationRecord:
        """Store one customer message and the bot's reply, and move the conversation's state.

        ``language`` / ``customer_id`` of None keep the stored value. ``channel`` is the channel
        this exchange arrived on (default: the conversation's); it is written on a new handoff.
        Raises NotFoundError for an unknown id, ConflictError once the conversation has ended.
        """
        now = utc(now)
        action = str(action)
        async with self._db.engine.begin() as conn:
            row = (
                (await conn.execute(select(_C).where(_C.c.id == conversation_id).with_for_update()))
                .mappings()
                .first()
            )
            if row is None:
                raise NotFoundError(f"conversation {conversation_id} does not exist")
            old = ConversationStatus(row["status"])
            new = _next_status(old, action)
            entering_handoff = new is ConversationStatus.HANDOFF and old is not ConversationStatus.HANDOFF
            without_human = row["resolved_without_human"]
            if entering_handoff:
                without_human = False
            elif new is ConversationStatus.ENDED and without_human is None:
                without_human = True

            await conn.execute(  # executemany: one round trip (SQLite), one multi-VALUES (asyncpg)
                _INSERT_TURN,
                [
                    _turn(conversation_id, TurnRole.CUSTOMER, customer_text, now),
                    _turn(
                        conversation_id,
                        TurnRole.BOT,
                        bot_text,
                        now,
                        action=action,
                        intent=intent,
                        confidence=confidence,
                        citations=citations,
                        reason=reason,
                        latency_ms=latency_ms,
                    ),
                ],
            )
            changes: dict[str, Any] = {
                "status": new.value,
                "state": state,
                "updated_at": now,
                "turn_count": _C.c.turn_count + 2,
                "first_response_ms": func.coalesce(_C.c.first_response_ms, latency_ms),
                "resolved_without_human": without_human,
                "handle_ms": max(0.0, (now - row["created_at"]).total_seconds() * 1000.0),
            }
            if language is not None:
                changes["language"] = language
            if intent and row["intent"] is None:
                changes["intent"] = str(intent)[:100]
            if new is ConversationStatus.ENDED:
                changes["ended_at"] = now
            handoff_row = None
            if entering_handoff:
                handoff_row = _handoff_values(row, handoff, reason, channel or row["channel"], now)
                if row["handoff_reason"] is None:
                    changes["handoff_reason"] = handoff_row["reason"][:_REASON_CHARS]
            identified: list[str] = []
            if customer_id is not None:
                changes["customer_id"] = customer_id
                if customer_id != row["customer_id"]:
                    key = contact_key(customer_id=customer_id, caller=None, email=None)
                    assert key is not None
                    changes["contact_key"] = key
                    identified = [key] + ([row["contact_key"]] if row["contact_key"] else [])
            await conn.execute(update(_C).where(_C.c.id == conversation_id).values(changes))
            if handoff_row is not None:
                await conn.execute(insert(_H), handoff_row)
            if identified:
                await _mark_came_back(
                    conn, row["tenant_id"], identified, conversation_id, row["created_at"], now
                )

        updated = dict(row)
        updated.update(changes)
        updated["turn_count"] = row["turn_count"] + 2
        first = row["first_response_ms"]
        updated["first_response_ms"] = latency_ms if first is None else first
        return conversation_record(updated)

    async def add_agent_turn(self, conversation_id: str, text: str, now: datetime) -> TurnRecord:
        now = utc(now)
        async with self._db.engine.begin() as conn:
            result = await conn.execute(
                update(_C)
                .where(_C.c.id == conversation_id)
                .values(turn_count=_C.c.turn_count + 1, updated_at=now)
            )
            if result.rowcount == 0:
                raise NotFoundError(f"conversation {conversation_id} does not exist")
            values = _turn(conversation_id, TurnRole.AGENT, text, now)
            inserted = await conn.execute(insert(_T), values)
            turn_id = inserted.inserted_primary_key[0]  # type: ignore[index]
        return TurnRecord(
            id=turn_id, conversation_id=conversation_id, role=TurnRole.AGENT, text=text, created_at=now
        )

    async def turns(self, conversation_id: str) -> list[TurnRecord]:
        """Every turn, oldest first. NotFoundError for an unknown conversation."""
        async with self._db.reader.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        select(_T).where(_T.c.conversation_id == conversation_id).order_by(_T.c.id)
                    )
                )
                .mappings()
                .all()
            )
            if not rows:
                exists = await conn.scalar(select(_C.c.id).where(_C.c.id == conversation_id))
                if exists is None:
                    raise NotFoundError(f"conversation {conversation_id} does not exist")
        return [turn_record(r) for r in rows]

    async def set_csat(self, conversation_id: str, score: int, now: datetime) -> ConversationRecord:
        """The customer's satisfaction score, 1 (bad) to 5 (good); InputError otherwise."""
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise InputError(f"csat must be an integer from 1 to 5, not {score!r}")
        now = utc(now)
        async with self._db.engine.begin() as conn:
            row = (
                (
                    await conn.execute(
                        update(_C)
                        .where(_C.c.id == conversation_id)
                        .values(csat=score, updated_at=now)
                        .returning(*_C.c)
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise NotFoundError(f"conversation {conversation_id} does not exist")
        return conversation_record(row)

    async def list(
        self,
        tenant_id: str,
        *,
        status: str | None = None,
        channel: str | None = None,
        limit: int = 100,
    ) -> list[ConversationRecord]:
        """The tenant's conversations, newest first."""
        query = select(_C).where(_C.c.tenant_id == tenant_id)
        if status is not None:
            query = query.where(_C.c.status == ConversationStatus(status).value)
        if channel is not None:
            query = query.where(_C.c.channel == channel)
        query = query.order_by(_C.c.created_at.desc(), _C.c.id.desc()).limit(max(0, limit))
        async with self._db.reader.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [conversation_record(r) for r in rows]


def _turn(
    conversation_id: str,
    role: TurnRole,
    text: str,
    now: datetime,
    *,
    action: str | None = None,
    intent: str | None = None,
    confidence: float | None = None,
    citations: list[dict[str, Any]] | None = None,
    reason: str | None = None,
    latency_ms: float | None = None,
) -> dict[str, Any]:
    return {
        "conversation_id": conversation_id,
        "role": role.value,
        "text": text,
        "action": action,
        "intent": intent,
        "confidence": confidence,
        "citations": citations or [],
        "reason": reason,
        "latency_ms": latency_ms,
        "created_at": now,
    }


def _handoff_values(
    conversation: RowMapping, handoff: dict[str, Any] | None, reason: str | None, channel: str, now: datetime
) -> dict[str, Any]:
    data = dict(handoff or {})
    return {
        "id": tables.new_id(),
        "conversation_id": conversation["id"],
        "tenant_id": conversation["tenant_id"],
        "channel": channel,
        "reason": str(data.get("reason") or reason or "unspecified"),
        "summary": str(data.get("summary") or ""),
        "context": {k: v for k, v in data.items() if k not in _HANDOFF_KEYS},
        "status": "waiting",
        "created_at": now,
        "taken_at": None,
        "taken_by": None,
        "closed_at": None,
    }
