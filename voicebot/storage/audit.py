"""The audit log: every action on customer data leaves one row.

``record`` writes in its own transaction; ``insert_statement`` gives the same row as a Core
statement for a caller that writes customer data and its audit row in one transaction.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, RowMapping, insert, select

from voicebot.storage import tables
from voicebot.storage._common import utc
from voicebot.storage.db import Database
from voicebot.storage.records import AuditRecord

_A = tables.audit_log


def audit_record(row: RowMapping) -> AuditRecord:
    return AuditRecord(
        id=row["id"],
        at=row["at"],
        tenant_id=row["tenant_id"],
        actor=row["actor"],
        action=row["action"],
        customer_id=row["customer_id"],
        conversation_id=row["conversation_id"],
        details=row["details"] or {},
    )


class AuditRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    @staticmethod
    def insert_statement(
        *,
        tenant_id: str,
        actor: str,
        action: str,
        now: datetime,
        customer_id: str | None = None,
        conversation_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> Insert:
        return insert(_A).values(
            at=utc(now),
            tenant_id=tenant_id,
            actor=actor,
            action=action,
            customer_id=customer_id,
            conversation_id=conversation_id,
            details=details or {},
        )

    async def record(
        self,
        *,
        tenant_id: str,
        actor: str,
        action: str,
        now: datetime,
        customer_id: str | None = None,
        conversation_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditRecord:
        statement = self.insert_statement(
            tenant_id=tenant_id,
            actor=actor,
            action=action,
            now=now,
            customer_id=customer_id,
            conversation_id=conversation_id,
            details=details,
        )
        async with self._db.engine.begin() as conn:
            row = (await conn.execute(statement.returning(*_A.c))).mappings().one()
        return audit_record(row)

    async def list(
        self, tenant_id: str, limit: int = 100, *, customer_id: str | None = None
    ) -> list[AuditRecord]:
        """The tenant's newest entries first (optionally only those about one customer)."""
        query = select(_A).where(_A.c.tenant_id == tenant_id)
        if customer_id is not None:
            query = query.where(_A.c.customer_id == customer_id)
        query = query.order_by(_A.c.id.desc()).limit(max(0, limit))
        async with self._db.reader.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [audit_record(r) for r in rows]

    async def for_conversation(
        self, conversation_id: str, *, action: str | None = None
    ) -> builtins.list[AuditRecord]:
        """One conversation's entries, oldest first (optionally only one action)."""
        query = select(_A).where(_A.c.conversation_id == conversation_id)
        if action is not None:
            query = query.where(_A.c.action == action)
        async with self._db.reader.connect() as conn:
            rows = (await conn.execute(query.order_by(_A.c.id))).mappings().all()
        return [audit_record(r) for r in rows]

    async def recent_actions(
        self, tenant_id: str, action: str, limit: int = 100
    ) -> builtins.list[AuditRecord]:
        """The tenant's newest entries of one action, newest first."""
        return await self.search(tenant_id, action=action, limit=limit)

    async def search(
        self, tenant_id: str, *, actor: str | None = None, action: str | None = None, limit: int = 100
    ) -> builtins.list[AuditRecord]:
        """The tenant's newest entries first, optionally one actor's and/or one action (or an action
        prefix ending in '.', e.g. "user.")."""
        query = select(_A).where(_A.c.tenant_id == tenant_id)
        if actor:
            query = query.where(_A.c.actor == actor)
        if action:
            query = query.where(
                _A.c.action.startswith(action) if action.endswith(".") else _A.c.action == action
            )
        async with self._db.reader.connect() as conn:
            rows = (await conn.execute(query.order_by(_A.c.id.desc()).limit(max(0, limit)))).mappings().all()
        return [audit_record(r) for r in rows]
