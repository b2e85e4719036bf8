"""Rules every CRM adapter applies the same way: contact normalisation and appointment moves."""

from __future__ import annotations

import logging

import phonenumbers

from voicebot.crm.base import AppointmentStatus
from voicebot.errors import ConflictError, InputError

logger = logging.getLogger("voicebot.crm")

FINAL_ORDER_STATUSES = frozenset({"delivered", "cancelled", "returned"})
_APPOINTMENT_MOVES = {
    AppointmentStatus.BOOKED: {AppointmentStatus.CONFIRMED, AppointmentStatus.CANCELLED},
    AppointmentStatus.CONFIRMED: {AppointmentStatus.CANCELLED},
    AppointmentStatus.CANCELLED: set(),
    AppointmentStatus.RESCHEDULED: set(),
}


def normalise_phone(raw: str, default_region: str = "SI") -> str | None:
    """``raw`` in E.164 (``+38640111222``), or None when it is not a possible phone number."""
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(raw: str) -> str:
    return raw.strip().lower()


def appointment_transition(old: AppointmentStatus, new: AppointmentStatus) -> AppointmentStatus:
    """booked -> confirmed | cancelled; confirmed -> cancelled; cancelled and rescheduled are final.
    RESCHEDULED is set only by rescheduling. Staying put is a no-op."""
    if old == new:
        return new
    if new is AppointmentStatus.RESCHEDULED:
        raise InputError("use reschedule_appointment to move an appointment")
    if new not in _APPOINTMENT_MOVES[old]:
        raise ConflictError(f"an appointment cannot move from {old.value} to {new.value}")
    logger.debug("appointment %s -> %s", old.value, new.value)
    return new
