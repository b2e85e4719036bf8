"""The database seam: one async SQLAlchemy engine, migrated to head on start.

``Database(url)`` accepts any SQLAlchemy async URL; the two supported are
``sqlite+aiosqlite:///path/to/file.db`` (the embedded default) and
``postgresql+asyncpg://user@host:port/db``.

SQLite connections get ``journal_mode=WAL``, ``synchronous=NORMAL``, ``foreign_keys=ON`` and a
``busy_timeout`` so concurrent writers wait instead of failing. PostgreSQL migrations hold an
advisory lock, so several processes may start at once.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, make_url, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from voicebot.errors import ConflictError
from voicebot.storage._common import json_dumps, json_loads
from voicebot.storage.sqlite_inline import InlineSQLiteConnection, inline_sqlite_creator

logger = logging.getLogger("voicebot.storage")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 5000
_PG_MIGRATION_LOCK = 0x766F6963  # "voic": one advisory lock id for every voicebot process


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic config for our migrations; with ``connection``, env.py runs on it."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _upgrade_to_head(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    command.upgrade(alembic_config(connection), "head")


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # The driver's implicit BEGIN is DEFERRED: a transaction that reads and then writes fails with
    # SQLITE_BUSY when another process wrote in between. We emit BEGIN IMMEDIATE ourselves.
    if not isinstance(getattr(dbapi_connection, "_connection", None), InlineSQLiteConnection):
        dbapi_connection.isolation_level = None  # (inline connections are created that way)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


READ_ONLY = "voicebot_read_only"


def _sqlite_begin(connection: Connection) -> None:
    # Writers take the write lock up front (waiting in the busy handler); readers take a snapshot.
    if connection.get_execution_options().get(READ_ONLY):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """Owns the engine. ``start()`` connects and migrates; ``stop()`` disposes every connection."""

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        migrate: bool = True,
        connect_args: dict[str, Any] | None = None,
    ) -> None:
        self.url = url
        self._parsed = make_url(url)
        self._echo = echo
        self._migrate = migrate
        self._connect_args = dict(connect_args or {})
        self._engine: AsyncEngine | None = None
        self._reader: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._parsed.get_backend_name()

    @property
    def engine(self) -> AsyncEngine:
        """For transactions that write (``engine.begin()``)."""
        if self._engine is None:
            raise ConflictError("the database is not started")
        return self._engine

    @property
    def reader(self) -> AsyncEngine:
        """For read-only work (``reader.connect()``): on SQLite it does not take the write lock."""
        if self._reader is None:
            self._reader = self.engine.execution_options(**{READ_ONLY: True})
        return self._reader

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        if self._sessions is None:
            raise ConflictError("the database is not started")
        return self._sessions

    @property
    def started(self) -> bool:
        return self._engine is not None

    async def start(self) -> None:
        if self._engine is not None:
            return
        kwargs: dict[str, Any] = {
            "echo": self._echo,
            "connect_args": self._connect_args,
            "json_serializer": json_dumps,
            "json_deserializer": json_loads,
        }
        if self.dialect == "sqlite":
            database = self._parsed.database or ""
            kwargs["pool_reset_on_return"] = None  # Connection.close() already rolls back; saves a hop
            if database in ("", ":memory:") or database.startswith("file::memory:"):
                kwargs["poolclass"] = StaticPool  # one shared connection, or each sees its own empty DB
            else:
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
                # One connection per process: SQLite has one writer anyway, and waiting for the
                # pool is a queue, where a second connection would wait in SQLite's sleeping
                # busy handler. Code must never hold two connections at once.
                kwargs["pool_size"] = 1
                kwargs["max_overflow"] = 0
                kwargs["async_creator"] = inline_sqlite_creator(str(Path(database).expanduser()))
        else:
            kwargs["pool_pre_ping"] = True
        engine = create_async_engine(self.url, **kwargs)
        if self.dialect == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(engine.sync_engine, "begin", _sqlite_begin)
        try:
            if self._migrate:
                async with engine.begin() as conn:
                    await conn.run_sync(_upgrade_to_head)
        except BaseException:
            await engine.dispose()
            raise
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        logger.info("database started (%s)", self._parsed.render_as_string(hide_password=True))

    async def stop(self) -> None:
        engine, self._engine, self._sessions, self._reader = self._engine, None, None, None
        if engine is not None:
            await engine.dispose()
            logger.info("database stopped")

    async def __aenter__(self) -> Database:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
