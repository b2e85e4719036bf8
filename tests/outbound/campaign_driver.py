"""One campaign of one contact, run by the real engine (scheduler, local queue, attempt runner) through
any dialer until it completes: what the SIP and Twilio dialer tests share."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from voicebot.outbound.campaign_config import CampaignDefinition, load_campaign
from voicebot.outbound.contacts import import_contacts
from voicebot.outbound.engine import AfterCall, AttemptRunner, CampaignScheduler, Dialer, LocalQueue
from voicebot.storage.campaigns import CampaignRepository
from voicebot.storage.records import CampaignAttemptRecord, CampaignContactRecord, CampaignStatus

CAMPAIGNS = Path(__file__).resolve().parents[2] / "campaigns"
MONDAY_NOON = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)  # 12:00 in Ljubljana: inside every window

APPOINTMENT_CSV = (
    "phone,name,appointment_date,appointment_time,location,slot_1,slot_2\n"
    "+38640111001,Ana,1 December,10:00,Ljubljana,Tuesday at nine,Wednesday at two\n"
)


class RunningClock:
    """Monday noon, running at real speed from the test's start (windows judged at a known time)."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self) -> datetime:
        return MONDAY_NOON + timedelta(seconds=time.monotonic() - self.started)


def campaign(name: str, **changes: Any) -> CampaignDefinition:
    """campaigns/NAME.yaml with one attempt, a short ring timeout, and ``changes``."""
    data = load_campaign(CAMPAIGNS / f"{name}.yaml").model_dump(mode="json")
    data.update({"max_attempts": 1, "ring_timeout": 4, **changes})
    return CampaignDefinition.model_validate(data)


async def run_campaign(
    runtime: Any,
    dialer: Dialer,
    definition: CampaignDefinition,
    csv: str,
    *,
    after_call: AfterCall | None = None,
    timeout_s: float = 60.0,
) -> tuple[list[CampaignAttemptRecord], CampaignContactRecord]:
    """Create the campaign of the one contact in ``csv``, start it, and dial through ``dialer`` until
    the campaign completes (every attempt, retries included, has been run); its attempts and contact."""
    repo = CampaignRepository(runtime.db)
    clock = RunningClock()
    record = await repo.create(
        tenant_id=runtime.tenant.id,
        name=definition.name,
        kind=definition.kind.value,
        definition=definition.model_dump(mode="json"),
        contacts=import_contacts(csv, default_timezone="Europe/Ljubljana").contacts,
        now=clock(),
    )
    await repo.set_status(record.id, CampaignStatus.RUNNING, clock())
    runner = AttemptRunner(repo, runtime.tenant.id, dialer, clock=clock, after_call=after_call)
    queue = LocalQueue(runner)
    scheduler = CampaignScheduler(repo, runtime.tenant.id, queue, clock=clock)
    deadline = time.monotonic() + timeout_s
    while (await repo.get(record.id)).status is not CampaignStatus.COMPLETED:
        assert time.monotonic() < deadline, "the campaign did not complete"
        await scheduler.tick()
        await asyncio.sleep(0.1)
    await queue.drain()
    (contact,) = await repo.contacts(record.id)
    return await repo.attempts(record.id), contact
