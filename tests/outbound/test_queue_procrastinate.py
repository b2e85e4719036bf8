"""The campaign job queue on the real PostgreSQL server: procrastinate workers in two "processes"
(each its own database pool, queue worker, runner and scheduler) share one campaign."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from tests.conftest import fresh_pg_database
from tests.outbound.test_engine import DEFINITION, FakeDialer, running_campaign
from voicebot.outbound.campaign_config import CampaignDefinition
from voicebot.outbound.engine import AttemptRunner, CampaignScheduler
from voicebot.outbound.queue_procrastinate import ProcrastinateQueue, ensure_schema, psycopg_conninfo
from voicebot.outbound.schedule import Outcome
from voicebot.storage import Database
from voicebot.storage.campaigns import CampaignRepository
from voicebot.storage.records import CampaignStatus


class RealClock:
    def __call__(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def test_database_urls_become_libpq_conninfo() -> None:
    assert (
        psycopg_conninfo("postgresql+asyncpg://u:p@127.0.0.1:5432/db") == "postgresql://u:p@127.0.0.1:5432/db"
    )
    try:
        psycopg_conninfo("sqlite+aiosqlite:///x.db")
    except ValueError as exc:
        assert "not a PostgreSQL URL" in str(exc)
    else:
        raise AssertionError("a SQLite URL was accepted")


async def test_two_workers_share_a_campaign_through_procrastinate(tmp_path: Path) -> None:
    phones = [f"+3864044{i:04d}" for i in range(30)]
    csv = "phone\n" + "".join(f"{p}\n" for p in phones)
    data = DEFINITION.model_dump(mode="json")
    data |= {"max_concurrent_calls": 4, "calls_per_second": 50.0}
    data["calling_window"] = {
        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        "start": "00:00",
        "end": "23:59",
    }
    data["retry_delay"]["busy"] = 1
    fast = CampaignDefinition.model_validate(data)
    async with fresh_pg_database() as url:
        assert await ensure_schema(psycopg_conninfo(url))
        assert not await ensure_schema(psycopg_conninfo(url))  # applied once
        clock = RealClock()
        dialer = FakeDialer({p: [Outcome.BUSY, Outcome.CONFIRMED] for p in phones}, clock)  # type: ignore[arg-type]
        live = peak = 0
        plain_call = dialer.call

        async def counted(request):  # type: ignore[no-untyped-def]
            nonlocal live, peak
            live += 1
            peak = max(peak, live)
            try:
                await asyncio.sleep(0.02)
                return await plain_call(request)
            finally:
                live -= 1

        dialer.call = counted  # type: ignore[method-assign]
        async with Database(url) as db_a, Database(url) as db_b:
            repos = [CampaignRepository(db_a), CampaignRepository(db_b)]
            campaign = await running_campaign(repos[0], fast, csv)
            queues, schedulers = [], []
            for repo in repos:
                runner = AttemptRunner(repo, "demo", dialer, clock=clock, sleep=clock.sleep, lease_s=30)
                queue = ProcrastinateQueue(url, runner, concurrency=8)
                await queue.start()
                queues.append(queue)
                schedulers.append(CampaignScheduler(repo, "demo", queue, clock=clock, lease_s=30))
            try:
                for _ in range(600):
                    await asyncio.gather(*(s.tick() for s in schedulers))
                    if (await repos[0].get(campaign)).status is CampaignStatus.COMPLETED:
                        break
                    await asyncio.sleep(0.1)
            finally:
                for queue in queues:
                    await queue.close()
            assert (await repos[0].get(campaign)).status is CampaignStatus.COMPLETED
            attempts = await repos[0].attempts(campaign)
        calls = [(p, a) for p, a, _ in dialer.calls]
        assert len(calls) == len(set(calls)) == 60  # each contact: attempt 1 busy, attempt 2 confirmed
        assert peak <= 4
        assert {a.worker for a in attempts} and all(a.ended_at for a in attempts)
        async with await psycopg.AsyncConnection.connect(psycopg_conninfo(url)) as conn:
            cursor = await conn.execute("SELECT count(*) FROM procrastinate_jobs WHERE status = 'failed'")
            assert (await cursor.fetchone()) == (0,)
