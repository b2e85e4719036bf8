"""Outbound campaigns in the database: the campaign (its validated definition and status), its
contacts (each with attempts, next due time and outcome) and the do-not-call list.

A campaign and all its imported contacts are written in one transaction; status changes follow
:class:`CampaignStatus` and are audited by the caller. The dialing engine (later) claims contacts
from ``campaign_contacts``; this module only keeps the data.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import RowMapping, delete, func, insert, or_, select, update

from voicebot.errors import ConflictError, NotFoundError
from voicebot.storage import tables
from voicebot.storage._common import insert_ignoring_duplicates, utc
from voicebot.storage.db import Database
from voicebot.storage.records import (
    CampaignContactRecord,
    CampaignRecord,
    CampaignStatus,
    ContactStatus,
)

if TYPE_CHECKING:
    from voicebot.outbound.contacts import Contact

_C = tables.campaigns
_K = tables.campaign_contacts
_N = tables.do_not_call

ALL_CAMPAIGNS = "*"  # the do-not-call scope of a number no campaign may call


def campaign_record(row: RowMapping | dict[str, Any]) -> CampaignRecord:
    return CampaignRecord(
        id=row["id"],
        tenant_id=row["tenant_id"],
        name=row["name"],
        kind=row["kind"],
        status=CampaignStatus(row["status"]),
        definition=row["definition"] or {},
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def contact_record(row: RowMapping | dict[str, Any]) -> CampaignContactRecord:
    return CampaignContactRecord(
        id=row["id"],
        campaign_id=row["campaign_id"],
        phone=row["phone"],
        timezone=row["timezone"],
        status=ContactStatus(row["status"]),
        source_line=row["source_line"],
        updated_at=row["updated_at"],
        name=row["name"],
        variables=row["variables"] or {},
        attempts=row["attempts"],
        next_due_at=row["next_due_at"],
        outcome=row["outcome"],
    )


class CampaignRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        *,
        tenant_id: str,
        name: str,
        kind: str,
        definition: dict[str, Any],
        contacts: Sequence[Contact],
        now: datetime,
    ) -> CampaignRecord:
        """A new campaign (``draft``) with its contacts, each due at ``now``, in one transaction."""
        now = utc(now)
        values = {
            "id": tables.new_id(),
            "tenant_id": tenant_id,
            "name": name,
            "kind": kind,
            "definition": definition,
            "status": CampaignStatus.DRAFT.value,
            "created_at": now,
            "updated_at": now,
        }
        rows = [
            {
                "campaign_id": values["id"],
                "phone": c.phone,
                "name": c.name,
                "timezone": c.timezone,
                "variables": dict(c.variables),
                "source_line": c.line,
                "status": ContactStatus.PENDING.value,
                "attempts": 0,
                "next_due_at": now,
                "outcome": None,
                "updated_at": now,
            }
            for c in contacts
        ]
        async with self._db.engine.begin() as conn:
            await conn.execute(insert(_C).values(values))
            if rows:
                await conn.execute(insert(_K), rows)
        return campaign_record(values)

    async def get(self, campaign_id: str) -> CampaignRecord:
        async with self._db.reader.connect() as conn:
            row = (await conn.execute(select(_C).where(_C.c.id == campaign_id))).mappings().first()
        if row is None:
            raise NotFoundError(f"campaign {campaign_id} does not exist")
        return campaign_record(row)

    async def list(self, tenant_id: str) -> builtins.list[CampaignRecord]:
        """The tenant's campaigns, newest first."""
        query = select(_C).where(_C.c.tenant_id == tenant_id).order_by(_C.c.created_at.desc(), _C.c.id)
        async with self._db.reader.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [campaign_record(r) for r in rows]

    async def set_status(self, campaign_id: str, status: CampaignStatus, now: datetime) -> CampaignRecord:
        """Move a campaign (ConflictError on a move its status does not allow)."""
        now = utc(now)
        async with self._db.engine.begin() as conn:
            row = (
                (await conn.execute(select(_C).where(_C.c.id == campaign_id).with_for_update()))
                .mappings()
                .first()
            )
            if row is None:
                raise NotFoundError(f"campaign {campaign_id} does not exist")
            CampaignStatus.transition(row["status"], status)
            changes = {"status": status.value, "updated_at": now}
            await conn.execute(update(_C).where(_C.c.id == campaign_id).values(changes))
        return campaign_record({**row, **changes})

    async def contacts(
        self, campaign_id: str, *, status: ContactStatus | None = None, limit: int = 1000
    ) -> builtins.list[CampaignContactRecord]:
        query = select(_K).where(_K.c.campaign_id == campaign_id)
        if status is not None:
            query = query.where(_K.c.status == status.value)
        async with self._db.reader.connect() as conn:
            rows = (await conn.execute(query.order_by(_K.c.id).limit(max(0, limit)))).mappings().all()
        return [contact_record(r) for r in rows]

    async def progress(self, campaign_id: str) -> dict[str, dict[str, int]]:
        """``{"status": {pending: n, ...}, "outcomes": {confirmed: n, ...}}`` of its contacts."""
        by_status = (
            select(_K.c.status, func.count()).where(_K.c.campaign_id == campaign_id).group_by(_K.c.status)
        )
        by_outcome = (
            select(_K.c.outcome, func.count())
            .where(_K.c.campaign_id == campaign_id, _K.c.outcome.is_not(None))
            .group_by(_K.c.outcome)
        )
        async with self._db.reader.connect() as conn:
            statuses = {s: int(n) for s, n in (await conn.execute(by_status)).all()}
            outcomes = {o: int(n) for o, n in (await conn.execute(by_outcome)).all()}
        return {"status": statuses, "outcomes": outcomes}

    # --- attempts -------------------------------------------------------------------------------

    async def claim_due(
        self, campaign_id: str, now: datetime, limit: int
    ) -> builtins.list[CampaignContactRecord]:
        """Take up to ``limit`` contacts whose attempt is due (``pending`` -> ``calling``, attempts+1),
        oldest due first. A contact is taken by one claimer only, so no attempt is made twice."""
        now = utc(now)
        query = (
            select(_K)
            .where(
                _K.c.campaign_id == campaign_id,
                _K.c.status == ContactStatus.PENDING.value,
                _K.c.next_due_at <= now,
            )
            .order_by(_K.c.next_due_at, _K.c.id)
            .limit(max(0, limit))
            .with_for_update(skip_locked=True)
        )
        async with self._db.engine.begin() as conn:
            rows = (await conn.execute(query)).mappings().all()
            if rows:
                await conn.execute(
                    update(_K)
                    .where(_K.c.id.in_([r["id"] for r in rows]))
                    .values(status=ContactStatus.CALLING.value, attempts=_K.c.attempts + 1, updated_at=now)
                )
        changes = {"status": ContactStatus.CALLING.value, "updated_at": now}
        return [contact_record({**r, **changes, "attempts": r["attempts"] + 1}) for r in rows]

    async def record_attempt(
        self, contact_id: int, *, attempt: int, outcome: str, next_due_at: datetime | None, now: datetime
    ) -> CampaignContactRecord:
        """Store how attempt number ``attempt`` ended: the contact ends (``next_due_at`` None) or waits.
        ConflictError when that attempt was already recorded (or is not the contact's current one)."""
        now = utc(now)
        changes: dict[str, Any] = {"outcome": outcome, "updated_at": now}
        if next_due_at is None:
            changes |= {"status": ContactStatus.DONE.value, "next_due_at": None}
        else:
            changes |= {"status": ContactStatus.PENDING.value, "next_due_at": utc(next_due_at)}
        async with self._db.engine.begin() as conn:
            result = await conn.execute(
                update(_K)
                .where(
                    _K.c.id == contact_id,
                    _K.c.status == ContactStatus.CALLING.value,
                    _K.c.attempts == attempt,
                )
                .values(changes)
            )
            if not result.rowcount:
                raise ConflictError(f"contact {contact_id}: attempt {attempt} is not in progress")
            row = (await conn.execute(select(_K).where(_K.c.id == contact_id))).mappings().one()
        return contact_record(row)

    async def release(self, contact_id: int, *, attempt: int, due_at: datetime, now: datetime) -> None:
        """Give back a claimed attempt that was not made (e.g. outside the calling window)."""
        async with self._db.engine.begin() as conn:
            await conn.execute(
                update(_K)
                .where(
                    _K.c.id == contact_id,
                    _K.c.status == ContactStatus.CALLING.value,
                    _K.c.attempts == attempt,
                )
                .values(
                    status=ContactStatus.PENDING.value,
                    attempts=attempt - 1,
                    next_due_at=utc(due_at),
                    updated_at=utc(now),
                )
            )

    async def in_progress(self, campaign_id: str) -> builtins.list[CampaignContactRecord]:
        """Contacts whose attempt was claimed and not recorded (after a crash: left mid-call)."""
        return await self.contacts(campaign_id, status=ContactStatus.CALLING)

    # --- do not call ----------------------------------------------------------------------------

    async def dnc_add(
        self,
        tenant_id: str,
        phone: str,
        now: datetime,
        *,
        scope: str = ALL_CAMPAIGNS,
        reason: str | None = None,
    ) -> None:
        """Never call ``phone`` (E.164) again: from any campaign, or only from campaign ``scope``."""
        values = {
            "tenant_id": tenant_id,
            "phone": phone,
            "scope": scope,
            "reason": reason,
            "added_at": utc(now),
        }
        async with self._db.engine.begin() as conn:
            await conn.execute(insert_ignoring_duplicates(self._db.dialect, _N, values))

    async def dnc_remove(self, tenant_id: str, phone: str, *, scope: str = ALL_CAMPAIGNS) -> bool:
        async with self._db.engine.begin() as conn:
            result = await conn.execute(
                delete(_N).where(_N.c.tenant_id == tenant_id, _N.c.phone == phone, _N.c.scope == scope)
            )
        return bool(result.rowcount)

    async def on_dnc(self, tenant_id: str, phone: str, campaign_id: str | None = None) -> bool:
        """True when ``phone`` may not be called (globally, or by ``campaign_id``)."""
        scopes = [ALL_CAMPAIGNS] + ([campaign_id] if campaign_id else [])
        query = select(func.count()).where(
            _N.c.tenant_id == tenant_id, _N.c.phone == phone, or_(*(_N.c.scope == s for s in scopes))
        )
        async with self._db.reader.connect() as conn:
            return int((await conn.execute(query)).scalar_one()) > 0

    async def dnc_list(self, tenant_id: str) -> builtins.list[dict[str, Any]]:
        query = select(_N).where(_N.c.tenant_id == tenant_id).order_by(_N.c.phone, _N.c.scope)
        async with self._db.reader.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            {"phone": r["phone"], "scope": r["scope"], "reason": r["reason"], "added_at": r["added_at"]}
            for r in rows
        ]
