"""The customer-data seam: one protocol, a built-in SQL adapter (default) and a REST adapter.

Records are plain frozen dataclasses; adapters never hand out ORM objects or raw JSON.
Adapters raise ProviderError / ProviderTimeout / ProviderUnavailable (voicebot.errors) when the
backing system fails, NotFoundError when an id does not exist, and return None / [] for lookups
that find nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable


class AppointmentStatus(StrEnum):
    BOOKED = "booked"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    RESCHEDULED = "rescheduled"  # the old slot; the new one is a new BOOKED appointment


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    name: str
    phone: str | None  # E.164
    email: str | None
    postcode: str | None
    birth_date: date | None
    language: str | None = None

    def public(self) -> dict[str, Any]:
        """What a human agent sees in a handoff (no knowledge factors)."""
        return {"id": self.id, "name": self.name, "phone": self.phone, "email": self.email}


@dataclass(frozen=True, slots=True)
class Order:
    id: str  # e.g. "A1001"
    customer_id: str
    status: str  # processing | shipped | delivered | cancelled | returned
    delivery_address: str
    items: tuple[str, ...] = ()
    total: Decimal | None = None
    currency: str = "EUR"
    updated_at: datetime | None = None
    tracking_url: str | None = None


@dataclass(frozen=True, slots=True)
class Appointment:
    id: str
    customer_id: str
    starts_at: datetime  # timezone-aware
    status: AppointmentStatus
    service: str = ""
    location: str = ""


@dataclass(frozen=True, slots=True)
class Invoice:
    id: str
    customer_id: str
    amount: Decimal
    currency: str
    due_date: date
    status: str  # open | paid | overdue
    paid_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Ticket:
    id: str
    customer_id: str | None
    subject: str
    body: str
    created_at: datetime
    fields: dict[str, Any] = field(default_factory=dict)


def to_jsonable(record: Any) -> dict[str, Any]:
    """A record as JSON-safe dict (dates ISO, decimals as strings)."""
    out: dict[str, Any] = {}
    for key, value in asdict(record).items():
        if isinstance(value, datetime | date):
            out[key] = value.isoformat()
        elif isinstance(value, Decimal):
            out[key] = str(value)
        elif isinstance(value, StrEnum):
            out[key] = value.value
        elif isinstance(value, tuple):
            out[key] = list(value)
        else:
            out[key] = value
    return out


@runtime_checkable
class CRMAdapter(Protocol):
    """What the dialogue's tools may do with customer data. Every method is async."""

    async def find_customer_by_phone(self, phone: str) -> Customer | None: ...
    async def find_customer_by_email(self, email: str) -> Customer | None: ...
    async def get_customer(self, customer_id: str) -> Customer | None: ...

    async def get_order(self, order_id: str) -> Order | None: ...
    async def list_orders(self, customer_id: str) -> list[Order]: ...
    async def update_delivery_address(self, order_id: str, address: str) -> Order: ...

    async def list_appointments(self, customer_id: str) -> list[Appointment]: ...
    async def book_appointment(
        self, customer_id: str, starts_at: datetime, service: str = ""
    ) -> Appointment: ...
    async def set_appointment_status(self, appointment_id: str, status: AppointmentStatus) -> Appointment: ...
    async def reschedule_appointment(self, appointment_id: str, starts_at: datetime) -> Appointment: ...

    async def list_invoices(self, customer_id: str) -> list[Invoice]: ...

    async def create_ticket(
        self, customer_id: str | None, subject: str, body: str, fields: dict[str, Any] | None = None
    ) -> Ticket: ...
    async def add_note(self, customer_id: str, text: str, author: str = "bot") -> None: ...
