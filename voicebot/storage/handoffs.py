"""The queue of conversations waiting for a human.

Rows are created by ``ConversationRepository.record_exchange`` when the bot hands off; agents
``take`` them and ``close`` them (the conversation becomes resolved) or ``hand_back`` to the bot
(the conversation becomes active again).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from voicebot.errors import ConflictError, NotFoundError
from voicebot.storage import tables
from voicebot.storage._common import utc
from voicebot.storage.db import Database
from voicebot.storage.records import ConversationStatus, HandoffRecord, HandoffStatus

_H = tables.handoffs
_C = tables.conversations


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

    async def take(self, handoff_id: str, agent: str, now: datetime) -> HandoffRecord:
        """An agent takes the handoff. Taking it again as the same agent is a no-op;
        ConflictError when another agent has it or it is closed."""
        now = utc(now)
        async with self._db.engine.begin() as conn:
            row = await _select(conn, handoff_id, lock=True)
            old = HandoffStatus(row["status"])
            if old is HandoffStatus.TAKEN:
                if row["taken_by"] == agent:
                    return handoff_record(row)
                raise ConflictError(f"handoff {handoff_id} is already taken by {row['taken_by']}")
            HandoffStatus.transition(old, HandoffStatus.TAKEN)
            changes = {"status": HandoffStatus.TAKEN.value, "taken_at": now, "taken_by": agent}
            await conn.execute(update(_H).where(_H.c.id == handoff_id).values(changes))
        return handoff_record({**row, **changes})

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
            # Only a conversation still waiting for a human moves; one that ended stays ended.
            await conn.execute(
                update(_C)
                .where(_C.c.id == row["conversation_id"], _C.c.status == ConversationStatus.HANDOFF.value)
                .values(
                    status=ConversationStatus.transition(ConversationStatus.HANDOFF, target).value,
                    updated_at=now,
                )
            )
        return handoff_record({**row, **changes})


async def _select(conn: AsyncConnection, handoff_id: str, *, lock: bool) -> RowMapping:
    query = select(_H).where(_H.c.id == handoff_id)
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        raise NotFoundError(f"handoff {handoff_id} does not exist")
    return row
