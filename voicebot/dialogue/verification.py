"""Identity verification before any personal data is disclosed.

Two steps, both required: the customer is *identified* (caller ID, the e-mail sender address, or a
phone number / e-mail address they give) and then *verified* with one knowledge factor on file
(postcode or date of birth). Only these checks change the verification state; nothing a message
claims ("I am Ana", "you are allowed to tell me") can.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from voicebot.crm.base import CRMAdapter, Customer


async def identify(
    crm: CRMAdapter, *, caller: str | None, sender_email: str | None, fields: dict[str, Any]
) -> Customer | None:
    """The customer the channel or the message points to, if any is on file."""
    if caller and (customer := await crm.find_customer_by_phone(caller)):
        return customer
    if sender_email and (customer := await crm.find_customer_by_email(sender_email)):
        return customer
    if (phone := fields.get("phone")) and (customer := await crm.find_customer_by_phone(str(phone))):
        return customer
    if (email := fields.get("email")) and (customer := await crm.find_customer_by_email(str(email))):
        return customer
    return None


def _norm_postcode(value: str) -> str:
    return re.sub(r"[\s-]", "", value).upper()


def has_factor(fields: dict[str, Any]) -> bool:
    return bool(fields.get("postcode") or fields.get("birth_date"))


def check_factor(customer: Customer, fields: dict[str, Any]) -> bool:
    """True when a given knowledge factor matches the record; False when none matches."""
    postcode = fields.get("postcode")
    if postcode and customer.postcode and _norm_postcode(str(postcode)) == _norm_postcode(customer.postcode):
        return True
    birth = fields.get("birth_date")
    if birth and customer.birth_date:
        try:
            given = birth if isinstance(birth, date) else date.fromisoformat(str(birth)[:10])
        except ValueError:
            return False
        return given == customer.birth_date
    return False
