"""The queue of conversations waiting for a human, and what the desk writes while a human has one.

Rows are created by ``ConversationRepository.record_exchange`` when the bot hands off, or by
``take_over`` when a supervisor or agent takes a chat the bot is still handling (reason
``taken_over``, taken at once). Agents ``take`` them and ``close`` them (the conversation becomes
resolved) or ``hand_back`` to the bot (the conversation becomes active again). Either way the
dialogue state's ``handed_off`` flag is cleared, so the bot answers the customer's next message
instead of repeating that a colleague is on the way.

While an agent has a conversation the bot stays silent: the customer's messages are stored with
``add_customer_turn``; an agent's e-mail reply is queued with ``queue_email_reply`` (the agent's
turn and the outbound message in one transaction, sent by the e-mail channel's sender).
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from voicebot.errors import ConflictError, NotFoundError
from voicebot.storage import tables
from voicebot.storage._common import utc
from voicebot.storage.conversations import _turn
from voicebot.storage.db import Database
from voicebot.storage.email import MailRecord, _outbound_values
from voicebot.storage.records import (
    ConversationStatus,
    HandoffRecord,
    HandoffStatus,
    TurnRecord,
    TurnRole,
)

_H = tables.handoffs
_C = tables.conversations
_T = tables.turns
_M = tables.email_messages

TAKEN_OVER = "taken_over"  # the reason of a handoff a person started, not the bot
_OPEN = (HandoffStatus.WAITING.value, HandoffStatus.TAKEN.value)


def handoff_record(row: RowMapping | dict[str, Any]) -> HandoffRecord:
    return HandoffRecord(
        id=row["id"],
        conversation_id=row["conversation_id"],
        tenant_id=row["tenant_id"],
        channel=row["channel"],
        reason=row["reason"],
        summary=row["summary"],
        status=HandoffStatus(row["status"]),
        created_at=row["created_at"],
        context=row["context"] or {},
        taken_at=row["taken_at"],
        taken_by=row["taken_by"],
        closed_at=row["closed_at"],
    )


class HandoffRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def list(self, tenant_id: str, status: str | None = "waiting") -> list[HandoffRecord]:
        """The tenant's handoffs in ``status`` (None: all), oldest first."""
        query = select(_H).where(_H.c.tenant_id == tenant_id)
        if status is not None:
            query = query.where(_H.c.status == HandoffStatus(status).value)
        query = query.order_by(_H.c.created_at, _H.c.id)
        async with self._db.reader.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [handoff_record(r) for r in rows]

    async def get(self, handoff_id: str) -> HandoffRecord:
        async with self._db.reader.connect() as conn:
            row = await _select(conn, handoff_id, lock=False)
        return handoff_record(row)

    async def active_for(self, conversation_id: str) -> HandoffRecord | None:
        """The conversation's open (waiting or taken) handoff, the newest if there were several."""
        query = (
            select(_H)
            .where(_H.c.conversation_id == conversation_id, _H.c.status.in_(_OPEN))
            .order_by(_H.c.created_at.desc(), _H.c.id.desc())
            .limit(1)
        )
        async with self._db.reader.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return handoff_record(row) if row is not None else None

    async def queue_position(self, handoff: HandoffRecord) -> int | None:
        """1 for the oldest waiting handoff of the tenant, ...; None when this one is not waiting.
        Agents take the tenant's queue oldest first whatever the channel, so it is one queue."""
        ahead = and_(
            _H.c.tenant_id == handoff.tenant_id,
            _H.c.status == HandoffStatus.WAITING.value,
            or_(
                _H.c.created_at < handoff.created_at,
                and_(_H.c.created_at == handoff.created_at, _H.c.id < handoff.id),
            ),
        )
        async with self._db.reader.connect() as conn:
            status = await conn.scalar(select(_H.c.status).where(_H.c.id == handoff.id))
            if status != HandoffStatus.WAITING.value:
                return None
            count = await conn.scalar(select(func.count()).select_from(_H).where(ahead))
        return int(count or 0) + 1

    async def recent_waits(self, tenant_id: str, channel: str, limit: int = 20) -> builtins.list[float]:
        """Seconds from waiting to taken of the channel's last ``limit`` taken handoffs, newest
        first. Take-overs are left out: nobody waited for those."""
        query = (
            select(_H.c.created_at, _H.c.taken_at)
            .where(
                _H.c.tenant_id == tenant_id,
                _H.c.channel == channel,
                _H.c.taken_at.is_not(None),
                _H.c.reason != TAKEN_OVER,
            )
            .order_by(_H.c.taken_at.desc(), _H.c.id.desc())
            .limit(max(0, limit))
        )
        async with self._db.reader.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [max(0.0, (taken - created).total_seconds()) for created, taken in rows]

    async def take(self, handoff_id: str, agent: str, now: datetime) -> HandoffRecord:
        """An agent takes the handoff. Taking it again as the same agent is a no-op;
        ConflictError when another agent has it or it is closed."""
        now = utc(now)
        async with self._db.engine.begin() as conn:
            row = await _select(conn, handoff_id, lock=True)
            return await _take_row(conn, row, agent, now)

    async def take_over(
        self, conversation_id: str, agent: str, now: datetime, *, summary: str, context: dict[str, Any]
    ) -> HandoffRecord:
        """A person takes a conversation from the bot: a handoff with reason ``taken_over``, taken by
        ``agent`` at once, and the conversation moves to ``handoff``. If the conversation is already
        waiting for a human, that handoff is taken instead. ConflictError when another agent has it
        or the conversation has ended."""
        now = utc(now)
        async with self._db.engine.begin() as conn:
            conversation = (
                (await conn.execute(select(_C).where(_C.c.id == conversation_id).with_for_update()))
                .mappings()
                .first()
            )
            if conversation is None:
                raise NotFoundError(f"conversation {conversation_id} does not exist")
            open_row = (
                (
                    await conn.execute(
                        select(_H)
                        .where(_H.c.conversation_id == conversation_id, _H.c.status.in_(_OPEN))
                        .order_by(_H.c.created_at.desc(), _H.c.id.desc())
                        .limit(1)
                        .with_for_update()
                    )
                )
                .mappings()
                .first()
            )
            if open_row is not None:
                return await _take_row(conn, open_row, agent, now)
            old = ConversationStatus(conversation["status"])
            if old is ConversationStatus.ENDED:
                raise ConflictError(
                    f"conversation {conversation_id} has ended; there is nothing to take over"
                )
            values = {
                "id": tables.new_id(),
                "conversation_id": conversation_id,
                "tenant_id": conversation["tenant_id"],
                "channel": conversation["channel"],
                "reason": TAKEN_OVER,
                "summary": summary,
                "context": context,
                "status": HandoffStatus.TAKEN.value,
                "created_at": now,
                "taken_at": now,
                "taken_by": agent,
                "closed_at": None,
            }
            await conn.execute(insert(_H), values)
            state = dict(conversation["state"] or {})
            state["handed_off"] = True
            changes: dict[str, Any] = {
                "status": ConversationStatus.transition(old, ConversationStatus.HANDOFF).value,
                "state": state,
                "updated_at": now,
                "resolved_without_human": False,
            }
            if conversation["handoff_reason"] is None:
                changes["handoff_reason"] = TAKEN_OVER
            await conn.execute(update(_C).where(_C.c.id == conversation_id).values(changes))
        return handoff_record(values)

    async def close(self, handoff_id: str, now: datetime) -> HandoffRecord:
        """The human is done: the handoff closes and the conversation becomes resolved."""
        return await self._finish(handoff_id, now, ConversationStatus.RESOLVED)

    async def hand_back(self, handoff_id: str, now: datetime) -> HandoffRecord:
        """The human returns the conversation to the bot: the handoff closes, the conversation
        becomes active again."""
        return await self._finish(handoff_id, now, ConversationStatus.ACTIVE)

    async def _finish(self, handoff_id: str, now: datetime, target: ConversationStatus) -> HandoffRecord:
        now = utc(now)
        async with self._db.engine.begin() as conn:
            row = await _select(conn, handoff_id, lock=True)
            old = HandoffStatus(row["status"])
            if old is HandoffStatus.CLOSED:
                return handoff_record(row)
            HandoffStatus.transition(old, HandoffStatus.CLOSED)
            changes = {"status": HandoffStatus.CLOSED.value, "closed_at": now}
            await conn.execute(update(_H).where(_H.c.id == handoff_id).values(changes))
            conversation = (
                (await conn.execute(select(_C.c.status, _C.c.state).where(_C.c.id == row["conversation_id"])))
                .mappings()
                .first()
            )
            # Only a conversation still waiting for a human moves; one that ended stays ended.
            if conversation is not None and conversation["status"] == ConversationStatus.HANDOFF.value:
                state = dict(conversation["state"] or {})
                state["handed_off"] = False  # the bot answers again instead of "a colleague is coming"
                state["failed_turns"] = 0
                await conn.execute(
                    update(_C)
                    .where(_C.c.id == row["conversation_id"])
                    .values(
                        status=ConversationStatus.transition(ConversationStatus.HANDOFF, target).value,
                        state=state,
                        updated_at=now,
                    )
                )
        return handoff_record({**row, **changes})

    async def add_customer_turn(self, conversation_id: str, text: str, now: datetime) -> TurnRecord:
        """A customer message the bot does not answer (a person has the conversation)."""
        return await self._add_turn(conversation_id, TurnRole.CUSTOMER, text, utc(now))

    async def queue_email_reply(
        self, handoff_id: str, *, agent_text: str, mail: MailRecord, answers_id: str, now: datetime
    ) -> tuple[TurnRecord, str]:
        """An agent's e-mail answer: their turn and the outbound message (queued for the e-mail
        channel's sender) in one transaction. Returns the turn and the outbound message's id."""
        now = utc(now)
        async with self._db.engine.begin() as conn:
            row = await _select(conn, handoff_id, lock=True)
            values = _outbound_values(row["tenant_id"], mail, row["conversation_id"], answers_id, now)
            await conn.execute(insert(_M).values(values))
            turn = await _insert_turn(conn, row["conversation_id"], TurnRole.AGENT, agent_text, now)
        return turn, values["id"]

    async def latest_inbound_email(self, conversation_id: str) -> tuple[str, bytes] | None:
        """The id and raw bytes of the customer's newest e-mail in the conversation (to answer it)."""
        query = (
            select(_M.c.id, _M.c.raw)
            .where(_M.c.conversation_id == conversation_id, _M.c.direction == "in")
            .order_by(_M.c.received_at.desc(), _M.c.id.desc())
            .limit(1)
        )
        async with self._db.reader.connect() as conn:
            row = (await conn.execute(query)).first()
        return (row[0], bytes(row[1])) if row is not None else None

    async def _add_turn(self, conversation_id: str, role: TurnRole, text: str, now: datetime) -> TurnRecord:
        async with self._db.engine.begin() as conn:
            return await _insert_turn(conn, conversation_id, role, text, now)


async def _take_row(conn: AsyncConnection, row: RowMapping, agent: str, now: datetime) -> HandoffRecord:
    old = HandoffStatus(row["status"])
    if old is HandoffStatus.TAKEN:
        if row["taken_by"] == agent:
            return handoff_record(row)
        raise ConflictError(f"handoff {row['id']} is already taken by {row['taken_by']}")
    HandoffStatus.transition(old, HandoffStatus.TAKEN)
    changes = {"status": HandoffStatus.TAKEN.value, "taken_at": now, "taken_by": agent}
    await conn.execute(update(_H).where(_H.c.id == row["id"]).values(changes))
    return handoff_record({**row, **changes})


async def _insert_turn(
    conn: AsyncConnection, conversation_id: str, role: TurnRole, text: str, now: datetime
) -> TurnRecord:
    result = await conn.execute(
        update(_C).where(_C.c.id == conversation_id).values(turn_count=_C.c.turn_count + 1, updated_at=now)
    )
    if result.rowcount == 0:
        raise NotFoundError(f"conversation {conversation_id} does not exist")
    inserted = await conn.execute(insert(_T), _turn(conversation_id, role, text, now))
    turn_id = inserted.inserted_primary_key[0]  # type: ignore[index]
    return TurnRecord(id=turn_id, conversation_id=conversation_id, role=role, text=text, created_at=now)


async def _select(conn: AsyncConnection, handoff_id: str, *, lock: bool) -> RowMapping:
    query = select(_H).where(_H.c.id == handoff_id)
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        raise NotFoundError(f"handoff {handoff_id} does not exist")
    return row
