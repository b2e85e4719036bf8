from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.crm.conftest import TENANT
from voicebot.crm.base import AppointmentStatus
from voicebot.crm.seed import DEMO_SEED, load_seed, parse_seed, resolve_datetime, resolve_day
from voicebot.crm.sql import SQLCRMAdapter
from voicebot.errors import ConfigError
from voicebot.storage import AuditRepository, Database, tables

LJUBLJANA = ZoneInfo("Europe/Ljubljana")


async def _counts(db: Database) -> dict[str, int]:
    out = {}
    async with db.engine.connect() as conn:
        for table in (tables.customers, tables.orders, tables.appointments, tables.invoices):
            out[table.name] = await conn.scalar(select(func.count()).select_from(table)) or 0
    return out


async def test_load_seed_is_idempotent(db: Database, now: datetime) -> None:
    first = await load_seed(db, TENANT, DEMO_SEED, now=now)
    counts = await _counts(db)
    assert counts == {"customers": 5, "orders": 4, "appointments": 3, "invoices": 4}
    crm = SQLCRMAdapter(db, TENANT, AuditRepository(db), lambda: now)
    await crm.update_delivery_address("A1001", "Elsewhere 1")
    await crm.book_appointment("C001", now + timedelta(days=3))

    later = now + timedelta(days=7)
    second = await load_seed(db, TENANT, DEMO_SEED, now=later)  # again, a week later
    counts = await _counts(db)
    assert counts == {"customers": 5, "orders": 4, "appointments": 4, "invoices": 4}  # + the booked one
    order = await crm.get_order("A1001")
    assert order is not None and order.delivery_address == "Slovenska cesta 1, 1000 Ljubljana"  # reset
    assert second.appointments[0].starts_at > first.appointments[0].starts_at
    ap = next(a for a in await crm.list_appointments("C001") if a.id == "AP1001")
    assert ap.starts_at == second.appointments[0].starts_at


async def test_two_tenants_share_seed_ids(db: Database, now: datetime) -> None:
    await load_seed(db, "one", DEMO_SEED, now=now)
    await load_seed(db, "two", DEMO_SEED, now=now)
    assert (await _counts(db))["customers"] == 10


def test_demo_records(now: datetime) -> None:
    data = parse_seed(DEMO_SEED, now=now)
    ana = data.customers[0]
    assert (ana.name, ana.phone, ana.email, ana.postcode, ana.birth_date, ana.language) == (
        "Ana Novak",
        "+38640111222",
        "ana.novak@example.com",
        "1000",
        date(1985, 3, 14),
        "sl",
    )
    john = next(c for c in data.customers if c.name == "John Smith")
    assert (john.phone, john.email, john.postcode, john.birth_date, john.language) == (
        "+447700900123",
        "john.smith@example.com",
        "SW1A 1AA",
        date(1990, 7, 2),
        "en",
    )
    orders = {o.id: o for o in data.orders}
    assert orders["A1001"].status == "shipped" and orders["A1001"].customer_id == ana.id
    assert (orders["A1002"].status, orders["A1003"].status) == ("processing", "delivered")
    assert {orders["A1002"].customer_id, orders["A1003"].customer_id} == {john.id}
    assert any(i.customer_id == ana.id and i.status == "open" for i in data.invoices)
    assert {i.status for i in data.invoices if i.customer_id == john.id} == {"paid", "overdue"}
    ap = next(a for a in data.appointments if a.customer_id == ana.id)
    assert ap.status is AppointmentStatus.BOOKED


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 3, 2, 8, 0, tzinfo=UTC), date(2026, 3, 3)),  # Monday -> Tuesday
        (datetime(2026, 3, 6, 8, 0, tzinfo=UTC), date(2026, 3, 9)),  # Friday -> Monday
        (datetime(2026, 3, 7, 12, 0, tzinfo=UTC), date(2026, 3, 9)),  # Saturday -> Monday
        (datetime(2026, 3, 8, 23, 30, tzinfo=UTC), date(2026, 3, 10)),  # already Monday in Ljubljana
    ],
)
def test_next_working_day_in_ljubljana(now: datetime, expected: date) -> None:
    at = resolve_datetime("next_working_day 10:00", now, LJUBLJANA)
    assert (at.date(), at.hour, at.minute, at.tzinfo) == (expected, 10, 0, LJUBLJANA)


def test_day_expressions() -> None:
    today = date(2026, 3, 6)  # Friday
    assert resolve_day("today", today) == today
    assert resolve_day("tomorrow", today) == date(2026, 3, 7)
    assert resolve_day("yesterday", today) == date(2026, 3, 5)
    assert resolve_day("today+14", today) == date(2026, 3, 20)
    assert resolve_day("today - 10", today) == date(2026, 2, 24)
    assert resolve_day("working_day+3", today) == date(2026, 3, 11)
    assert resolve_day("next_working_day+1", today) == date(2026, 3, 10)
    assert resolve_day("2026-12-24", today) == date(2026, 12, 24)
    for bad in ("someday", "working_day", "working_day-2", "next_working_day-1", "today+x", ""):
        with pytest.raises(ValueError):
            resolve_day(bad, today)


def test_datetime_expressions() -> None:
    now = datetime(2026, 3, 6, 15, 0, tzinfo=UTC)
    assert resolve_datetime("2026-03-10T09:30:00+01:00", now, LJUBLJANA) == datetime(
        2026, 3, 10, 8, 30, tzinfo=UTC
    )
    with pytest.raises(ValueError):
        resolve_datetime("2026-03-10T09:30:00", now, LJUBLJANA)  # naive
    with pytest.raises(ValueError):
        resolve_datetime("today 25:00", now, LJUBLJANA)


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
    st.integers(min_value=1, max_value=30),
)
def test_working_days_are_weekdays_after_today(now: datetime, n: int) -> None:
    today = now.astimezone(LJUBLJANA).date()
    nxt = resolve_day("next_working_day", today)
    assert nxt.weekday() < 5 and today < nxt <= today + timedelta(days=3)
    nth = resolve_day(f"working_day+{n}", today)
    assert nth.weekday() < 5
    weekdays_between = sum(
        (today + timedelta(days=d)).weekday() < 5 for d in range(1, (nth - today).days + 1)
    )
    assert weekdays_between == n


@given(st.text(max_size=30))
def test_day_parser_only_raises_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        resolve_day(text, date(2026, 3, 6))


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ("customers: {}", "customers"),
        ("customers:\n  - {id: C1}", "customers.0"),
        ("customers:\n  - {id: C1, name: A, phone: nope}", "customers.0"),
        ("customers:\n  - {id: C1, name: A}\n  - {id: C1, name: B}", "customers"),
        ("orders:\n  - {id: O1, customer_id: C9, status: x, delivery_address: y}", "orders.0.customer_id"),
        (
            "customers:\n  - {id: C1, name: A}\nappointments:\n  - {id: P, customer_id: C1, starts_at: soon}",
            "appointments.0",
        ),
        ("timezone: Mars/Olympus", "timezone"),
    ],
)
def test_seed_errors_name_file_and_field(tmp_path: Path, now: datetime, content: str, field: str) -> None:
    path = tmp_path / "seed.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        parse_seed(path, now=now)
    assert info.value.file == str(path) and info.value.field == field


def test_seed_file_errors(tmp_path: Path, now: datetime) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        parse_seed(tmp_path / "missing.yaml", now=now)
    (tmp_path / "bad.yaml").write_text("customers: [", encoding="utf-8")
    with pytest.raises(ConfigError, match="YAML"):
        parse_seed(tmp_path / "bad.yaml", now=now)
    (tmp_path / "list.yaml").write_text("- 1", encoding="utf-8")
    with pytest.raises(ConfigError, match="mapping"):
        parse_seed(tmp_path / "list.yaml", now=now)
