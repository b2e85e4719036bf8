"""aiosqlite's connection API, run on the calling thread instead of a worker thread.

SQLAlchemy's aiosqlite dialect sends every statement to aiosqlite's thread and back: one event-loop
round trip per statement. Under load each round trip waits behind everything else the loop has to
do, while the transaction keeps SQLite's write lock, so a five-statement exchange holds the lock
for five loop turns. SQLite work itself takes microseconds (WAL, synchronous=NORMAL), so running
it inline on the loop costs less than handing it off. `Database` uses this for SQLite files.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Generator
from typing import Any

import aiosqlite


class InlineSQLiteConnection(aiosqlite.Connection):
    def __init__(self, path: str) -> None:
        # isolation_level=None: we emit BEGIN / BEGIN IMMEDIATE ourselves (see db.py)
        super().__init__(
            lambda: sqlite3.connect(path, isolation_level=None, check_same_thread=False), iter_chunk_size=64
        )

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._connection is None:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    async def _connect(self) -> InlineSQLiteConnection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    def __await__(self) -> Generator[Any, None, InlineSQLiteConnection]:
        return self._connect().__await__()

    def stop(self) -> None:
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def close(self) -> None:
        self.stop()


def inline_sqlite_creator(path: str) -> Callable[[], Any]:
    async def create() -> InlineSQLiteConnection:
        return await InlineSQLiteConnection(path)

    return create
