"""The campaign engine: plans due attempts, makes each at most once, records how it ended.

Two halves, joined by a job queue so any number of processes (on any number of machines) share a
campaign:

* :class:`CampaignScheduler` (``tick``, in every process, safe to run concurrently) plans the
  attempts that are due within each running campaign's free lines and pace
  (``CampaignRepository.plan_due`` locks the campaign row) and puts one job per attempt on the
  queue. It also takes back attempts whose worker died: a lease that ran out means a planned
  attempt is given back, a dialled one ends ``failed`` (and is retried under a new number).
* :class:`AttemptRunner` (``run``, the job's body) waits for the attempt's start slot, checks the
  do-not-call list, consent and the contact's calling window right before dialling, takes the
  attempt's one licence to dial (``begin_attempt``), holds the lease while the ``Dialer`` makes
  the call, and records the outcome with the next step (``schedule.after_attempt``).

The database, not the queue, guarantees "never the same attempt twice": a job delivered twice, or
a late finisher of an attempt already taken as dead, is refused. Time and sleeping are injected.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from voicebot.errors import ConflictError
from voicebot.outbound.campaign_config import (
    CallingWindow,
    CampaignDefinition,
    in_calling_window,
    next_window_start,
)
from voicebot.outbound.schedule import Outcome, after_attempt
from voicebot.storage.campaigns import CampaignRepository
from voicebot.storage.records import (
    CampaignAttemptRecord,
    CampaignContactRecord,
    CampaignStatus,
    ContactStatus,
)

log = logging.getLogger(__name__)

DEFAULT_LEASE_SECS = 30.0


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class CallRequest:
    attempt: CampaignAttemptRecord
    contact: CampaignContactRecord
    definition: CampaignDefinition
    on_answered: Callable[[], Awaitable[None]]  # the dialer reports the answer (timings)


@dataclass
class CallReport:
    outcome: Outcome
    detail: str | None = None  # SIP status, hang-up reason, AMD verdict...
    call_id: str | None = None
    conversation_id: str | None = None
    transcript: list[dict[str, str]] = field(default_factory=list)  # [{"role", "text"}]
    result: dict[str, Any] = field(default_factory=dict)  # structured answers
    dnc_requested: bool = False  # the contact asked never to be called again


class Dialer(Protocol):
    def has_line(self) -> bool:
        """Whether a call could start now (this process's lines are not all taken)."""

    async def call(self, request: CallRequest) -> CallReport:
        """Place one call and hold the conversation; how it ended."""


class AttemptQueue(Protocol):
    async def enqueue(self, attempt: CampaignAttemptRecord) -> None:
        """Have ``AttemptRunner.run(attempt.id)`` run in some worker, from ``attempt.planned_at``."""


AfterCall = Callable[[CallRequest, CallReport], Awaitable[None]]


class AttemptRunner:
    def __init__(
        self,
        repo: CampaignRepository,
        tenant_id: str,
        dialer: Dialer,
        *,
        clock: Callable[[], datetime],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        lease_s: float = DEFAULT_LEASE_SECS,
        worker: str | None = None,
        after_call: AfterCall | None = None,
    ) -> None:
        self.repo = repo
        self.tenant_id = tenant_id
        self.dialer = dialer
        self.clock = clock
        self.sleep = sleep
        self.lease_s = lease_s
        self.worker = worker or worker_name()
        self.after_call = after_call
        self.active = 0  # calls being made by this runner now
        self.max_active = 0

    async def run(self, attempt_id: int) -> CallReport | None:
        """Make the attempt if it is still to be made; its report, or None when it was not made."""
        attempt = await self.repo.attempt(attempt_id)
        if attempt is None or attempt.started_at is not None or attempt.ended_at is not None:
            return None  # given back, or a second delivery of the job: never dial twice
        wait = (attempt.planned_at - self.clock()).total_seconds()
        if wait > 0:
            await self.sleep(wait)
        campaign = await self.repo.get(attempt.campaign_id)
        definition = CampaignDefinition.model_validate(campaign.definition)
        contact = await self.repo.contact(attempt.contact_id)
        now = self.clock()
        if campaign.status is not CampaignStatus.RUNNING or contact.status is not ContactStatus.CALLING:
            await self.repo.release_attempt(attempt.id, due_at=now, now=now)
            return None
        if reason := await self._not_to_call(contact, definition):
            report = CallReport(Outcome.DNC, detail=reason)
            await self._finish(attempt, contact, definition, report)
            return report
        if not in_calling_window(definition.calling_window, now, contact.timezone):
            due = next_window_start(definition.calling_window, now, contact.timezone)
            await self.repo.release_attempt(attempt.id, due_at=due, now=now)
            return None
        if not self.dialer.has_line():  # this process is full: not an attempt spent, try again soon
            await self.repo.release_attempt(attempt.id, due_at=now + timedelta(seconds=1), now=now)
            return None
        if not await self.repo.begin_attempt(attempt.id, now, worker=self.worker, lease_s=self.lease_s):
            return None
        return await self._call(attempt, contact, definition)

    async def _not_to_call(
        self, contact: CampaignContactRecord, definition: CampaignDefinition
    ) -> str | None:
        if await self.repo.on_dnc(self.tenant_id, contact.phone, contact.campaign_id):
            return "on the do-not-call list"
        if contact.consent is False:
            return "consent withdrawn"
        if definition.consent_required and contact.consent is not True:
            return "no consent on record"
        return None

    async def _call(
        self, attempt: CampaignAttemptRecord, contact: CampaignContactRecord, definition: CampaignDefinition
    ) -> CallReport:
        async def answered() -> None:
            await self.repo.mark_answered(attempt.id, self.clock())

        request = CallRequest(attempt, contact, definition, answered)
        keeper = asyncio.create_task(self._keep_lease(attempt.id), name=f"lease-{attempt.id}")
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            report = await self.dialer.call(request)
        except Exception as exc:
            log.exception("campaign call to contact %s failed", contact.id)
            report = CallReport(Outcome.FAILED, detail=f"error: {exc}")
        finally:
            self.active -= 1
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        await self._finish(attempt, contact, definition, report)
        if self.after_call is not None:
            try:
                await self.after_call(request, report)
            except Exception:  # a CRM that is down must not cost the campaign its bookkeeping
                log.exception("after-call step for contact %s failed", contact.id)
        return report

    async def _keep_lease(self, attempt_id: int) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            until = self.clock() + timedelta(seconds=self.lease_s)
            if not await self.repo.renew_lease(attempt_id, until):
                log.warning("attempt %s: the lease was lost while the call was up", attempt_id)
                return

    async def _finish(
        self,
        attempt: CampaignAttemptRecord,
        contact: CampaignContactRecord,
        definition: CampaignDefinition,
        report: CallReport,
    ) -> None:
        now = self.clock()
        step = after_attempt(definition, report.outcome, attempt.attempt, now, contact.timezone)
        try:
            await self.repo.finish_attempt(
                attempt.id,
                outcome=report.outcome.value,
                next_due_at=step.due_at,
                now=now,
                detail=report.detail,
                call_id=report.call_id,
                conversation_id=report.conversation_id,
                transcript=report.transcript or None,
                result=report.result or None,
            )
        except ConflictError:
            log.warning("attempt %s ended after it was taken as dead; its report is dropped", attempt.id)
            return
        if report.dnc_requested:
            await self.repo.dnc_add(
                self.tenant_id, contact.phone, now, reason=f"asked during a call of campaign {definition.id}"
            )


class CampaignScheduler:
    def __init__(
        self,
        repo: CampaignRepository,
        tenant_id: str,
        queue: AttemptQueue,
        *,
        clock: Callable[[], datetime],
        lease_s: float = DEFAULT_LEASE_SECS,
        horizon_s: float = 2.0,
    ) -> None:
        self.repo = repo
        self.tenant_id = tenant_id
        self.queue = queue
        self.clock = clock
        self.lease_s = lease_s
        self.horizon_s = horizon_s

    async def tick(self) -> int:
        """One round: take back dead attempts, plan and queue the due ones, complete finished
        campaigns. How many attempts were queued."""
        await self.recover()
        queued = 0
        for campaign in await self.repo.running(self.tenant_id):
            window = CampaignDefinition.model_validate(campaign.definition).calling_window
            now = self.clock()
            planned = await self.repo.plan_due(
                campaign.id,
                now,
                lease_s=self.lease_s,
                horizon_s=self.horizon_s,
                defer=functools.partial(_closed_until, window, now),
            )
            for attempt in planned:
                await self.queue.enqueue(attempt)
            queued += len(planned)
            if not planned:
                await self._complete_if_done(campaign.id)
        return queued

    async def recover(self) -> int:
        """Take back the attempts whose lease ran out (their process is gone); how many."""
        now = self.clock()
        lapsed = await self.repo.unfinished(lapsed_before=now, tenant_id=self.tenant_id)
        for attempt in lapsed:
            if attempt.started_at is None:
                await self.repo.release_attempt(attempt.id, due_at=now, now=now)
                continue
            campaign = await self.repo.get(attempt.campaign_id)
            definition = CampaignDefinition.model_validate(campaign.definition)
            contact = await self.repo.contact(attempt.contact_id)
            step = after_attempt(definition, Outcome.FAILED, attempt.attempt, now, contact.timezone)
            with contextlib.suppress(ConflictError):  # another process took it back first
                await self.repo.finish_attempt(
                    attempt.id,
                    outcome=Outcome.FAILED.value,
                    next_due_at=step.due_at,
                    now=now,
                    detail=f"left unfinished by worker {attempt.worker} (lease ran out)",
                )
                log.warning("attempt %s of contact %s left mid-call: failed", attempt.id, contact.id)
        return len(lapsed)

    async def _complete_if_done(self, campaign_id: str) -> None:
        progress = await self.repo.progress(campaign_id)
        if set(progress["status"]) <= {ContactStatus.DONE.value}:
            with contextlib.suppress(ConflictError):
                await self.repo.set_status(campaign_id, CampaignStatus.COMPLETED, self.clock())
                log.info("campaign %s completed", campaign_id)


def _closed_until(window: CallingWindow, now: datetime, contact: CampaignContactRecord) -> datetime | None:
    """Outside its window a contact waits for the opening, taking no paced slot meanwhile."""
    if in_calling_window(window, now, contact.timezone):
        return None
    return next_window_start(window, now, contact.timezone)


class LocalQueue:
    """The embedded default: attempts run as tasks of this process."""

    def __init__(self, runner: AttemptRunner) -> None:
        self.runner = runner
        self.tasks: set[asyncio.Task[Any]] = set()

    async def enqueue(self, attempt: CampaignAttemptRecord) -> None:
        task = asyncio.create_task(self.runner.run(attempt.id), name=f"campaign-attempt-{attempt.id}")
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("campaign attempt task failed", exc_info=exc)

    async def drain(self) -> None:
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*list(self.tasks), return_exceptions=True)
