"""Actions against customer data, one async function per intent.

Each tool gets a ToolContext (a verified customer, the fields collected so far, the phrasebook,
the injected time) and returns a ToolOutcome: the reply text, and either `awaiting` (the field it
needs next; the manager keeps the intent pending) or done. Tools never see unverified customers:
the manager runs verification first for every tool in PERSONAL_DATA_TOOLS.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from voicebot.crm.base import Appointment, AppointmentStatus, CRMAdapter, Customer
from voicebot.dialogue.phrases import Phrasebook

AuditSink = Callable[[str, str | None, dict[str, Any]], Awaitable[None]]

EN_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
SL_DAYS = ("ponedeljek", "torek", "sreda", "četrtek", "petek", "sobota", "nedelja")
EN_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
YES = {
    "yes",
    "yeah",
    "yep",
    "sure",
    "ok",
    "okay",
    "please do",
    "correct",
    "da",
    "ja",
    "seveda",
    "prosim",
    "lahko",
    "drži",
    "velja",
    "potrjujem",
}
NO = {"no", "nope", "don't", "do not", "ne", "nikar", "ni treba", "pustite", "pusti"}


@dataclass(slots=True)
class ToolContext:
    crm: CRMAdapter
    customer: Customer
    fields: dict[str, Any]
    text: str
    language: str
    phrases: Phrasebook
    now: datetime
    timezone: ZoneInfo
    working_hours: tuple[int, int]
    audit: AuditSink


@dataclass(slots=True)
class ToolOutcome:
    text: str
    awaiting: str | None = None  # the field the tool needs next
    handoff_reason: str | None = None  # the tool asks for a human
    data: dict[str, Any] = field(default_factory=dict)


def format_when(moment: datetime, language: str, tz: ZoneInfo) -> str:
    local = moment.astimezone(tz)
    if language == "sl":
        return f"{SL_DAYS[local.weekday()]}, {local.day}. {local.month}. {local.year} ob {local:%H:%M}"
    return (
        f"{EN_DAYS[local.weekday()]} {local.day} {EN_MONTHS[local.month - 1]} {local.year} at {local:%H:%M}"
    )


def _format_date(value: date | datetime | None, language: str) -> str:
    if value is None:
        return "-"
    if language == "sl":
        return f"{value.day}. {value.month}. {value.year}"
    return f"{value.day} {EN_MONTHS[value.month - 1]} {value.year}"


def answer_yes_no(text: str) -> bool | None:
    from voicebot.dialogue.triggers import fold

    words = f" {fold(text)} "
    if any(f" {w} " in words for w in NO):
        return False
    if any(f" {w} " in words for w in YES):
        return True
    return None


async def order_status(ctx: ToolContext) -> ToolOutcome:
    order = await _own_order(ctx)
    if isinstance(order, ToolOutcome):
        return order
    await ctx.audit("disclose:order_status", ctx.customer.id, {"order_id": order.id})
    return ToolOutcome(
        ctx.phrases.text(
            "order_status",
            ctx.language,
            order_id=order.id,
            status=ctx.phrases.status(order.status, ctx.language),
            address=order.delivery_address,
        ),
        data={"order_id": order.id, "status": order.status},
    )


async def change_delivery(ctx: ToolContext) -> ToolOutcome:
    order = await _own_order(ctx)
    if isinstance(order, ToolOutcome):
        return order
    if order.status != "processing":
        return ToolOutcome(
            ctx.phrases.text(
                "address_locked",
                ctx.language,
                order_id=order.id,
                status=ctx.phrases.status(order.status, ctx.language),
            )
        )
    address = ctx.fields.get("address")
    if not address:
        return ToolOutcome(
            ctx.phrases.text("ask_address", ctx.language, order_id=order.id), awaiting="address"
        )
    updated = await ctx.crm.update_delivery_address(order.id, str(address))
    return ToolOutcome(
        ctx.phrases.text(
            "address_changed", ctx.language, order_id=updated.id, address=updated.delivery_address
        )
    )


async def book_appointment(ctx: ToolContext) -> ToolOutcome:
    when = _requested_time(ctx)
    if isinstance(when, ToolOutcome):
        return when
    booked = await ctx.crm.book_appointment(ctx.customer.id, when, service="service appointment")
    return ToolOutcome(
        ctx.phrases.text("booked", ctx.language, when=_when(ctx, booked.starts_at)),
        data={"appointment_id": booked.id},
    )


async def confirm_appointment(ctx: ToolContext) -> ToolOutcome:
    upcoming = await _next_appointment(ctx)
    if upcoming is None:
        return ToolOutcome(ctx.phrases.text("no_appointment", ctx.language))
    confirmed = await ctx.crm.set_appointment_status(upcoming.id, AppointmentStatus.CONFIRMED)
    return ToolOutcome(ctx.phrases.text("confirmed", ctx.language, when=_when(ctx, confirmed.starts_at)))


async def cancel_appointment(ctx: ToolContext) -> ToolOutcome:
    upcoming = await _next_appointment(ctx)
    if upcoming is None:
        return ToolOutcome(ctx.phrases.text("no_appointment", ctx.language))
    when = _when(ctx, upcoming.starts_at)
    decision = ctx.fields.get("confirm_cancel")
    if decision is None:
        return ToolOutcome(
            ctx.phrases.text("confirm_cancel", ctx.language, when=when), awaiting="confirm_cancel"
        )
    if not decision:
        return ToolOutcome(ctx.phrases.text("kept", ctx.language, when=when))
    await ctx.crm.set_appointment_status(upcoming.id, AppointmentStatus.CANCELLED)
    return ToolOutcome(ctx.phrases.text("cancelled", ctx.language, when=when))


async def reschedule_appointment(ctx: ToolContext) -> ToolOutcome:
    upcoming = await _next_appointment(ctx)
    if upcoming is None:
        return ToolOutcome(ctx.phrases.text("no_appointment", ctx.language))
    when = _requested_time(ctx)
    if isinstance(when, ToolOutcome):
        return when
    moved = await ctx.crm.reschedule_appointment(upcoming.id, when)
    return ToolOutcome(
        ctx.phrases.text(
            "rescheduled", ctx.language, old=_when(ctx, upcoming.starts_at), when=_when(ctx, moved.starts_at)
        )
    )


async def payment_status(ctx: ToolContext) -> ToolOutcome:
    invoices = await ctx.crm.list_invoices(ctx.customer.id)
    await ctx.audit("disclose:payment_status", ctx.customer.id, {"invoices": [i.id for i in invoices]})
    unpaid = sorted((i for i in invoices if i.status in ("open", "overdue")), key=lambda i: i.due_date)
    if unpaid:
        lines = [
            ctx.phrases.text(
                "payment_open",
                ctx.language,
                invoice_id=i.id,
                amount=f"{i.amount:.2f}",
                currency=i.currency,
                status=ctx.phrases.status(i.status, ctx.language),
                due=_format_date(i.due_date, ctx.language),
            )
            for i in unpaid
        ]
        return ToolOutcome(" ".join(lines))
    paid = sorted((i for i in invoices if i.status == "paid"), key=lambda i: i.due_date)
    if paid:
        last = paid[-1]
        return ToolOutcome(
            ctx.phrases.text(
                "payment_paid",
                ctx.language,
                invoice_id=last.id,
                amount=f"{last.amount:.2f}",
                currency=last.currency,
                paid=_format_date(last.paid_at or last.due_date, ctx.language),
            )
        )
    return ToolOutcome(ctx.phrases.text("payment_none", ctx.language))


Tool = Callable[[ToolContext], Awaitable[ToolOutcome]]

PERSONAL_DATA_TOOLS: dict[str, Tool] = {
    "order_status": order_status,
    "change_delivery": change_delivery,
    "book_appointment": book_appointment,
    "confirm_appointment": confirm_appointment,
    "cancel_appointment": cancel_appointment,
    "reschedule_appointment": reschedule_appointment,
    "payment_status": payment_status,
}


async def _own_order(ctx: ToolContext) -> Any:
    """The order named in the fields, if it belongs to this customer; else the outcome to send."""
    order_id = ctx.fields.get("order_id")
    if not order_id:
        orders = await ctx.crm.list_orders(ctx.customer.id)
        if len(orders) == 1:
            return orders[0]
        return ToolOutcome(ctx.phrases.text("ask_order_id", ctx.language), awaiting="order_id")
    order = await ctx.crm.get_order(str(order_id))
    if order is None or order.customer_id != ctx.customer.id:
        # the same words whether the order does not exist or is someone else's
        ctx.fields.pop("order_id", None)
        return ToolOutcome(
            ctx.phrases.text("order_not_found", ctx.language, order_id=order_id), awaiting="order_id"
        )
    return order


async def _next_appointment(ctx: ToolContext) -> Appointment | None:
    live = (AppointmentStatus.BOOKED, AppointmentStatus.CONFIRMED)
    upcoming = [
        a
        for a in await ctx.crm.list_appointments(ctx.customer.id)
        if a.status in live and a.starts_at > ctx.now
    ]
    return min(upcoming, key=lambda a: a.starts_at) if upcoming else None


def _requested_time(ctx: ToolContext) -> datetime | ToolOutcome:
    opening, closing = ctx.working_hours
    raw = ctx.fields.get("datetime")
    if not raw:
        return ToolOutcome(
            ctx.phrases.text("ask_datetime", ctx.language, open=opening, close=closing), awaiting="datetime"
        )
    when = datetime.fromisoformat(str(raw))
    if when.tzinfo is None:
        when = when.replace(tzinfo=ctx.timezone)
    local = when.astimezone(ctx.timezone)
    if (
        local.weekday() >= 5
        or not (opening <= local.hour < closing)
        or when <= ctx.now
        or when > ctx.now + timedelta(days=180)
    ):
        ctx.fields.pop("datetime", None)
        return ToolOutcome(
            ctx.phrases.text(
                "slot_unavailable", ctx.language, when=_when(ctx, when), open=opening, close=closing
            ),
            awaiting="datetime",
        )
    return when


def _when(ctx: ToolContext, moment: datetime) -> str:
    return format_when(moment, ctx.language, ctx.timezone)
