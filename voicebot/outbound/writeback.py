"""After a campaign call: its outcome written back to the customer data (the tenant's CRM seam).

The customer is the one the CRM finds by the contact's number. Appointment campaigns change the
appointment named by the contact's ``appointment_id`` variable (confirmed / cancelled; a new slot
is booked when the contact's ``slot_1_at``/``slot_2_at`` variables give its ISO start). Payment
reminders open a ticket for a promised date or an invoice to e-mail, so a person or the billing
system acts on it. Every answered call leaves a note with the outcome and the structured answers.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from voicebot.crm.base import AppointmentStatus, CRMAdapter
from voicebot.outbound.engine import CallReport, CallRequest
from voicebot.outbound.schedule import Outcome

log = logging.getLogger(__name__)

_NOTED = frozenset(
    {
        Outcome.CONFIRMED,
        Outcome.RESCHEDULED,
        Outcome.CANCELLED,
        Outcome.PROMISED_TO_PAY,
        Outcome.INVOICE_REQUESTED,
        Outcome.DECLINED,
        Outcome.SURVEY_COMPLETED,
        Outcome.HANDOFF,
    }
)


def note_text(request: CallRequest, report: CallReport) -> str:
    answers = ", ".join(f"{k}: {v}" for k, v in sorted(_flat(report.result).items()))
    text = f"Campaign '{request.definition.name}' call: {report.outcome.value}"
    return f"{text} ({answers})" if answers else text


def _flat(result: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in result.items():
        if isinstance(value, dict):
            flat |= {f"{key}.{k}": v for k, v in value.items()}
        else:
            flat[key] = value
    return flat


class CrmWriteback:
    def __init__(self, crm: CRMAdapter) -> None:
        self.crm = crm

    async def __call__(self, request: CallRequest, report: CallReport) -> None:
        if report.outcome not in _NOTED:
            return
        customer = await self.crm.find_customer_by_phone(request.contact.phone)
        if customer is None:
            log.info("campaign contact %s is not a known customer: nothing written back", request.contact.id)
            return
        variables = request.contact.variables
        if appointment_id := variables.get("appointment_id"):
            await self._appointment(str(appointment_id), variables, report)
        if report.outcome in (Outcome.PROMISED_TO_PAY, Outcome.INVOICE_REQUESTED):
            invoice = variables.get("invoice_number", "")
            subject = (
                f"Payment promised for invoice {invoice} by {report.result.get('promised_date')}"
                if report.outcome is Outcome.PROMISED_TO_PAY
                else f"E-mail invoice {invoice} to the customer"
            )
            await self.crm.create_ticket(
                customer.id, subject, note_text(request, report), dict(report.result)
            )
        await self.crm.add_note(customer.id, note_text(request, report))

    async def _appointment(self, appointment_id: str, variables: dict[str, Any], report: CallReport) -> None:
        if report.outcome is Outcome.CONFIRMED:
            await self.crm.set_appointment_status(appointment_id, AppointmentStatus.CONFIRMED)
        elif report.outcome is Outcome.CANCELLED:
            await self.crm.set_appointment_status(appointment_id, AppointmentStatus.CANCELLED)
        elif report.outcome is Outcome.RESCHEDULED:
            starts = _slot_start(variables, str(report.result.get("new_slot", "")))
            if starts is not None:
                await self.crm.reschedule_appointment(appointment_id, starts)


def _slot_start(variables: dict[str, Any], chosen: str) -> datetime | None:
    for n in (1, 2):
        if variables.get(f"slot_{n}") == chosen and (iso := variables.get(f"slot_{n}_at")):
            try:
                return datetime.fromisoformat(str(iso))
            except ValueError:
                log.warning("slot_%d_at is not an ISO date-time: %r", n, iso)
    return None
