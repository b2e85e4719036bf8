"""Approved knowledge-base passages, per tenant."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from voicebot.errors import ConflictError, InputError, NotFoundError
from voicebot.storage import tables
from voicebot.storage._common import utc
from voicebot.storage.db import Database
from voicebot.storage.records import PassageRecord

_P = tables.kb_passages


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def passage_record(row: RowMapping) -> PassageRecord:
    return PassageRecord(
        id=row["id"],
        source=row["source"],
        title=row["title"],
        text=row["text"],
        language=row["language"],
        tags=tuple(row["tags"] or ()),
        approved=bool(row["approved"]),
        questions=tuple(row["questions"] or ()),
        content_hash=row["content_hash"],
        updated_at=row["updated_at"],
    )


class KnowledgeRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def replace(
        self,
        tenant_id: str,
        passages: Sequence[PassageRecord],
        *,
        sources: Sequence[str] | None,
        now: datetime,
    ) -> int:
        """Replace the passages of ``sources`` (None: all of the tenant's) with ``passages``,
        in one transaction. Returns how many were stored."""
        now = utc(now)
        ids = [p.id for p in passages]
        if len(set(ids)) != len(ids):
            duplicates = sorted({i for i in ids if ids.count(i) > 1})
            raise InputError(f"duplicate passage ids: {', '.join(duplicates[:5])}")
        rows: list[dict[str, Any]] = [
            {
                "tenant_id": tenant_id,
                "id": p.id,
                "source": p.source,
                "title": p.title,
                "text": p.text,
                "language": p.language,
                "tags": list(p.tags),
                "approved": bool(p.approved),
                "questions": list(p.questions),
                "content_hash": p.content_hash or content_hash(p.text),
                "updated_at": now,
            }
            for p in passages
        ]
        removal = delete(_P).where(_P.c.tenant_id == tenant_id)
        if sources is not None:
            removal = removal.where(_P.c.source.in_(list(sources)))
        try:
            async with self._db.engine.begin() as conn:
                await conn.execute(removal)
                if rows:
                    await conn.execute(insert(_P), rows)
        except IntegrityError as exc:
            raise ConflictError(
                "a passage id is already used by a source that is not being replaced"
            ) from exc
        return len(rows)

    async def list(self, tenant_id: str, *, approved_only: bool = True) -> list[PassageRecord]:
        query = select(_P).where(_P.c.tenant_id == tenant_id)
        if approved_only:
            query = query.where(_P.c.approved.is_(True))
        query = query.order_by(_P.c.source, _P.c.id)
        async with self._db.reader.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [passage_record(r) for r in rows]

    async def get(self, tenant_id: str, passage_id: str) -> PassageRecord:
        query = select(_P).where(_P.c.tenant_id == tenant_id, _P.c.id == passage_id)
        async with self._db.reader.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        if row is None:
            raise NotFoundError(f"knowledge passage {passage_id} does not exist")
        return passage_record(row)

    async def save(self, tenant_id: str, passage: PassageRecord, *, now: datetime) -> PassageRecord:
        """Insert ``passage``, or overwrite the stored passage with its id (one passage, in place)."""
        values: dict[str, Any] = {
            "source": passage.source,
            "title": passage.title,
            "text": passage.text,
            "language": passage.language,
            "tags": list(passage.tags),
            "approved": bool(passage.approved),
            "questions": list(passage.questions),
            "content_hash": passage.content_hash or content_hash(passage.text),
            "updated_at": utc(now),
        }
        try:
            async with self._db.engine.begin() as conn:
                changed = await conn.execute(
                    update(_P).where(_P.c.tenant_id == tenant_id, _P.c.id == passage.id).values(values)
                )
                if not changed.rowcount:
                    await conn.execute(insert(_P), [{"tenant_id": tenant_id, "id": passage.id, **values}])
        except IntegrityError as exc:  # two first saves of one id at the same time
            raise ConflictError(
                f"knowledge passage {passage.id} was saved by someone else; try again"
            ) from exc
        return PassageRecord(
            **{**values, "id": passage.id, "tags": passage.tags, "questions": passage.questions}
        )

    async def delete(self, tenant_id: str, passage_id: str) -> None:
        async with self._db.engine.begin() as conn:
            gone = await conn.execute(delete(_P).where(_P.c.tenant_id == tenant_id, _P.c.id == passage_id))
        if not gone.rowcount:
            raise NotFoundError(f"knowledge passage {passage_id} does not exist")
