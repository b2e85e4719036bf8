"""Running campaigns inside ``voicebot serve``: the scheduler loop, the job queue and the dialer.

Every process plans due attempts (``CampaignScheduler.tick`` every ``campaign_tick_secs``) and
works the queue. On SQLite the queue is local to each process (the workers of one ``voicebot
serve`` share the campaign through the database's planning lock); on PostgreSQL it is
procrastinate, shared by every process on the database. Either way an attempt whose process died
(``kill -9`` mid-call) is taken back once its lease runs out (``campaign_lease_secs``, renewed
while the call is up): it ends ``failed`` and the contact is called again under its next attempt
number. No process assumes it is alone, so a restart never mistakes another worker's live call
for a dead one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from voicebot.config import Settings
from voicebot.outbound.engine import AttemptRunner, CampaignScheduler, Dialer, LocalQueue
from voicebot.outbound.writeback import CrmWriteback
from voicebot.storage.campaigns import CampaignRepository

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def uses_procrastinate(settings: Settings, database_url: str) -> bool:
    if settings.campaign_queue == "auto":
        return database_url.startswith("postgresql")
    return settings.campaign_queue == "procrastinate"


class CampaignService:
    def __init__(self, runtime: Any, dialer: Dialer, settings: Settings) -> None:
        self.runtime = runtime
        self.settings = settings
        self.repo = CampaignRepository(runtime.db)
        tenant_id = runtime.tenant.id
        self.runner = AttemptRunner(
            self.repo,
            tenant_id,
            dialer,
            clock=_now,
            lease_s=settings.campaign_lease_secs,
            after_call=CrmWriteback(runtime.crm),
        )
        database_url = settings.resolved_database_url()
        self.queue: Any
        if uses_procrastinate(settings, database_url):
            from voicebot.outbound.queue_procrastinate import ProcrastinateQueue

            self.queue = ProcrastinateQueue(
                database_url, self.runner, concurrency=settings.campaign_concurrency
            )
            self.shared = True
        else:
            self.queue = LocalQueue(self.runner)
            self.shared = False
        self.scheduler = CampaignScheduler(
            self.repo, tenant_id, self.queue, clock=_now, lease_s=settings.campaign_lease_secs
        )
        self._loop: asyncio.Task[None] | None = None
        self.ticks = 0

    @property
    def queue_name(self) -> str:
        return "procrastinate" if self.shared else "local"

    async def start(self) -> None:
        if self.shared:
            await self.queue.start()
        self._loop = asyncio.create_task(self._run(), name="campaign-scheduler")
        log.info("campaigns: dialling with the %s queue", self.queue_name)

    async def _run(self) -> None:
        while True:
            try:
                await self.scheduler.tick()
                self.ticks += 1
            except asyncio.CancelledError:
                raise
            except Exception:  # a database hiccup must not stop the campaigns for good
                log.exception("campaign scheduler tick failed")
            await asyncio.sleep(self.settings.campaign_tick_secs)

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        await self.queue.close()

    def status(self) -> dict[str, Any]:
        return {
            "queue": self.queue_name,
            "calls_in_progress": self.runner.active,
            "max_calls_seen": self.runner.max_active,
            "ticks": self.ticks,
        }
