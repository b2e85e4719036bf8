"""One behaviour for every CRMAdapter: the SQL adapter (SQLite, PostgreSQL) and the in-memory fake."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from tests.crm.conftest import CRMUnderTest
from voicebot.crm.base import AppointmentStatus, CRMAdapter
from voicebot.errors import ConflictError, InputError, NotFoundError

LJUBLJANA = ZoneInfo("Europe/Ljubljana")


def test_is_a_crm_adapter(crm: CRMUnderTest) -> None:
    assert isinstance(crm.adapter, CRMAdapter)


@pytest.mark.parametrize(
    "phone", ["+38640111222", "040 111 222", "040/111-222", "0038640111222", "+386 40 111 222"]
)
async def test_find_by_phone_normalises(crm: CRMUnderTest, phone: str) -> None:
    customer = await crm.adapter.find_customer_by_phone(phone)
    assert customer is not None
    assert (customer.id, customer.name, customer.phone) == ("C001", "Ana Novak", "+38640111222")
    assert customer.postcode == "1000" and customer.birth_date == date(1985, 3, 14)
    assert customer.language == "sl"


@pytest.mark.parametrize("phone", ["+447700900999", "hello", "", "12"])
async def test_find_by_phone_misses(crm: CRMUnderTest, phone: str) -> None:
    assert await crm.adapter.find_customer_by_phone(phone) is None


async def test_find_by_email_ignores_case(crm: CRMUnderTest) -> None:
    john = await crm.adapter.find_customer_by_email("  John.Smith@EXAMPLE.com ")
    assert john is not None and john.id == "C002" and john.phone == "+447700900123"
    assert john.postcode == "SW1A 1AA" and john.language == "en"
    petra = await crm.adapter.find_customer_by_email("petra.kovac@example.com")  # stored mixed-case
    assert petra is not None and petra.name == "Petra Kovač"
    assert await crm.adapter.find_customer_by_email("nobody@example.com") is None
    assert await crm.adapter.find_customer_by_email("") is None


async def test_get_customer(crm: CRMUnderTest) -> None:
    assert (await crm.adapter.get_customer("C002")) == await crm.adapter.find_customer_by_phone(
        "+447700900123"
    )
    assert await crm.adapter.get_customer("nope") is None


async def test_orders(crm: CRMUnderTest) -> None:
    order = await crm.adapter.get_order("A1001")
    assert order is not None
    assert (order.status, order.delivery_address) == ("shipped", "Slovenska cesta 1, 1000 Ljubljana")
    assert order.total == Decimal("89.90") and order.currency == "EUR"
    assert order.items == ("Brezžične slušalke", "Polnilni kabel USB-C")
    assert order.updated_at is not None and order.updated_at.tzinfo is not None
    assert await crm.adapter.get_order("A9999") is None
    assert [(o.id, o.status) for o in await crm.adapter.list_orders("C002")] == [
        ("A1002", "processing"),
        ("A1003", "delivered"),
    ]
    assert await crm.adapter.list_orders("nope") == []


async def test_update_delivery_address(crm: CRMUnderTest, now: datetime) -> None:
    updated = await crm.adapter.update_delivery_address("A1001", "Trubarjeva 5, 1000 Ljubljana")
    assert updated.delivery_address == "Trubarjeva 5, 1000 Ljubljana" and updated.updated_at == now
    assert await crm.adapter.get_order("A1001") == updated
    with pytest.raises(ConflictError):
        await crm.adapter.update_delivery_address("A1003", "elsewhere")  # delivered
    with pytest.raises(NotFoundError):
        await crm.adapter.update_delivery_address("A9999", "elsewhere")
    with pytest.raises(InputError):
        await crm.adapter.update_delivery_address("A1001", "  ")
    assert await crm.audit_actions() == ["order.delivery_address_updated"]


async def test_demo_appointment_is_next_working_day_at_ten(crm: CRMUnderTest) -> None:
    (appointment,) = await crm.adapter.list_appointments("C001")
    local = appointment.starts_at.astimezone(LJUBLJANA)
    assert (local.date(), local.hour, local.minute) == (date(2026, 3, 9), 10, 0)  # Friday -> Monday
    assert appointment.status is AppointmentStatus.BOOKED


async def test_book_confirm_cancel(crm: CRMUnderTest, now: datetime) -> None:
    when = now + timedelta(days=10)
    booked = await crm.adapter.book_appointment("C002", when, "Consultation")
    assert (booked.customer_id, booked.starts_at, booked.status, booked.service) == (
        "C002",
        when,
        AppointmentStatus.BOOKED,
        "Consultation",
    )
    assert [a.id for a in await crm.adapter.list_appointments("C002")] == [booked.id]
    confirmed = await crm.adapter.set_appointment_status(booked.id, AppointmentStatus.CONFIRMED)
    assert confirmed.status is AppointmentStatus.CONFIRMED
    assert await crm.adapter.set_appointment_status(booked.id, AppointmentStatus.CONFIRMED) == confirmed
    cancelled = await crm.adapter.set_appointment_status(booked.id, AppointmentStatus.CANCELLED)
    assert cancelled.status is AppointmentStatus.CANCELLED
    with pytest.raises(ConflictError):
        await crm.adapter.set_appointment_status(booked.id, AppointmentStatus.CONFIRMED)
    with pytest.raises(NotFoundError):
        await crm.adapter.set_appointment_status("nope", AppointmentStatus.CONFIRMED)
    with pytest.raises(NotFoundError):
        await crm.adapter.book_appointment("nope", when)
    with pytest.raises(InputError):
        await crm.adapter.book_appointment("C002", datetime(2026, 4, 1, 10, 0))
    assert await crm.audit_actions() == [
        "appointment.booked",
        "appointment.confirmed",
        "appointment.cancelled",
    ]


async def test_reschedule(crm: CRMUnderTest, now: datetime) -> None:
    (old,) = await crm.adapter.list_appointments("C001")
    when = datetime(2026, 3, 12, 14, 0, tzinfo=LJUBLJANA)
    new = await crm.adapter.reschedule_appointment(old.id, when)
    assert new.id != old.id
    assert (new.starts_at, new.status, new.service, new.location) == (
        when,
        AppointmentStatus.BOOKED,
        old.service,
        old.location,
    )
    appointments = {a.id: a for a in await crm.adapter.list_appointments("C001")}
    assert appointments[old.id].status is AppointmentStatus.RESCHEDULED
    assert appointments[new.id] == new
    with pytest.raises(ConflictError):
        await crm.adapter.reschedule_appointment(old.id, when)
    with pytest.raises(InputError):
        await crm.adapter.set_appointment_status(new.id, AppointmentStatus.RESCHEDULED)
    with pytest.raises(NotFoundError):
        await crm.adapter.reschedule_appointment("nope", when)
    assert await crm.audit_actions() == ["appointment.rescheduled"]


async def test_invoices(crm: CRMUnderTest, now: datetime) -> None:
    (ana,) = await crm.adapter.list_invoices("C001")
    assert ana.status == "open" and ana.amount == Decimal("59.90") and ana.due_date > now.date()
    johns = await crm.adapter.list_invoices("C002")
    assert [(i.id, i.status) for i in johns] == [("INV-2001", "paid"), ("INV-2002", "overdue")]
    assert johns[0].paid_at is not None and johns[1].paid_at is None
    assert johns[1].due_date < now.date()
    assert await crm.adapter.list_invoices("nope") == []


async def test_tickets_and_notes(crm: CRMUnderTest, now: datetime) -> None:
    ticket = await crm.adapter.create_ticket(
        "C001", "Damaged parcel", "The box was wet.", {"order_id": "A1001"}
    )
    assert (ticket.customer_id, ticket.subject, ticket.fields, ticket.created_at) == (
        "C001",
        "Damaged parcel",
        {"order_id": "A1001"},
        now,
    )
    anonymous = await crm.adapter.create_ticket(None, "Question", "Opening hours at Easter?")
    assert anonymous.customer_id is None and anonymous.id != ticket.id
    with pytest.raises(NotFoundError):
        await crm.adapter.create_ticket("nope", "x", "y")
    await crm.adapter.add_note("C001", "Prefers e-mail.", author="agent:maja")
    with pytest.raises(NotFoundError):
        await crm.adapter.add_note("nope", "x")
    assert await crm.audit_actions() == ["ticket.created", "ticket.created", "note.added"]
