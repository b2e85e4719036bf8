"""Customer data: the CRMAdapter protocol (base), the built-in SQL adapter and a REST adapter."""

from voicebot.crm.base import (
    Appointment,
    AppointmentStatus,
    CRMAdapter,
    Customer,
    Invoice,
    Order,
    Ticket,
    to_jsonable,
)
from voicebot.crm.rest import RESTCRMAdapter
from voicebot.crm.rules import normalise_email, normalise_phone
from voicebot.crm.seed import DEMO_SEED, SeedData, load_seed, parse_seed
from voicebot.crm.sql import SQLCRMAdapter

__all__ = [
    "DEMO_SEED",
    "Appointment",
    "AppointmentStatus",
    "CRMAdapter",
    "Customer",
    "Invoice",
    "Order",
    "RESTCRMAdapter",
    "SQLCRMAdapter",
    "SeedData",
    "Ticket",
    "load_seed",
    "normalise_email",
    "normalise_phone",
    "parse_seed",
    "to_jsonable",
]
