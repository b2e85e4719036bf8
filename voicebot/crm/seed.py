"""Demo CRM records from YAML, loaded idempotently (upsert by id) into the SQL adapter's tables.

Dates and times in the file may be relative to ``now`` so the demo always has a fresh appointment
and an invoice that is (not yet) due. In the file's ``timezone`` (default Europe/Ljubljana):

    day:       today | tomorrow | yesterday | next_working_day | today+N | today-N
               | working_day+N (the Nth Monday-to-Friday day after today) | YYYY-MM-DD
    datetime:  "<day> HH:MM"  or an ISO 8601 datetime with offset

``next_working_day`` is ``working_day+1``: the first Monday-to-Friday day after today.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from voicebot.crm.base import Appointment, AppointmentStatus, Customer, Invoice, Order
from voicebot.crm.rules import normalise_phone
from voicebot.errors import ConfigError
from voicebot.storage import tables
from voicebot.storage.db import Database

DEMO_SEED = Path(__file__).resolve().parent.parent / "demo" / "crm_seed.yaml"
DEFAULT_TIMEZONE = "Europe/Ljubljana"

_DAY = re.compile(r"^(today|tomorrow|yesterday|next_working_day|working_day)\s*(?:([+-])\s*(\d{1,4}))?$")


def resolve_day(expr: str, today: date) -> date:
    """A day expression (see the module docstring) relative to ``today``. ValueError if invalid."""
    text = expr.strip().lower()
    match = _DAY.match(text)
    if match is None:
        return date.fromisoformat(text)
    word, sign, digits = match.groups()
    offset = int(digits or 0) * (-1 if sign == "-" else 1)
    if word == "next_working_day":
        word, offset = "working_day", 1 + offset  # next_working_day+N == working_day+(N+1)
    if word == "working_day":
        if offset < 1:
            raise ValueError(f"{expr!r}: working days count forwards (+N, N >= 1)")
        return _add_working_days(today, offset)
    base = {"today": 0, "tomorrow": 1, "yesterday": -1}[word]
    return today + timedelta(days=base + offset)


def _add_working_days(day: date, count: int) -> date:
    while count > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            count -= 1
    return day


def resolve_datetime(expr: str, now: datetime, tz: ZoneInfo) -> datetime:
    """``"<day> HH:MM"`` in ``tz``, or an ISO datetime with an offset. ValueError if invalid."""
    text = str(expr).strip()
    day_part, _, clock = text.rpartition(" ")
    if day_part and re.fullmatch(r"\d{1,2}:\d{2}", clock):
        day = resolve_day(day_part, now.astimezone(tz).date())
        hour, minute = (int(p) for p in clock.split(":"))
        return datetime.combine(day, time(hour, minute), tzinfo=tz)
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError("an ISO datetime needs an offset (or use '<day> HH:MM')")
    return value


@dataclass(frozen=True, slots=True)
class SeedData:
    customers: tuple[Customer, ...]
    orders: tuple[Order, ...]
    appointments: tuple[Appointment, ...]
    invoices: tuple[Invoice, ...]


class _Reader:
    """Reads one section's items, naming file and field in every error."""

    def __init__(self, path: Path, now: datetime, tz: ZoneInfo) -> None:
        self.path, self.now, self.tz = path, now, tz
        self.today = now.astimezone(tz).date()

    def items(
        self, raw: dict[str, Any], section: str, build: Callable[[dict[str, Any], str], Any]
    ) -> tuple[Any, ...]:
        entries = raw.get(section)
        entries = [] if entries is None else entries
        if not isinstance(entries, list):
            raise ConfigError("must be a list", file=str(self.path), field=section)
        out = []
        for i, entry in enumerate(entries):
            where = f"{section}.{i}"
            if not isinstance(entry, dict):
                raise ConfigError("must be a mapping", file=str(self.path), field=where)
            try:
                out.append(build(entry, where))
            except KeyError as exc:
                raise ConfigError(f"missing {exc.args[0]!r}", file=str(self.path), field=where) from exc
            except (ValueError, TypeError, InvalidOperation) as exc:
                raise ConfigError(str(exc) or "invalid value", file=str(self.path), field=where) from exc
        ids = [item.id for item in out]
        if len(set(ids)) != len(ids):
            raise ConfigError("duplicate ids", file=str(self.path), field=section)
        return tuple(out)

    def day(self, value: Any) -> date:
        return value if isinstance(value, date) else resolve_day(str(value), self.today)

    def moment(self, value: Any) -> datetime:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError("datetimes need an offset")
            return value
        return resolve_datetime(str(value), self.now, self.tz)

    def customer(self, e: dict[str, Any], where: str) -> Customer:
        phone = e.get("phone")
        e164 = normalise_phone(str(phone)) if phone else None
        if phone and e164 is None:
            raise ValueError(f"{phone!r} is not a phone number")
        return Customer(
            id=str(e["id"]),
            name=str(e["name"]),
            phone=e164,
            email=e.get("email"),
            postcode=str(e["postcode"]) if e.get("postcode") is not None else None,
            birth_date=self.day(e["birth_date"]) if e.get("birth_date") else None,
            language=e.get("language"),
        )

    def order(self, e: dict[str, Any], where: str) -> Order:
        return Order(
            id=str(e["id"]),
            customer_id=str(e["customer_id"]),
            status=str(e["status"]),
            delivery_address=str(e["delivery_address"]),
            items=tuple(str(i) for i in e.get("items") or ()),
            total=Decimal(str(e["total"])) if e.get("total") is not None else None,
            currency=str(e.get("currency", "EUR")),
            updated_at=self.moment(e["updated_at"]) if e.get("updated_at") else None,
            tracking_url=e.get("tracking_url"),
        )

    def appointment(self, e: dict[str, Any], where: str) -> Appointment:
        return Appointment(
            id=str(e["id"]),
            customer_id=str(e["customer_id"]),
            starts_at=self.moment(e["starts_at"]),
            status=AppointmentStatus(e.get("status", "booked")),
            service=str(e.get("service", "")),
            location=str(e.get("location", "")),
        )

    def invoice(self, e: dict[str, Any], where: str) -> Invoice:
        return Invoice(
            id=str(e["id"]),
            customer_id=str(e["customer_id"]),
            amount=Decimal(str(e["amount"])),
            currency=str(e.get("currency", "EUR")),
            due_date=self.day(e["due_date"]),
            status=str(e["status"]),
            paid_at=self.moment(e["paid_at"]) if e.get("paid_at") else None,
        )


def parse_seed(path: Path | str, now: datetime) -> SeedData:
    """Read and resolve a seed file; errors are ConfigError naming the file and the field."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise ConfigError("the file does not exist", file=str(path)) from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid YAML: {exc}", file=str(path)) from exc
    if not isinstance(raw, dict):
        raise ConfigError("the top level must be a mapping", file=str(path))
    try:
        tz = ZoneInfo(str(raw.get("timezone", DEFAULT_TIMEZONE)))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError("unknown time zone", file=str(path), field="timezone") from exc
    reader = _Reader(path, now, tz)
    data = SeedData(
        customers=reader.items(raw, "customers", reader.customer),
        orders=reader.items(raw, "orders", reader.order),
        appointments=reader.items(raw, "appointments", reader.appointment),
        invoices=reader.items(raw, "invoices", reader.invoice),
    )
    known = {c.id for c in data.customers}
    for section in ("orders", "appointments", "invoices"):
        for i, item in enumerate(getattr(data, section)):
            if item.customer_id not in known:
                raise ConfigError(
                    f"unknown customer {item.customer_id!r}",
                    file=str(path),
                    field=f"{section}.{i}.customer_id",
                )
    return data


def _rows(tenant_id: str, records: tuple[Any, ...]) -> list[dict[str, Any]]:
    rows = []
    for record in records:
        row: dict[str, Any] = {"tenant_id": tenant_id}
        for name in record.__slots__:
            value = getattr(record, name)
            row[name] = list(value) if isinstance(value, tuple) else value
        rows.append(row)
    return rows


async def load_seed(db: Database, tenant_id: str, path: Path | str, now: datetime) -> SeedData:
    """Upsert the seed's records by id (running it twice changes nothing). One transaction."""
    data = parse_seed(path, now=now)
    insert = pg_insert if db.dialect == "postgresql" else sqlite_insert
    plan: list[tuple[Table, tuple[Any, ...]]] = [
        (tables.customers, data.customers),
        (tables.orders, data.orders),
        (tables.appointments, data.appointments),
        (tables.invoices, data.invoices),
    ]
    async with db.engine.begin() as conn:
        for table, records in plan:
            if not records:
                continue
            statement = insert(table)
            keys = {c.name for c in table.primary_key.columns}
            statement = statement.on_conflict_do_update(
                index_elements=sorted(keys),
                set_={c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys},
            )
            await conn.execute(statement, _rows(tenant_id, records))
    return data
