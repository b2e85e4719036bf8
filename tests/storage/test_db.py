from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from voicebot.errors import ConflictError
from voicebot.storage import Database


async def test_sqlite_start_creates_folder_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "deeper" / "bot.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    assert db.dialect == "sqlite"
    await db.start()
    try:
        assert path.exists()
        async with db.engine.connect() as conn:
            assert (await conn.scalar(text("PRAGMA journal_mode"))) == "wal"
            assert (await conn.scalar(text("PRAGMA synchronous"))) == 1  # NORMAL
            assert (await conn.scalar(text("PRAGMA foreign_keys"))) == 1
            assert (await conn.scalar(text("PRAGMA busy_timeout"))) == 5000
            assert (await conn.scalar(text("SELECT version_num FROM alembic_version"))) == "0006"
    finally:
        await db.stop()


async def test_start_twice_and_restart_keep_schema(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    async with Database(url) as db:
        await db.start()  # no-op
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO audit_log (at, tenant_id, actor, action, details)"
                    " VALUES ('2026-01-01', 't', 'a', 'x', '{}')"
                )
            )
    # migrations already at head: nothing to do, rows kept
    async with Database(url) as db, db.engine.connect() as conn:
        assert (await conn.scalar(text("SELECT count(*) FROM audit_log"))) == 1


async def test_in_memory_sqlite_shares_one_connection() -> None:
    async with Database("sqlite+aiosqlite:///:memory:") as db, db.engine.connect() as conn:
        assert (await conn.scalar(text("SELECT count(*) FROM conversations"))) == 0


async def test_not_started_raises() -> None:
    db = Database("sqlite+aiosqlite:///:memory:")
    with pytest.raises(ConflictError):
        _ = db.engine
    with pytest.raises(ConflictError):
        _ = db.sessions
    await db.stop()  # stopping a stopped database is fine


async def test_sessions_work(db: Database) -> None:
    async with db.sessions() as session:
        assert (await session.scalar(text("SELECT 1"))) == 1
