"""InMemoryCRM: a CRMAdapter with the demo tenant's records, for dialogue and channel tests.

``InMemoryCRM.demo(now)`` holds the records of voicebot/demo/crm_seed.yaml (Ana Novak, John Smith,
...), with the relative dates resolved against ``now``. It behaves like SQLCRMAdapter (the same
contract tests run against both), records every write in ``audit``, and fails on demand:
``crm.fail_with = ProviderUnavailable("down")`` makes every call raise.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from voicebot.crm.base import Appointment, AppointmentStatus, Customer, Invoice, Order, Ticket
from voicebot.crm.rules import FINAL_ORDER_STATUSES, appointment_transition, normalise_email, normalise_phone
from voicebot.crm.seed import DEMO_SEED, parse_seed
from voicebot.errors import ConflictError, InputError, NotFoundError


@dataclass(frozen=True, slots=True)
class Note:
    customer_id: str
    text: str
    author: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    action: str
    customer_id: str | None
    details: dict[str, Any]
    at: datetime


class InMemoryCRM:
    def __init__(
        self,
        customers: Iterable[Customer] = (),
        orders: Iterable[Order] = (),
        appointments: Iterable[Appointment] = (),
        invoices: Iterable[Invoice] = (),
        *,
        clock: Callable[[], datetime] | None = None,
        default_region: str = "SI",
    ) -> None:
        self.customers = {c.id: c for c in customers}
        self.orders = {o.id: o for o in orders}
        self.appointments = {a.id: a for a in appointments}
        self.invoices = {i.id: i for i in invoices}
        self.tickets: list[Ticket] = []
        self.notes: list[Note] = []
        self.audit: list[AuditEntry] = []
        self.calls: list[str] = []  # method names, in call order
        self.fail_with: Exception | None = None
        self.clock = clock or (lambda: datetime.now(UTC))
        self.region = default_region

    @classmethod
    def demo(
        cls, now: datetime, *, path: Path = DEMO_SEED, clock: Callable[[], datetime] | None = None
    ) -> InMemoryCRM:
        data = parse_seed(path, now=now)
        return cls(
            data.customers, data.orders, data.appointments, data.invoices, clock=clock or (lambda: now)
        )

    def _enter(self, name: str) -> None:
        self.calls.append(name)
        if self.fail_with is not None:
            raise self.fail_with

    def _log(self, action: str, customer_id: str | None, **details: Any) -> None:
        self.audit.append(AuditEntry(action, customer_id, details, self.clock()))

    # --- customers --------------------------------------------------------------------------------

    async def find_customer_by_phone(self, phone: str) -> Customer | None:
        self._enter("find_customer_by_phone")
        e164 = normalise_phone(phone, self.region)
        return next(
            (c for c in sorted(self.customers.values(), key=lambda c: c.id) if e164 and c.phone == e164), None
        )

    async def find_customer_by_email(self, email: str) -> Customer | None:
        self._enter("find_customer_by_email")
        wanted = normalise_email(email)
        return next(
            (
                c
                for c in sorted(self.customers.values(), key=lambda c: c.id)
                if wanted and (c.email or "").lower() == wanted
            ),
            None,
        )

    async def get_customer(self, customer_id: str) -> Customer | None:
        self._enter("get_customer")
        return self.customers.get(customer_id)

    # --- orders -----------------------------------------------------------------------------------

    async def get_order(self, order_id: str) -> Order | None:
        self._enter("get_order")
        return self.orders.get(order_id.strip())

    async def list_orders(self, customer_id: str) -> list[Order]:
        self._enter("list_orders")
        return sorted((o for o in self.orders.values() if o.customer_id == customer_id), key=lambda o: o.id)

    async def update_delivery_address(self, order_id: str, address: str) -> Order:
        self._enter("update_delivery_address")
        address = address.strip()
        if not address:
            raise InputError("the delivery address is empty")
        order = self.orders.get(order_id.strip())
        if order is None:
            raise NotFoundError(f"order {order_id} does not exist")
        if order.status in FINAL_ORDER_STATUSES:
            raise ConflictError(f"order {order.id} is {order.status}; its address cannot change")
        updated = replace(order, delivery_address=address, updated_at=self.clock())
        self.orders[order.id] = updated
        self._log("order.delivery_address_updated", order.customer_id, order_id=order.id, new=address)
        return updated

    # --- appointments -----------------------------------------------------------------------------

    async def list_appointments(self, customer_id: str) -> list[Appointment]:
        self._enter("list_appointments")
        found = (a for a in self.appointments.values() if a.customer_id == customer_id)
        return sorted(found, key=lambda a: (a.starts_at, a.id))

    async def book_appointment(self, customer_id: str, starts_at: datetime, service: str = "") -> Appointment:
        self._enter("book_appointment")
        if starts_at.tzinfo is None:
            raise InputError("starts_at must be timezone-aware")
        if customer_id not in self.customers:
            raise NotFoundError(f"customer {customer_id} does not exist")
        appointment = Appointment(uuid.uuid4().hex, customer_id, starts_at, AppointmentStatus.BOOKED, service)
        self.appointments[appointment.id] = appointment
        self._log("appointment.booked", customer_id, appointment_id=appointment.id)
        return appointment

    async def set_appointment_status(self, appointment_id: str, status: AppointmentStatus) -> Appointment:
        self._enter("set_appointment_status")
        status = AppointmentStatus(status)
        appointment = self.appointments.get(appointment_id)
        if appointment is None:
            raise NotFoundError(f"appointment {appointment_id} does not exist")
        appointment_transition(appointment.status, status)
        if appointment.status != status:
            self._log(f"appointment.{status.value}", appointment.customer_id, appointment_id=appointment_id)
        updated = replace(appointment, status=status)
        self.appointments[appointment_id] = updated
        return updated

    async def reschedule_appointment(self, appointment_id: str, starts_at: datetime) -> Appointment:
        self._enter("reschedule_appointment")
        if starts_at.tzinfo is None:
            raise InputError("starts_at must be timezone-aware")
        old = self.appointments.get(appointment_id)
        if old is None:
            raise NotFoundError(f"appointment {appointment_id} does not exist")
        if old.status not in (AppointmentStatus.BOOKED, AppointmentStatus.CONFIRMED):
            raise ConflictError(
                f"appointment {appointment_id} is {old.status.value}; it cannot be rescheduled"
            )
        self.appointments[appointment_id] = replace(old, status=AppointmentStatus.RESCHEDULED)
        new = replace(old, id=uuid.uuid4().hex, starts_at=starts_at, status=AppointmentStatus.BOOKED)
        self.appointments[new.id] = new
        self._log(
            "appointment.rescheduled",
            old.customer_id,
            appointment_id=appointment_id,
            new_appointment_id=new.id,
        )
        return new

    # --- invoices, tickets, notes -----------------------------------------------------------------

    async def list_invoices(self, customer_id: str) -> list[Invoice]:
        self._enter("list_invoices")
        found = (i for i in self.invoices.values() if i.customer_id == customer_id)
        return sorted(found, key=lambda i: (i.due_date, i.id))

    async def create_ticket(
        self, customer_id: str | None, subject: str, body: str, fields: dict[str, Any] | None = None
    ) -> Ticket:
        self._enter("create_ticket")
        if customer_id is not None and customer_id not in self.customers:
            raise NotFoundError(f"customer {customer_id} does not exist")
        ticket = Ticket(uuid.uuid4().hex, customer_id, subject, body, self.clock(), dict(fields or {}))
        self.tickets.append(ticket)
        self._log("ticket.created", customer_id, ticket_id=ticket.id, subject=subject)
        return ticket

    async def add_note(self, customer_id: str, text: str, author: str = "bot") -> None:
        self._enter("add_note")
        if customer_id not in self.customers:
            raise NotFoundError(f"customer {customer_id} does not exist")
        self.notes.append(Note(customer_id, text, author, self.clock()))
        self._log("note.added", customer_id, author=author)
