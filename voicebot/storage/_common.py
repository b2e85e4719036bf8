"""Small helpers shared by the repositories (private to voicebot.storage)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import orjson
from sqlalchemy import Insert, Table
from sqlalchemy.dialects import postgresql, sqlite

from voicebot.errors import InputError


def utc(now: datetime) -> datetime:
    """``now`` in UTC; naive datetimes are refused (time is injected, never guessed)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise InputError(f"naive datetime {now!r}: pass a timezone-aware value")
    return now.astimezone(UTC)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, datetime | date):  # orjson handles these; kept for subclasses
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_dumps(value: Any) -> str:
    """The engine's JSON serialiser: dates ISO, decimals as strings, enums by value."""
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_NON_STR_KEYS).decode()


def json_loads(value: str | bytes) -> Any:
    return orjson.loads(value)


def insert_ignoring_duplicates(dialect: str, table: Table, values: dict[str, Any]) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING for ``dialect`` ("sqlite" or "postgresql")."""
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table).values(values).on_conflict_do_nothing()
