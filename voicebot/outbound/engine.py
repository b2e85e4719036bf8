"""The campaign engine: places due attempts within the campaign's limits and records their outcomes.

One ``tick`` claims the contacts whose attempt is due (never more than the free call slots), and for
each: a number on the do-not-call list ends ``dnc`` without a call; outside the contact's calling
window the claim is given back, due at the window's next opening; otherwise the call is started
through the ``Dialer`` seam, no faster than ``calls_per_second``. When a call ends, the outcome is
recorded with the next step from :func:`voicebot.outbound.schedule.after_attempt`. ``recover``
(at start) treats attempts left mid-call by a crash as ``failed``, so they are retried and never
repeated under the same attempt number. Time and sleeping are injected.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

from voicebot.outbound.campaign_config import CampaignDefinition, in_calling_window, next_window_start
from voicebot.outbound.schedule import Outcome, after_attempt
from voicebot.storage.campaigns import CampaignRepository
from voicebot.storage.records import CampaignContactRecord, CampaignStatus

log = logging.getLogger(__name__)


class Dialer(Protocol):
    async def call(self, contact: CampaignContactRecord, definition: CampaignDefinition) -> Outcome:
        """Place one call and hold the conversation; how it ended."""


class CampaignEngine:
    def __init__(
        self,
        repo: CampaignRepository,
        tenant_id: str,
        dialer: Dialer,
        *,
        clock: Callable[[], datetime],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.repo = repo
        self.tenant_id = tenant_id
        self.dialer = dialer
        self.clock = clock
        self.sleep = sleep
        self.calls: set[asyncio.Task[None]] = set()
        self.max_seen_concurrent = 0

    async def recover(self, campaign_id: str, definition: CampaignDefinition) -> int:
        """Attempts a crash left mid-call count as ``failed``; how many."""
        stuck = await self.repo.in_progress(campaign_id)
        for contact in stuck:
            await self._record(contact, definition, Outcome.FAILED)
        return len(stuck)

    async def tick(self, campaign_id: str) -> int:
        """Start the calls that are due now (within the limits); how many were started."""
        campaign = await self.repo.get(campaign_id)
        if campaign.status is not CampaignStatus.RUNNING:
            return 0
        definition = CampaignDefinition.model_validate(campaign.definition)
        free = definition.max_concurrent_calls - len(self.calls)
        if free <= 0:
            return 0
        started = 0
        for contact in await self.repo.claim_due(campaign_id, self.clock(), free):
            now = self.clock()
            if await self.repo.on_dnc(self.tenant_id, contact.phone, campaign_id):
                await self.repo.record_attempt(
                    contact.id, attempt=contact.attempts, outcome=Outcome.DNC.value, next_due_at=None, now=now
                )
                continue
            window = definition.calling_window
            if not in_calling_window(window, now, contact.timezone):
                due = next_window_start(window, now, contact.timezone)
                await self.repo.release(contact.id, attempt=contact.attempts, due_at=due, now=now)
                continue
            if started:
                await self.sleep(1.0 / definition.calls_per_second)
            task = asyncio.create_task(self._call(contact, definition))
            self.calls.add(task)
            task.add_done_callback(self.calls.discard)
            self.max_seen_concurrent = max(self.max_seen_concurrent, len(self.calls))
            started += 1
        return started

    async def _call(self, contact: CampaignContactRecord, definition: CampaignDefinition) -> None:
        try:
            outcome = await self.dialer.call(contact, definition)
        except Exception:
            log.exception("call to contact %s failed", contact.id)
            outcome = Outcome.FAILED
        await self._record(contact, definition, outcome)

    async def _record(
        self, contact: CampaignContactRecord, definition: CampaignDefinition, outcome: Outcome
    ) -> None:
        now = self.clock()
        step = after_attempt(definition, outcome, contact.attempts, now, contact.timezone)
        await self.repo.record_attempt(
            contact.id, attempt=contact.attempts, outcome=outcome.value, next_due_at=step.due_at, now=now
        )

    async def drain(self) -> None:
        """Wait for the calls in progress to end."""
        while self.calls:
            await asyncio.gather(*list(self.calls), return_exceptions=True)

    async def finish_if_done(self, campaign_id: str) -> bool:
        """Mark a running campaign ``completed`` once every contact ended; whether it is."""
        progress = await self.repo.progress(campaign_id)
        if set(progress["status"]) <= {"done"} and not self.calls:
            campaign = await self.repo.get(campaign_id)
            if campaign.status is CampaignStatus.RUNNING:
                await self.repo.set_status(campaign_id, CampaignStatus.COMPLETED, self.clock())
            return True
        return False
