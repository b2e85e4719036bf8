"""Test databases: a SQLite file under tmp_path, and PostgreSQL in a fresh schema when reachable.

The PostgreSQL variant runs in its own schema (``search_path``) and drops it afterwards, so
parallel runs and other test suites on the same server never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from voicebot.storage import Database

PG_URL = os.environ.get("VOICEBOT_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]

_pg_reachable: bool | None = None


def _raw_pg_dsn() -> str:
    return PG_URL.replace("postgresql+asyncpg://", "postgresql://", 1)


async def pg_reachable() -> bool:
    """Whether the PostgreSQL server answers (asked once per test session)."""
    global _pg_reachable
    if _pg_reachable is None:
        import asyncpg

        try:
            conn = await asyncpg.connect(_raw_pg_dsn(), timeout=2)
        except (TimeoutError, OSError, asyncpg.PostgresError):
            _pg_reachable = False
        else:
            await conn.close()
            _pg_reachable = True
    return _pg_reachable


@asynccontextmanager
async def pg_schema() -> AsyncIterator[str]:
    import asyncpg

    schema = f"t_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(_raw_pg_dsn(), timeout=5)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield schema
        finally:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await conn.close()


@asynccontextmanager
async def open_database(backend: str, tmp_path: Path) -> AsyncIterator[Database]:
    """A started, migrated Database on ``backend``; stopped (engine disposed) afterwards."""
    if backend == "sqlite":
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'db' / 'voicebot.db'}")
        await db.start()
        try:
            yield db
        finally:
            await db.stop()
        return
    if not await pg_reachable():
        pytest.skip(f"PostgreSQL is not reachable at {PG_URL}")
    async with pg_schema() as schema:
        db = Database(PG_URL, connect_args={"server_settings": {"search_path": schema}})
        await db.start()
        try:
            yield db
        finally:
            await db.stop()
