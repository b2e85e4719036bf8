"""The campaign job queue on PostgreSQL: procrastinate (https://procrastinate.readthedocs.io).

Why procrastinate on PostgreSQL rather than arq on Redis: the campaign's state (contacts,
attempts, leases) already lives in PostgreSQL, so the queue needs no second system to run, back up
or keep consistent with it; its jobs are rows taken with ``FOR UPDATE SKIP LOCKED`` and woken by
LISTEN/NOTIFY, so several ``voicebot serve`` processes on several machines share the calls with no
broker; and a queueing lock per attempt keeps a job from being put on the queue twice. The queue
only carries "make attempt N"; what makes a call happen at most once is the attempt row
(``begin_attempt``), so a job delivered again after a worker died dials nothing.

Each process both schedules (plans due attempts and defers one job each) and works (runs jobs with
``AttemptRunner.run``). The procrastinate schema is applied on first start, under an advisory lock
so processes starting together do not race.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import procrastinate
import psycopg
from procrastinate.exceptions import AlreadyEnqueued

from voicebot.outbound.engine import AttemptRunner
from voicebot.storage.records import CampaignAttemptRecord

log = logging.getLogger(__name__)

QUEUE = "voicebot-campaign-calls"
TASK = "voicebot.campaign.place_call"
_SCHEMA_LOCK = 0x766F6963  # "voic": one process applies procrastinate's schema


def psycopg_conninfo(database_url: str) -> str:
    """``postgresql+asyncpg://u@h:5432/db`` (SQLAlchemy) -> ``postgresql://u@h:5432/db`` (libpq)."""
    scheme, sep, rest = database_url.partition("://")
    if not sep or not scheme.startswith(("postgresql", "postgres")):
        raise ValueError(f"not a PostgreSQL URL: {database_url.split('@')[-1]}")
    return f"postgresql://{rest}"


async def ensure_schema(conninfo: str) -> bool:
    """Apply procrastinate's schema unless it is there; True when it was applied now."""
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK,))
        try:
            cursor = await conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
            row = await cursor.fetchone()
            if row and row[0]:
                return False
            app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))
            async with app.open_async():
                await app.schema_manager.apply_schema_async()
            log.info("campaign queue: procrastinate schema applied")
            return True
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))


class ProcrastinateQueue:
    def __init__(self, database_url: str, runner: AttemptRunner, *, concurrency: int) -> None:
        self.conninfo = psycopg_conninfo(database_url)
        self.concurrency = concurrency
        self.app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(conninfo=self.conninfo, min_size=1, max_size=4)
        )

        @self.app.task(name=TASK, queue=QUEUE)
        async def place_call(attempt_id: int) -> None:
            await runner.run(attempt_id)

        self._task = place_call
        self._worker: asyncio.Task[Any] | None = None

    async def start(self) -> None:
        await ensure_schema(self.conninfo)
        await self.app.open_async()
        self._worker = asyncio.create_task(
            self.app.run_worker_async(
                queues=[QUEUE],
                concurrency=self.concurrency,
                install_signal_handlers=False,
                delete_jobs="successful",
                fetch_job_polling_interval=1.0,
                shutdown_graceful_timeout=5.0,
            ),
            name="campaign-queue-worker",
        )

    async def enqueue(self, attempt: CampaignAttemptRecord) -> None:
        # the runner waits for the attempt's slot itself: planning looks at most a few seconds
        # ahead, and a job scheduled for later would only be seen at the next poll
        with contextlib.suppress(AlreadyEnqueued):
            await self._task.configure(queueing_lock=f"attempt-{attempt.id}").defer_async(
                attempt_id=attempt.id
            )

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._worker
            self._worker = None
        with contextlib.suppress(Exception):
            await self.app.close_async()
