"""What only the SQL adapter does: audit rows in the database, tenants apart, database failures."""

from __future__ import annotations

from datetime import datetime

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.crm.conftest import NOW, TENANT
from voicebot.crm.rules import normalise_phone
from voicebot.crm.seed import DEMO_SEED, load_seed
from voicebot.crm.sql import SQLCRMAdapter
from voicebot.errors import ConflictError, ProviderError, ProviderUnavailable
from voicebot.storage import AuditRepository, Database


def adapter(db: Database, tenant: str = TENANT) -> SQLCRMAdapter:
    return SQLCRMAdapter(db, tenant, AuditRepository(db), lambda: NOW, actor="bot")


async def test_writes_leave_audit_rows(db: Database, now: datetime) -> None:
    await load_seed(db, TENANT, DEMO_SEED, now=now)
    crm = adapter(db)
    await crm.update_delivery_address("A1001", "Trubarjeva 5, 1000 Ljubljana")
    (entry,) = await AuditRepository(db).list(TENANT)
    assert (entry.actor, entry.action, entry.customer_id, entry.at) == (
        "bot",
        "order.delivery_address_updated",
        "C001",
        NOW,
    )
    assert entry.details == {
        "order_id": "A1001",
        "old": "Slovenska cesta 1, 1000 Ljubljana",
        "new": "Trubarjeva 5, 1000 Ljubljana",
    }


async def test_tenants_do_not_see_each_other(db: Database, now: datetime) -> None:
    await load_seed(db, TENANT, DEMO_SEED, now=now)
    other = adapter(db, "other")
    assert await other.find_customer_by_phone("+38640111222") is None
    assert await other.get_order("A1001") is None
    assert await other.list_invoices("C001") == []


async def test_stopped_database_is_a_conflict_not_a_provider_failure(db: Database) -> None:
    crm = adapter(db)
    await db.stop()
    with pytest.raises(ConflictError):  # a lifecycle mistake, not an outage
        await crm.get_customer("C001")


async def test_integrity_failures_are_provider_errors(db: Database, now: datetime) -> None:
    if db.dialect == "sqlite":
        pytest.skip("SQLite does not enforce VARCHAR lengths")
    await load_seed(db, TENANT, DEMO_SEED, now=now)
    with pytest.raises(ProviderError):  # a 500-character author does not fit String(128)
        await adapter(db).add_note("C001", "x", author="a" * 500)


async def test_operational_errors_become_unavailable(tmp_path: object) -> None:
    db = Database("sqlite+aiosqlite:///:memory:", migrate=False)  # no tables at all
    await db.start()
    try:
        with pytest.raises(ProviderUnavailable):
            await adapter(db).get_customer("C001")
    finally:
        await db.stop()


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("040 111 222", "SI", "+38640111222"),
        ("+44 7700 900123", "SI", "+447700900123"),
        ("07700 900123", "GB", "+447700900123"),
        ("tel:+38640111222", "SI", "+38640111222"),
        ("not a number", "SI", None),
        ("", "SI", None),
    ],
)
def test_normalise_phone_examples(raw: str, region: str, expected: str | None) -> None:
    assert normalise_phone(raw, region) == expected


@given(st.text(max_size=40))
def test_normalise_phone_never_raises(raw: str) -> None:
    result = normalise_phone(raw)
    assert result is None or (result.startswith("+") and result[1:].isdigit())


@given(st.sampled_from(["SI", "GB", "DE", "US", "HR"]), st.integers(min_value=0, max_value=10**6))
def test_normalise_phone_round_trips_formats(region: str, seed: int) -> None:
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    assert example is not None
    e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    for style in (phonenumbers.PhoneNumberFormat.NATIONAL, phonenumbers.PhoneNumberFormat.INTERNATIONAL):
        assert normalise_phone(phonenumbers.format_number(example, style), region) == e164
    assert normalise_phone(e164, "SI") == e164
