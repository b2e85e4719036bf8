"""The campaign service as ``voicebot serve`` runs it: the scheduler loop, the queue the database
calls for (local on SQLite, procrastinate on PostgreSQL), CRM write-back after each call; the
dialer is the fake at the seam."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import SESSION_LOOP, RuntimeFactory
from tests.outbound.test_engine import FakeDialer
from voicebot.config import Settings
from voicebot.outbound.campaign_config import CampaignDefinition, load_campaign
from voicebot.outbound.contacts import import_contacts
from voicebot.outbound.schedule import Outcome
from voicebot.outbound.service import CampaignService, uses_procrastinate
from voicebot.storage.records import CampaignStatus

ROOT = Path(__file__).resolve().parents[2]


class RealClock:
    def __call__(self) -> datetime:
        return datetime.now(UTC)


def always_open() -> CampaignDefinition:
    data = load_campaign(ROOT / "campaigns" / "appointment-confirmation.yaml").model_dump(mode="json")
    data["calling_window"] = {
        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        "start": "00:00",
        "end": "23:59",
    }
    data |= {"max_concurrent_calls": 3, "calls_per_second": 20}
    return CampaignDefinition.model_validate(data)


@pytest.mark.parametrize(
    ("queue", "url", "expected"),
    [
        ("auto", "sqlite+aiosqlite:///x.db", False),
        ("auto", "postgresql+asyncpg://u@127.0.0.1/db", True),
        ("local", "postgresql+asyncpg://u@127.0.0.1/db", False),
        ("procrastinate", "postgresql+asyncpg://u@127.0.0.1/db", True),
    ],
)
def test_the_queue_follows_the_database(queue: str, url: str, expected: bool) -> None:
    assert uses_procrastinate(Settings(campaign_queue=queue), url) is expected  # type: ignore[arg-type]


@SESSION_LOOP
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_the_service_works_a_campaign_to_the_end(make_runtime: RuntimeFactory, backend: str) -> None:
    runtime = await make_runtime(backend, campaign_tick_secs=0.05)
    # Ana (+38640111222) is a CRM customer: her confirmation leaves a note
    csv = "phone,name\n+38640111222,Ana\n+38640111333,Marko\n+38640111444,Eva\n"
    dialer = FakeDialer(
        {
            "+38640111222": [Outcome.CONFIRMED],
            "+38640111333": [Outcome.CANCELLED],
            "+38640111444": [Outcome.DECLINED],
        },
        RealClock(),  # type: ignore[arg-type]
    )
    service = CampaignService(runtime, dialer, runtime.settings)
    assert service.queue_name == ("procrastinate" if backend == "postgresql" else "local")
    definition = always_open()
    record = await service.repo.create(
        tenant_id=runtime.tenant.id,
        name="t",
        kind=definition.kind.value,
        definition=definition.model_dump(mode="json"),
        contacts=import_contacts(csv, default_timezone="Europe/Ljubljana").contacts,
        now=datetime.now(UTC),
    )
    await service.repo.set_status(record.id, CampaignStatus.RUNNING, datetime.now(UTC))
    await service.start()
    try:
        deadline = time.monotonic() + 60
        while (await service.repo.get(record.id)).status is not CampaignStatus.COMPLETED:
            assert time.monotonic() < deadline, "the campaign did not complete"
            await asyncio.sleep(0.05)
        status = service.status()
    finally:
        await service.stop()
    assert sorted(p for p, _, _ in dialer.calls) == ["+38640111222", "+38640111333", "+38640111444"]
    assert {c.phone: c.outcome for c in await service.repo.contacts(record.id)} == {
        "+38640111222": "confirmed",
        "+38640111333": "cancelled",
        "+38640111444": "declined",
    }
    assert status["queue"] == service.queue_name and status["ticks"] > 0
    notes = await runtime.audit.recent_actions(runtime.tenant.id, "note.added", 10)
    assert len(notes) == 1  # the CRM write-back: Ana is a customer; Marko and Eva are not
