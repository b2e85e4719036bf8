"""The built-in CRM: customer data in voicebot's own database (SQLite or PostgreSQL).

Phone lookups normalise to E.164 (``phonenumbers``, numbers without a country code are read in
``default_region``); e-mail lookups ignore case. Every write also writes an audit_log row, in the
same transaction. Database failures surface as ProviderUnavailable / ProviderError.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, Select, func, insert, select, update
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from voicebot.crm.base import Appointment, AppointmentStatus, Customer, Invoice, Order, Ticket
from voicebot.crm.rules import (
    FINAL_ORDER_STATUSES,
    appointment_transition,
    normalise_email,
    normalise_phone,
)
from voicebot.errors import ConflictError, InputError, NotFoundError, ProviderError, ProviderUnavailable
from voicebot.storage import tables
from voicebot.storage.audit import AuditRepository
from voicebot.storage.db import Database

logger = logging.getLogger("voicebot.crm")

_CU, _O, _AP, _I, _TK, _N = (
    tables.customers,
    tables.orders,
    tables.appointments,
    tables.invoices,
    tables.tickets,
    tables.notes,
)


def customer_from_row(row: RowMapping | dict[str, Any]) -> Customer:
    return Customer(
        id=row["id"],
        name=row["name"],
        phone=row["phone"],
        email=row["email"],
        postcode=row["postcode"],
        birth_date=row["birth_date"],
        language=row["language"],
    )


def order_from_row(row: RowMapping | dict[str, Any]) -> Order:
    return Order(
        id=row["id"],
        customer_id=row["customer_id"],
        status=row["status"],
        delivery_address=row["delivery_address"],
        items=tuple(row["items"] or ()),
        total=row["total"],
        currency=row["currency"],
        updated_at=row["updated_at"],
        tracking_url=row["tracking_url"],
    )


def appointment_from_row(row: RowMapping | dict[str, Any]) -> Appointment:
    return Appointment(
        id=row["id"],
        customer_id=row["customer_id"],
        starts_at=row["starts_at"],
        status=AppointmentStatus(row["status"]),
        service=row["service"],
        location=row["location"],
    )


def invoice_from_row(row: RowMapping | dict[str, Any]) -> Invoice:
    return Invoice(
        id=row["id"],
        customer_id=row["customer_id"],
        amount=row["amount"],
        currency=row["currency"],
        due_date=row["due_date"],
        status=row["status"],
        paid_at=row["paid_at"],
    )


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InputError(f"{name} must be timezone-aware")
    return value


class SQLCRMAdapter:
    """CRMAdapter over the customers / orders / appointments / invoices / tickets / notes tables."""

    def __init__(
        self,
        db: Database,
        tenant_id: str,
        audit: AuditRepository,
        clock: Callable[[], datetime],
        *,
        default_region: str = "SI",
        actor: str = "bot",
    ) -> None:
        self._db = db
        self._tenant = tenant_id
        self._audit = audit
        self._clock = clock
        self._region = default_region
        self._actor = actor

    # --- plumbing -------------------------------------------------------------------------------

    @asynccontextmanager
    async def _connect(self, *, write: bool = False) -> AsyncIterator[AsyncConnection]:
        try:
            if write:
                async with self._db.engine.begin() as conn:
                    yield conn
            else:
                async with self._db.reader.connect() as conn:
                    yield conn
        except (OperationalError, DBAPIError) as exc:
            if isinstance(exc, OperationalError) or exc.connection_invalidated:
                raise ProviderUnavailable(f"the CRM database is unavailable: {exc.orig}") from exc
            raise ProviderError(f"the CRM database failed: {exc.orig}") from exc
        except SQLAlchemyError as exc:
            raise ProviderError(f"the CRM database failed: {exc}") from exc

    async def _one(self, query: Select[Any]) -> RowMapping | None:
        async with self._connect() as conn:
            return (await conn.execute(query)).mappings().first()

    async def _all(self, query: Select[Any]) -> list[RowMapping]:
        async with self._connect() as conn:
            return list((await conn.execute(query)).mappings().all())

    async def _audit_row(
        self, conn: AsyncConnection, action: str, customer_id: str | None, details: dict[str, Any]
    ) -> None:
        await conn.execute(
            self._audit.insert_statement(
                tenant_id=self._tenant,
                actor=self._actor,
                action=action,
                now=self._clock(),
                customer_id=customer_id,
                details=details,
            )
        )

    async def _require_customer(self, conn: AsyncConnection, customer_id: str) -> None:
        found = await conn.scalar(
            select(_CU.c.id).where(_CU.c.tenant_id == self._tenant, _CU.c.id == customer_id)
        )
        if found is None:
            raise NotFoundError(f"customer {customer_id} does not exist")

    async def _locked(self, conn: AsyncConnection, table: Any, row_id: str, what: str) -> RowMapping:
        query = select(table).where(table.c.tenant_id == self._tenant, table.c.id == row_id).with_for_update()
        row = (await conn.execute(query)).mappings().first()
        if row is None:
            raise NotFoundError(f"{what} {row_id} does not exist")
        return row

    # --- customers --------------------------------------------------------------------------------

    async def find_customer_by_phone(self, phone: str) -> Customer | None:
        e164 = normalise_phone(phone, self._region)
        if e164 is None:
            return None
        row = await self._one(
            select(_CU)
            .where(_CU.c.tenant_id == self._tenant, _CU.c.phone == e164)
            .order_by(_CU.c.id)
            .limit(1)
        )
        return customer_from_row(row) if row else None

    async def find_customer_by_email(self, email: str) -> Customer | None:
        wanted = normalise_email(email)
        if not wanted:
            return None
        row = await self._one(
            select(_CU)
            .where(_CU.c.tenant_id == self._tenant, func.lower(_CU.c.email) == wanted)
            .order_by(_CU.c.id)
            .limit(1)
        )
        return customer_from_row(row) if row else None

    async def get_customer(self, customer_id: str) -> Customer | None:
        row = await self._one(select(_CU).where(_CU.c.tenant_id == self._tenant, _CU.c.id == customer_id))
        return customer_from_row(row) if row else None

    # --- orders -----------------------------------------------------------------------------------

    async def get_order(self, order_id: str) -> Order | None:
        row = await self._one(select(_O).where(_O.c.tenant_id == self._tenant, _O.c.id == order_id.strip()))
        return order_from_row(row) if row else None

    async def list_orders(self, customer_id: str) -> list[Order]:
        rows = await self._all(
            select(_O)
            .where(_O.c.tenant_id == self._tenant, _O.c.customer_id == customer_id)
            .order_by(_O.c.id)
        )
        return [order_from_row(r) for r in rows]

    async def update_delivery_address(self, order_id: str, address: str) -> Order:
        """ConflictError once the order is delivered, cancelled or returned."""
        address = address.strip()
        if not address:
            raise InputError("the delivery address is empty")
        now = self._clock()
        async with self._connect(write=True) as conn:
            row = await self._locked(conn, _O, order_id.strip(), "order")
            if row["status"] in FINAL_ORDER_STATUSES:
                raise ConflictError(f"order {row['id']} is {row['status']}; its address cannot change")
            changes = {"delivery_address": address, "updated_at": now}
            await conn.execute(
                update(_O).where(_O.c.tenant_id == self._tenant, _O.c.id == row["id"]).values(changes)
            )
            await self._audit_row(
                conn,
                "order.delivery_address_updated",
                row["customer_id"],
                {"order_id": row["id"], "old": row["delivery_address"], "new": address},
            )
        return order_from_row({**row, **changes})

    # --- appointments -----------------------------------------------------------------------------

    async def list_appointments(self, customer_id: str) -> list[Appointment]:
        rows = await self._all(
            select(_AP)
            .where(_AP.c.tenant_id == self._tenant, _AP.c.customer_id == customer_id)
            .order_by(_AP.c.starts_at, _AP.c.id)
        )
        return [appointment_from_row(r) for r in rows]

    async def book_appointment(self, customer_id: str, starts_at: datetime, service: str = "") -> Appointment:
        _aware(starts_at, "starts_at")
        values = {
            "tenant_id": self._tenant,
            "id": tables.new_id(),
            "customer_id": customer_id,
            "starts_at": starts_at,
            "status": AppointmentStatus.BOOKED.value,
            "service": service,
            "location": "",
        }
        async with self._connect(write=True) as conn:
            await self._require_customer(conn, customer_id)
            await conn.execute(insert(_AP), values)
            await self._audit_row(
                conn,
                "appointment.booked",
                customer_id,
                {"appointment_id": values["id"], "starts_at": starts_at.isoformat(), "service": service},
            )
        return appointment_from_row(values)

    async def set_appointment_status(self, appointment_id: str, status: AppointmentStatus) -> Appointment:
        status = AppointmentStatus(status)
        async with self._connect(write=True) as conn:
            row = await self._locked(conn, _AP, appointment_id, "appointment")
            old = AppointmentStatus(row["status"])
            appointment_transition(old, status)
            if old != status:
                await conn.execute(
                    update(_AP)
                    .where(_AP.c.tenant_id == self._tenant, _AP.c.id == appointment_id)
                    .values(status=status.value)
                )
                await self._audit_row(
                    conn,
                    f"appointment.{status.value}",
                    row["customer_id"],
                    {"appointment_id": appointment_id, "from": old.value, "to": status.value},
                )
        return appointment_from_row({**row, "status": status.value})

    async def reschedule_appointment(self, appointment_id: str, starts_at: datetime) -> Appointment:
        """The old appointment becomes RESCHEDULED; returns the new BOOKED one."""
        _aware(starts_at, "starts_at")
        async with self._connect(write=True) as conn:
            row = await self._locked(conn, _AP, appointment_id, "appointment")
            old = AppointmentStatus(row["status"])
            if old not in (AppointmentStatus.BOOKED, AppointmentStatus.CONFIRMED):
                raise ConflictError(f"appointment {appointment_id} is {old.value}; it cannot be rescheduled")
            await conn.execute(
                update(_AP)
                .where(_AP.c.tenant_id == self._tenant, _AP.c.id == appointment_id)
                .values(status=AppointmentStatus.RESCHEDULED.value)
            )
            new = {
                **row,
                "id": tables.new_id(),
                "starts_at": starts_at,
                "status": AppointmentStatus.BOOKED.value,
            }
            await conn.execute(insert(_AP), new)
            await self._audit_row(
                conn,
                "appointment.rescheduled",
                row["customer_id"],
                {
                    "appointment_id": appointment_id,
                    "new_appointment_id": new["id"],
                    "starts_at": starts_at.isoformat(),
                },
            )
        return appointment_from_row(new)

    # --- invoices, tickets, notes -----------------------------------------------------------------

    async def list_invoices(self, customer_id: str) -> list[Invoice]:
        rows = await self._all(
            select(_I)
            .where(_I.c.tenant_id == self._tenant, _I.c.customer_id == customer_id)
            .order_by(_I.c.due_date, _I.c.id)
        )
        return [invoice_from_row(r) for r in rows]

    async def create_ticket(
        self, customer_id: str | None, subject: str, body: str, fields: dict[str, Any] | None = None
    ) -> Ticket:
        ticket = Ticket(
            id=tables.new_id(),
            customer_id=customer_id,
            subject=subject,
            body=body,
            created_at=self._clock(),
            fields=dict(fields or {}),
        )
        async with self._connect(write=True) as conn:
            if customer_id is not None:
                await self._require_customer(conn, customer_id)
            await conn.execute(
                insert(_TK),
                {
                    "tenant_id": self._tenant,
                    "id": ticket.id,
                    "customer_id": customer_id,
                    "subject": subject,
                    "body": body,
                    "fields": ticket.fields,
                    "created_at": ticket.created_at,
                },
            )
            await self._audit_row(
                conn, "ticket.created", customer_id, {"ticket_id": ticket.id, "subject": subject}
            )
        return ticket

    async def add_note(self, customer_id: str, text: str, author: str = "bot") -> None:
        now = self._clock()
        async with self._connect(write=True) as conn:
            await self._require_customer(conn, customer_id)
            await conn.execute(
                insert(_N),
                {
                    "tenant_id": self._tenant,
                    "customer_id": customer_id,
                    "author": author,
                    "text": text,
                    "created_at": now,
                },
            )
            await self._audit_row(conn, "note.added", customer_id, {"author": author, "chars": len(text)})
