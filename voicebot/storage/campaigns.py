"""Outbound campaigns in the database: the campaign (its validated definition and status), its
contacts (each with attempts, next due time and outcome) and the do-not-call list.

A campaign and all its imported contacts are written in one transaction; status changes follow
:class:`CampaignStatus` and are audited by the caller. The dialing engine (later) claims contacts
from ``campaign_contacts``; this module only keeps the data.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import RowMapping, delete, func, insert, or_, select, update

from voicebot.errors import ConflictError, NotFoundError
from voicebot.storage import tables
from voicebot.storage._common import insert_ignoring_duplicates, utc
from voicebot.storage.db import Database
from voicebot.storage.records import (
    CampaignAttemptRecord,
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
_A = tables.campaign_attempts

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
        consent=row.get("consent"),
        result=row.get("result"),
    )


def attempt_record(row: RowMapping | dict[str, Any]) -> CampaignAttemptRecord:
    optional: tuple[str, ...] = ("started_at", "answered_at", "ended_at", "worker", "outcome", "detail")
    optional += ("call_id", "conversation_id", "transcript", "result")
    return CampaignAttemptRecord(
        id=row["id"],
        campaign_id=row["campaign_id"],
        contact_id=row["contact_id"],
        attempt=row["attempt"],
        phone=row["phone"],
        due_at=utc(row["due_at"]),
        planned_at=utc(row["planned_at"]),
        lease_until=utc(row["lease_until"]),
        **{name: _utc_or_value(row.get(name)) for name in optional},
    )


def _utc_or_value(value: Any) -> Any:
    return utc(value) if isinstance(value, datetime) else value


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
        """A new campaign (``draft``) with its contacts, each due at its ``call_at`` or ``now``, in one
        transaction."""
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
            "paced_until": None,
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
                "next_due_at": utc(c.call_at) if c.call_at else now,
                "consent": c.consent,
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

    async def plan_due(
        self,
        campaign_id: str,
        now: datetime,
        *,
        lease_s: float,
        horizon_s: float = 2.0,
        defer: Callable[[CampaignContactRecord], datetime | None] | None = None,
    ) -> builtins.list[CampaignAttemptRecord]:
        """Plan the attempts due now of a running campaign: within its free lines (attempts not
        ended count as busy lines, in every process), each at its own start slot paced by
        ``calls_per_second`` and no further than ``horizon_s`` ahead. Each planned contact turns
        ``calling`` with a new attempt number, and its attempt row is the only licence to dial it.
        A contact ``defer`` gives a later time for (e.g. its calling window is closed) is not
        planned, and falls due then: it takes no start slot.
        The campaign row is locked meanwhile, so planners in several processes never over-book."""
        now = utc(now)
        async with self._db.engine.begin() as conn:
            campaign = (
                (await conn.execute(select(_C).where(_C.c.id == campaign_id).with_for_update()))
                .mappings()
                .first()
            )
            if campaign is None or campaign["status"] != CampaignStatus.RUNNING.value:
                return []
            definition = campaign["definition"]
            lines = int(definition.get("max_concurrent_calls", 1))
            gap = 1.0 / float(definition.get("calls_per_second", 1.0))
            busy = await conn.scalar(
                select(func.count())
                .select_from(_A)
                .where(_A.c.campaign_id == campaign_id, _A.c.ended_at.is_(None))
            )
            slot = max(utc(campaign["paced_until"]) if campaign["paced_until"] else now, now)
            room = int((now + timedelta(seconds=horizon_s) - slot).total_seconds() / gap) + 1
            limit = min(lines - int(busy or 0), room)
            if limit <= 0:
                return []
            query = (
                select(_K)
                .where(
                    _K.c.campaign_id == campaign_id,
                    _K.c.status == ContactStatus.PENDING.value,
                    _K.c.next_due_at <= now,
                )
                .order_by(_K.c.next_due_at, _K.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            rows = (await conn.execute(query)).mappings().all()
            contacts = []
            for row in rows:
                later = defer(contact_record(row)) if defer is not None else None
                if later is None:
                    contacts.append(row)
                    continue
                await conn.execute(
                    update(_K).where(_K.c.id == row["id"]).values(next_due_at=utc(later), updated_at=now)
                )
            planned: builtins.list[dict[str, Any]] = []
            for contact in contacts:
                planned.append(
                    {
                        "campaign_id": campaign_id,
                        "contact_id": contact["id"],
                        "attempt": contact["attempts"] + 1,
                        "phone": contact["phone"],
                        "due_at": utc(contact["next_due_at"]),
                        "planned_at": slot,
                        "lease_until": slot + timedelta(seconds=lease_s),
                    }
                )
                slot += timedelta(seconds=gap)
            if not planned:
                return []
            await conn.execute(
                update(_K)
                .where(_K.c.id.in_([c["id"] for c in contacts]))
                .values(status=ContactStatus.CALLING.value, attempts=_K.c.attempts + 1, updated_at=now)
            )
            await conn.execute(update(_C).where(_C.c.id == campaign_id).values(paced_until=slot))
            ids = [
                (await conn.execute(insert(_A).values(row).returning(_A.c.id))).scalar_one()
                for row in planned
            ]
        return [attempt_record({**row, "id": id_}) for row, id_ in zip(planned, ids, strict=True)]

    async def attempt(self, attempt_id: int) -> CampaignAttemptRecord | None:
        async with self._db.reader.connect() as conn:
            row = (await conn.execute(select(_A).where(_A.c.id == attempt_id))).mappings().first()
        return attempt_record(row) if row is not None else None

    async def contact(self, contact_id: int) -> CampaignContactRecord:
        async with self._db.reader.connect() as conn:
            row = (await conn.execute(select(_K).where(_K.c.id == contact_id))).mappings().first()
        if row is None:
            raise NotFoundError(f"campaign contact {contact_id} does not exist")
        return contact_record(row)

    async def attempts(
        self, campaign_id: str, *, contact_id: int | None = None, limit: int = 10_000
    ) -> builtins.list[CampaignAttemptRecord]:
        """Attempts of a campaign (or of one of its contacts), in the order they were planned."""
        query = select(_A).where(_A.c.campaign_id == campaign_id)
        if contact_id is not None:
            query = query.where(_A.c.contact_id == contact_id)
        async with self._db.reader.connect() as conn:
            rows = (await conn.execute(query.order_by(_A.c.id).limit(max(0, limit)))).mappings().all()
        return [attempt_record(r) for r in rows]

    async def begin_attempt(self, attempt_id: int, now: datetime, *, worker: str, lease_s: float) -> bool:
        """Take the licence to dial: True for exactly one caller, once per attempt."""
        now = utc(now)
        async with self._db.engine.begin() as conn:
            result = await conn.execute(
                update(_A)
                .where(_A.c.id == attempt_id, _A.c.started_at.is_(None), _A.c.ended_at.is_(None))
                .values(started_at=now, worker=worker, lease_until=now + timedelta(seconds=lease_s))
            )
        return bool(result.rowcount)

    async def renew_lease(self, attempt_id: int, until: datetime) -> bool:
        """Keep a call's lease; False when the attempt was ended meanwhile (e.g. taken as dead)."""
        async with self._db.engine.begin() as conn:
            result = await conn.execute(
                update(_A)
                .where(_A.c.id == attempt_id, _A.c.ended_at.is_(None))
                .values(lease_until=utc(until))
            )
        return bool(result.rowcount)

    async def mark_answered(self, attempt_id: int, now: datetime) -> None:
        async with self._db.engine.begin() as conn:
            await conn.execute(update(_A).where(_A.c.id == attempt_id).values(answered_at=utc(now)))

    async def release_attempt(self, attempt_id: int, *, due_at: datetime, now: datetime) -> bool:
        """Give back an attempt that was planned but not dialled (paused, outside the window...):
        the contact waits again, due at ``due_at``, with its attempt number unspent."""
        async with self._db.engine.begin() as conn:
            row = (
                (
                    await conn.execute(
                        select(_A)
                        .where(_A.c.id == attempt_id, _A.c.started_at.is_(None), _A.c.ended_at.is_(None))
                        .with_for_update()
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                return False
            await conn.execute(delete(_A).where(_A.c.id == attempt_id))
            await conn.execute(
                update(_K)
                .where(
                    _K.c.id == row["contact_id"],
                    _K.c.status == ContactStatus.CALLING.value,
                    _K.c.attempts == row["attempt"],
                )
                .values(
                    status=ContactStatus.PENDING.value,
                    attempts=row["attempt"] - 1,
                    next_due_at=utc(due_at),
                    updated_at=utc(now),
                )
            )
        return True

    async def finish_attempt(
        self,
        attempt_id: int,
        *,
        outcome: str,
        next_due_at: datetime | None,
        now: datetime,
        detail: str | None = None,
        call_id: str | None = None,
        conversation_id: str | None = None,
        transcript: builtins.list[Any] | None = None,
        result: dict[str, Any] | None = None,
    ) -> CampaignContactRecord:
        """Record how an attempt ended and the contact's next step (ends when ``next_due_at`` is
        None), in one transaction. ConflictError when the attempt already ended (recorded by
        another process, or taken as dead after its lease ran out)."""
        now = utc(now)
        async with self._db.engine.begin() as conn:
            ended = await conn.execute(
                update(_A)
                .where(_A.c.id == attempt_id, _A.c.ended_at.is_(None))
                .values(
                    ended_at=now,
                    outcome=outcome,
                    detail=detail,
                    call_id=call_id,
                    conversation_id=conversation_id,
                    transcript=transcript,
                    result=result,
                )
                .returning(_A.c.contact_id, _A.c.attempt)
            )
            row = ended.first()
            if row is None:
                raise ConflictError(f"attempt {attempt_id} has already ended")
            contact_id, attempt = row
            changes: dict[str, Any] = {"outcome": outcome, "updated_at": now}
            if result:
                changes["result"] = result
            if next_due_at is None:
                changes |= {"status": ContactStatus.DONE.value, "next_due_at": None}
            else:
                changes |= {"status": ContactStatus.PENDING.value, "next_due_at": utc(next_due_at)}
            await conn.execute(
                update(_K)
                .where(
                    _K.c.id == contact_id,
                    _K.c.attempts == attempt,
                    _K.c.status == ContactStatus.CALLING.value,
                )
                .values(changes)
            )
            contact = (await conn.execute(select(_K).where(_K.c.id == contact_id))).mappings().one()
        return contact_record(contact)

    async def unfinished(
        self, *, lapsed_before: datetime | None = None, tenant_id: str | None = None
    ) -> builtins.list[CampaignAttemptRecord]:
        """Attempts not ended; with ``lapsed_before``, only those whose lease ran out by then (the
        process holding them is gone)."""
        query = select(_A).where(_A.c.ended_at.is_(None))
        if lapsed_before is not None:
            query = query.where(_A.c.lease_until < utc(lapsed_before))
        if tenant_id is not None:
            query = query.where(_A.c.campaign_id.in_(select(_C.c.id).where(_C.c.tenant_id == tenant_id)))
        async with self._db.reader.connect() as conn:
            rows = (await conn.execute(query.order_by(_A.c.id))).mappings().all()
        return [attempt_record(r) for r in rows]

    async def running(self, tenant_id: str) -> builtins.list[CampaignRecord]:
        query = select(_C).where(_C.c.tenant_id == tenant_id, _C.c.status == CampaignStatus.RUNNING.value)
        async with self._db.reader.connect() as conn:
            rows = (await conn.execute(query.order_by(_C.c.created_at))).mappings().all()
        return [campaign_record(r) for r in rows]

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
