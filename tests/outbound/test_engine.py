"""The campaign engine on a real database, with a fake Dialer at the seam and an injected clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest_asyncio

from voicebot.outbound.campaign_config import CampaignDefinition, load_campaign
from voicebot.outbound.contacts import import_contacts
from voicebot.outbound.engine import CampaignEngine
from voicebot.outbound.schedule import Outcome
from voicebot.storage import Database
from voicebot.storage.campaigns import CampaignRepository
from voicebot.storage.records import CampaignContactRecord, CampaignStatus, ContactStatus

DEFINITION = load_campaign(
    Path(__file__).resolve().parents[2] / "campaigns" / "appointment-confirmation.yaml"
)
MONDAY_10 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # 10:00 in Ljubljana, 04:00 in New York
CSV = (
    "phone,name,timezone,date,time,location\n"
    "+38640111001,Ana,Europe/Ljubljana,2026-12-01,10:00,LJ\n"
    "+38640111002,Bor,Europe/Ljubljana,2026-12-01,11:00,LJ\n"
    "+38640111003,Cene,Europe/Ljubljana,2026-12-01,12:00,LJ\n"
    "+12125550123,Dan,America/New_York,2026-12-01,13:00,NY\n"
)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class FakeDialer:
    def __init__(self, script: dict[str, list[Outcome]]) -> None:
        self.script = script
        self.calls: list[tuple[str, int]] = []
        self.release = asyncio.Event()
        self.release.set()

    async def call(self, contact: CampaignContactRecord, definition: CampaignDefinition) -> Outcome:
        self.calls.append((contact.phone, contact.attempts))
        await self.release.wait()
        return self.script[contact.phone].pop(0)


@pytest_asyncio.fixture
async def repo(tmp_path: Path) -> AsyncIterator[CampaignRepository]:
    async with Database(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}") as db:
        yield CampaignRepository(db)


async def running_campaign(repo: CampaignRepository, definition: CampaignDefinition) -> str:
    imported = import_contacts(CSV, default_timezone="Europe/Ljubljana")
    record = await repo.create(
        tenant_id="demo",
        name="t",
        kind=definition.kind.value,
        definition=definition.model_dump(mode="json"),
        contacts=imported.contacts,
        now=MONDAY_10,
    )
    await repo.set_status(record.id, CampaignStatus.RUNNING, MONDAY_10)
    return record.id


async def no_sleep(_seconds: float) -> None:
    return None


async def test_a_campaign_runs_to_the_end_within_its_rules(repo: CampaignRepository) -> None:
    definition = DEFINITION.model_copy(update={"max_concurrent_calls": 2})
    campaign = await running_campaign(repo, definition)
    await repo.dnc_add("demo", "+38640111003", MONDAY_10)
    clock = Clock(MONDAY_10)
    dialer = FakeDialer(
        {
            "+38640111001": [Outcome.CONFIRMED],
            "+38640111002": [Outcome.BUSY, Outcome.RESCHEDULED],
            "+12125550123": [Outcome.CONFIRMED],
        }
    )
    engine = CampaignEngine(repo, "demo", dialer, clock=clock, sleep=no_sleep)
    for _ in range(200):
        await engine.tick(campaign)
        await engine.drain()
        if await engine.finish_if_done(campaign):
            break
        clock.now += timedelta(minutes=5)
    assert (await repo.get(campaign)).status is CampaignStatus.COMPLETED
    outcomes = {c.phone: (c.outcome, c.attempts) for c in await repo.contacts(campaign)}
    assert outcomes == {
        "+38640111001": ("confirmed", 1),
        "+38640111002": ("rescheduled", 2),
        "+38640111003": ("dnc", 1),
        "+12125550123": ("confirmed", 1),
    }
    assert "+38640111003" not in [phone for phone, _ in dialer.calls]  # never dialled
    assert len(dialer.calls) == len(set(dialer.calls))  # no attempt twice
    assert engine.max_seen_concurrent <= 2


async def test_new_york_is_called_in_its_own_window(repo: CampaignRepository) -> None:
    campaign = await running_campaign(repo, DEFINITION)
    clock = Clock(MONDAY_10)
    dialer = FakeDialer(
        {p: [Outcome.CONFIRMED] for p in ("+38640111001", "+38640111002", "+38640111003", "+12125550123")}
    )
    engine = CampaignEngine(repo, "demo", dialer, clock=clock, sleep=no_sleep)
    await engine.tick(campaign)
    await engine.drain()
    assert [p for p, _ in dialer.calls] == ["+38640111001", "+38640111002", "+38640111003"]
    (waiting,) = await repo.contacts(campaign, status=ContactStatus.PENDING)
    assert waiting.phone == "+12125550123" and waiting.attempts == 0
    assert waiting.next_due_at == datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # 09:00 in New York


async def test_an_attempt_left_by_a_crash_is_retried_under_a_new_number(repo: CampaignRepository) -> None:
    campaign = await running_campaign(repo, DEFINITION)
    crashed = await repo.claim_due(campaign, MONDAY_10, limit=1)  # the process dies mid-call
    clock = Clock(MONDAY_10 + timedelta(minutes=1))
    engine = CampaignEngine(repo, "demo", FakeDialer({}), clock=clock, sleep=no_sleep)
    assert await engine.recover(campaign, DEFINITION) == 1
    (contact,) = [c for c in await repo.contacts(campaign) if c.id == crashed[0].id]
    assert contact.status is ContactStatus.PENDING and contact.outcome == "failed" and contact.attempts == 1
    assert contact.next_due_at == clock.now + timedelta(minutes=30)  # the campaign's delay after 'failed'


async def test_a_paused_campaign_places_no_calls(repo: CampaignRepository) -> None:
    campaign = await running_campaign(repo, DEFINITION)
    await repo.set_status(campaign, CampaignStatus.PAUSED, MONDAY_10)
    dialer = FakeDialer({})
    engine = CampaignEngine(repo, "demo", dialer, clock=Clock(MONDAY_10), sleep=no_sleep)
    assert await engine.tick(campaign) == 0 and dialer.calls == []
