"""The campaign engine on a real database (SQLite, and PostgreSQL where it runs), with a fake Dialer
at the seam and an injected clock: nothing waits for real time."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from tests.conftest import fresh_pg_database
from voicebot.outbound.campaign_config import CampaignDefinition, load_campaign
from voicebot.outbound.contacts import import_contacts
from voicebot.outbound.engine import (
    AttemptRunner,
    CallReport,
    CallRequest,
    CampaignScheduler,
    LocalQueue,
)
from voicebot.outbound.schedule import Outcome
from voicebot.storage import Database
from voicebot.storage.campaigns import CampaignRepository
from voicebot.storage.records import CampaignStatus, ContactStatus

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
    """The injected clock; sleeping moves it on."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FakeDialer:
    def __init__(self, script: dict[str, list[Outcome]], clock: Clock) -> None:
        self.script = script
        self.clock = clock
        self.calls: list[tuple[str, int, datetime]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.dnc_requests: set[str] = set()
        self.lines_free = True

    def has_line(self) -> bool:
        return self.lines_free

    async def call(self, request: CallRequest) -> CallReport:
        self.calls.append((request.contact.phone, request.attempt.attempt, self.clock()))
        await request.on_answered()
        await self.release.wait()
        outcome = self.script[request.contact.phone].pop(0)
        return CallReport(
            outcome,
            transcript=[{"role": "bot", "text": "hello"}],
            result={"decision": outcome.value},
            dnc_requested=request.contact.phone in self.dnc_requests,
        )


@pytest_asyncio.fixture
async def repo(tmp_path: Path) -> AsyncIterator[CampaignRepository]:
    async with Database(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}") as db:
        yield CampaignRepository(db)


async def running_campaign(repo: CampaignRepository, definition: CampaignDefinition, csv: str = CSV) -> str:
    imported = import_contacts(csv, default_timezone="Europe/Ljubljana")
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


def engine(
    repo: CampaignRepository, dialer: FakeDialer, clock: Clock, *, lease_s: float = 30.0
) -> tuple[CampaignScheduler, LocalQueue, AttemptRunner]:
    runner = AttemptRunner(repo, "demo", dialer, clock=clock, sleep=clock.sleep, lease_s=lease_s)
    queue = LocalQueue(runner)
    return CampaignScheduler(repo, "demo", queue, clock=clock, lease_s=lease_s), queue, runner


async def run_to_end(scheduler: CampaignScheduler, queue: LocalQueue, clock: Clock, campaign: str) -> None:
    repo = scheduler.repo
    for _ in range(500):
        await scheduler.tick()
        await queue.drain()
        if (await repo.get(campaign)).status is CampaignStatus.COMPLETED:
            return
        clock.now += timedelta(minutes=5)
    raise AssertionError("the campaign did not complete")


async def test_a_campaign_runs_to_the_end_within_its_rules(repo: CampaignRepository) -> None:
    definition = DEFINITION.model_copy(update={"max_concurrent_calls": 2, "calls_per_second": 2.0})
    campaign = await running_campaign(repo, definition)
    await repo.dnc_add("demo", "+38640111003", MONDAY_10)
    clock = Clock(MONDAY_10)
    dialer = FakeDialer(
        {
            "+38640111001": [Outcome.CONFIRMED],
            "+38640111002": [Outcome.BUSY, Outcome.RESCHEDULED],
            "+12125550123": [Outcome.CONFIRMED],
        },
        clock,
    )
    scheduler, queue, runner = engine(repo, dialer, clock)
    await run_to_end(scheduler, queue, clock, campaign)
    outcomes = {c.phone: (c.outcome, c.attempts) for c in await repo.contacts(campaign)}
    assert outcomes == {
        "+38640111001": ("confirmed", 1),
        "+38640111002": ("rescheduled", 2),
        "+38640111003": ("dnc", 1),
        "+12125550123": ("confirmed", 1),
    }
    assert "+38640111003" not in [phone for phone, _, _ in dialer.calls]  # never dialled
    assert len({(p, a) for p, a, _ in dialer.calls}) == len(dialer.calls)  # no attempt twice
    assert runner.max_active <= 2
    attempts = await repo.attempts(campaign)
    first, second = attempts[0].planned_at, attempts[1].planned_at
    assert second - first == timedelta(seconds=0.5)  # paced at 2 calls per second
    assert all(a.started_at >= a.planned_at for a in attempts if a.started_at)
    assert [(a.phone, a.attempt, a.outcome) for a in attempts if a.phone == "+38640111002"] == [
        ("+38640111002", 1, "busy"),
        ("+38640111002", 2, "rescheduled"),
    ]
    made = [a for a in attempts if a.outcome != "dnc"]
    assert all(a.started_at and a.answered_at and a.ended_at and a.transcript for a in made)
    (dnc,) = [a for a in attempts if a.outcome == "dnc"]
    assert dnc.started_at is None and dnc.detail == "on the do-not-call list"
    (ana,) = [c for c in await repo.contacts(campaign) if c.phone == "+38640111001"]
    assert ana.result == {"decision": "confirmed"}


async def test_new_york_is_called_in_its_own_window(repo: CampaignRepository) -> None:
    campaign = await running_campaign(repo, DEFINITION)
    clock = Clock(MONDAY_10)
    phones = ("+38640111001", "+38640111002", "+38640111003", "+12125550123")
    dialer = FakeDialer({p: [Outcome.CONFIRMED] for p in phones}, clock)
    scheduler, queue, _ = engine(repo, dialer, clock)
    for _ in range(3):
        await scheduler.tick()
        await queue.drain()
    assert [p for p, _, _ in dialer.calls] == ["+38640111001", "+38640111002", "+38640111003"]
    (waiting,) = await repo.contacts(campaign, status=ContactStatus.PENDING)
    assert waiting.phone == "+12125550123" and waiting.attempts == 0
    assert waiting.next_due_at == datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # 09:00 in New York
    assert all(a.phone != "+12125550123" for a in await repo.attempts(campaign))  # given back unmade


async def test_a_crashed_call_is_failed_after_its_lease_and_retried_under_a_new_number(
    repo: CampaignRepository,
) -> None:
    campaign = await running_campaign(repo, DEFINITION)
    clock = Clock(MONDAY_10)
    dialer = FakeDialer({p: [Outcome.CONFIRMED] for p in ("+38640111001",)}, clock)
    dialer.release.clear()  # the call hangs: the "process" dies with it
    scheduler, queue, _ = engine(repo, dialer, clock, lease_s=30)
    (attempt,) = await repo.plan_due(campaign, clock(), lease_s=30, horizon_s=0)
    task = asyncio.create_task(queue.runner.run(attempt.id))
    while not dialer.calls:
        await asyncio.sleep(0)
    task.cancel()  # kill -9: nothing recorded, the lease is not renewed any more
    await asyncio.gather(task, return_exceptions=True)

    clock.now += timedelta(seconds=10)
    assert await scheduler.recover() == 0  # the lease still runs: maybe a live call elsewhere
    clock.now += timedelta(seconds=60)
    assert await scheduler.recover() == 1
    contact = await repo.contact(attempt.contact_id)
    assert contact.status is ContactStatus.PENDING and contact.outcome == "failed" and contact.attempts == 1
    assert contact.next_due_at == clock.now + timedelta(minutes=30)  # the delay after 'failed'
    (dead,) = await repo.attempts(campaign, contact_id=attempt.contact_id)
    assert dead.outcome == "failed" and "lease" in (dead.detail or "")
    assert await queue.runner.run(attempt.id) is None  # a second delivery of the job dials nothing


async def test_a_job_delivered_twice_dials_once(repo: CampaignRepository) -> None:
    campaign = await running_campaign(repo, DEFINITION)
    clock = Clock(MONDAY_10)
    dialer = FakeDialer({"+38640111001": [Outcome.CONFIRMED, Outcome.CONFIRMED]}, clock)
    _, _, runner = engine(repo, dialer, clock)
    (attempt,) = await repo.plan_due(campaign, clock(), lease_s=30, horizon_s=0)
    reports = await asyncio.gather(runner.run(attempt.id), runner.run(attempt.id))
    assert sorted(r is None for r in reports) == [False, True]
    assert len(dialer.calls) == 1


async def test_pausing_gives_planned_attempts_back(repo: CampaignRepository) -> None:
    campaign = await running_campaign(repo, DEFINITION.model_copy(update={"calls_per_second": 0.5}))
    clock = Clock(MONDAY_10)
    dialer = FakeDialer({}, clock)
    scheduler, _queue, runner = engine(repo, dialer, clock)
    planned = await repo.plan_due(campaign, clock(), lease_s=30, horizon_s=5)
    assert len(planned) == 3  # at 0, 2 and 4 s; the 6 s slot is beyond the horizon
    await repo.set_status(campaign, CampaignStatus.PAUSED, clock())
    for attempt in planned:
        assert await runner.run(attempt.id) is None
    assert dialer.calls == [] and await repo.attempts(campaign) == []
    assert {c.attempts for c in await repo.contacts(campaign)} == {0}
    assert await scheduler.tick() == 0  # paused: nothing planned


async def test_consent_and_a_request_not_to_be_called(repo: CampaignRepository) -> None:
    definition = DEFINITION.model_copy(update={"consent_required": True})
    csv = "phone,name,consent\n+38640111001,Ana,yes\n+38640111002,Bor,no\n+38640111003,Cene,\n"
    campaign = await running_campaign(repo, definition, csv)
    clock = Clock(MONDAY_10)
    dialer = FakeDialer({"+38640111001": [Outcome.DECLINED]}, clock)
    dialer.dnc_requests.add("+38640111001")
    scheduler, queue, _ = engine(repo, dialer, clock)
    await run_to_end(scheduler, queue, clock, campaign)
    assert [p for p, _, _ in dialer.calls] == ["+38640111001"]
    details = {a.phone: (a.outcome, a.detail) for a in await repo.attempts(campaign)}
    assert details["+38640111002"] == ("dnc", "consent withdrawn")
    assert details["+38640111003"] == ("dnc", "no consent on record")
    assert await repo.on_dnc("demo", "+38640111001")  # asked in the call: never again, any campaign


async def test_calls_never_exceed_the_lines_while_they_last(repo: CampaignRepository) -> None:
    csv = "phone\n" + "".join(f"+3864011{i:04d}\n" for i in range(12))
    definition = DEFINITION.model_copy(update={"max_concurrent_calls": 3, "calls_per_second": 100.0})
    campaign = await running_campaign(repo, definition, csv)
    clock = Clock(MONDAY_10)
    dialer = FakeDialer({f"+3864011{i:04d}": [Outcome.CONFIRMED] for i in range(12)}, clock)
    dialer.release.clear()  # calls stay up
    scheduler, queue, runner = engine(repo, dialer, clock)
    assert await scheduler.tick() == 3
    for _ in range(5):
        await asyncio.sleep(0)
    assert await scheduler.tick() == 0  # every line busy
    dialer.release.set()
    await queue.drain()
    await run_to_end(scheduler, queue, clock, campaign)
    assert runner.max_active <= 3 and len(dialer.calls) == 12


async def two_processes_share_a_campaign(url: str) -> None:
    """Two schedulers with their own runners on one database, ticking concurrently: every contact is
    called exactly once and the lines are never over-booked across both."""
    csv = "phone\n" + "".join(f"+3864022{i:04d}\n" for i in range(40))
    definition = DEFINITION.model_copy(update={"max_concurrent_calls": 4, "calls_per_second": 100.0})
    async with Database(url) as db_a, Database(url) as db_b:
        repo_a, repo_b = CampaignRepository(db_a), CampaignRepository(db_b)
        campaign = await running_campaign(repo_a, definition, csv)
        clock = Clock(MONDAY_10)
        dialer = FakeDialer({f"+3864022{i:04d}": [Outcome.CONFIRMED] for i in range(40)}, clock)
        live = 0
        peak = 0
        plain_call = dialer.call

        async def counted(request: CallRequest) -> CallReport:
            nonlocal live, peak
            live += 1
            peak = max(peak, live)
            await asyncio.sleep(0.01)
            try:
                return await plain_call(request)
            finally:
                live -= 1

        dialer.call = counted  # type: ignore[method-assign]
        engines = [engine(repo_a, dialer, clock), engine(repo_b, dialer, clock)]
        for _ in range(400):
            await asyncio.gather(*(s.tick() for s, _, _ in engines))
            await asyncio.sleep(0.005)
            if (await repo_a.get(campaign)).status is CampaignStatus.COMPLETED:
                break
        for _, queue, _ in engines:
            await queue.drain()
        phones = [p for p, _, _ in dialer.calls]
        assert sorted(phones) == sorted(set(phones)) and len(phones) == 40
        assert peak <= 4
        assert {c.outcome for c in await repo_a.contacts(campaign)} == {"confirmed"}


async def test_two_processes_share_a_campaign_on_sqlite(tmp_path: Path) -> None:
    await two_processes_share_a_campaign(f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}")


async def test_two_processes_share_a_campaign_on_postgresql() -> None:
    async with fresh_pg_database() as url:
        await two_processes_share_a_campaign(url)


@pytest.mark.parametrize("horizon", [0.0, 1.0])
async def test_planning_is_paced_across_ticks(repo: CampaignRepository, horizon: float) -> None:
    csv = "phone\n" + "".join(f"+3864033{i:04d}\n" for i in range(10))
    campaign = await running_campaign(repo, DEFINITION.model_copy(update={"calls_per_second": 4.0}), csv)
    first = await repo.plan_due(campaign, MONDAY_10, lease_s=30, horizon_s=horizon)
    second = await repo.plan_due(campaign, MONDAY_10, lease_s=30, horizon_s=horizon)
    slots = [a.planned_at for a in first + second]
    assert slots == sorted(slots) and len(set(slots)) == len(slots)
    assert all(b - a == timedelta(seconds=0.25) for a, b in itertools.pairwise(slots))
    assert slots[-1] <= MONDAY_10 + timedelta(seconds=horizon + 0.25)


async def test_a_full_process_gives_the_attempt_back_unspent(repo: CampaignRepository) -> None:
    campaign = await running_campaign(repo, DEFINITION)
    clock = Clock(MONDAY_10)
    dialer = FakeDialer({"+38640111001": [Outcome.CONFIRMED]}, clock)
    dialer.lines_free = False
    _, _, runner = engine(repo, dialer, clock)
    (attempt,) = await repo.plan_due(campaign, clock(), lease_s=30, horizon_s=0)
    assert await runner.run(attempt.id) is None and dialer.calls == []
    contact = await repo.contact(attempt.contact_id)
    assert contact.attempts == 0 and contact.next_due_at == clock() + timedelta(seconds=1)
    assert await repo.attempts(campaign) == []


async def test_a_closed_window_takes_no_paced_slot(repo: CampaignRepository) -> None:
    # New York is asleep at Monday 10:00 in Ljubljana; listed first, it must not delay Ana
    csv = "phone,name,timezone\n+12125550123,Dan,America/New_York\n+38640111001,Ana,Europe/Ljubljana\n"
    campaign = await running_campaign(repo, DEFINITION.model_copy(update={"calls_per_second": 0.5}), csv)
    clock = Clock(MONDAY_10)
    dialer = FakeDialer({"+38640111001": [Outcome.CONFIRMED]}, clock)
    scheduler, queue, _ = engine(repo, dialer, clock)
    assert await scheduler.tick() == 1
    (attempt,) = await repo.attempts(campaign)
    assert attempt.phone == "+38640111001" and attempt.planned_at == MONDAY_10  # the first slot
    (dan,) = [c for c in await repo.contacts(campaign) if c.phone == "+12125550123"]
    assert dan.attempts == 0 and dan.next_due_at == datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
    await queue.drain()
