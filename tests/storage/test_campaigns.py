"""Campaigns, their contacts and the do-not-call list in the database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from voicebot.errors import ConflictError, NotFoundError
from voicebot.outbound.campaign_config import load_campaign
from voicebot.outbound.contacts import import_contacts
from voicebot.storage import Database
from voicebot.storage.campaigns import CampaignRepository
from voicebot.storage.records import CampaignStatus, ContactStatus

CAMPAIGNS = Path(__file__).resolve().parents[2] / "campaigns"
CSV = (
    "phone,name,date,time,location\n"
    "+38640111222,Ana Novak,2026-03-03,10:00,Ljubljana\n"
    "031 555 123,Marko,,,\n"
    "nope,Bad,,,\n"
)


async def test_a_campaign_is_stored_with_its_contacts_and_moves_by_its_rules(
    db: Database, now: datetime
) -> None:
    repo = CampaignRepository(db)
    definition = load_campaign(CAMPAIGNS / "appointment-confirmation.yaml")
    imported = import_contacts(CSV, default_region="SI", default_timezone="Europe/Ljubljana")
    assert [e.line for e in imported.errors] == [4]
    record = await repo.create(
        tenant_id="demo",
        name=definition.name,
        kind=definition.kind.value,
        definition=definition.model_dump(mode="json"),
        contacts=imported.contacts,
        now=now,
    )
    assert record.status is CampaignStatus.DRAFT
    again = await repo.get(record.id)
    assert again.definition["id"] == "appointment-confirmation" and again.kind == "appointment_confirmation"
    contacts = await repo.contacts(record.id)
    assert [c.phone for c in contacts] == ["+38640111222", "+38631555123"]
    assert contacts[0].variables["location"] == "Ljubljana" and contacts[0].source_line == 2
    assert all(c.status is ContactStatus.PENDING and c.next_due_at == now for c in contacts)
    assert await repo.progress(record.id) == {"status": {"pending": 2}, "outcomes": {}}
    running = await repo.set_status(record.id, CampaignStatus.RUNNING, now + timedelta(minutes=1))
    assert running.status is CampaignStatus.RUNNING
    await repo.set_status(record.id, CampaignStatus.PAUSED, now)
    await repo.set_status(record.id, CampaignStatus.STOPPED, now)
    with pytest.raises(ConflictError):
        await repo.set_status(record.id, CampaignStatus.RUNNING, now)
    assert [c.id for c in await repo.list("demo")] == [record.id] and await repo.list("other") == []
    with pytest.raises(NotFoundError):
        await repo.get("nope")


async def test_do_not_call_globally_and_per_campaign(db: Database, now: datetime) -> None:
    repo = CampaignRepository(db)
    await repo.dnc_add("demo", "+38640111222", now, reason="asked us not to call")
    await repo.dnc_add("demo", "+38640111222", now)  # again: no error, one entry
    await repo.dnc_add("demo", "+38631555123", now, scope="c1")
    assert await repo.on_dnc("demo", "+38640111222")
    assert await repo.on_dnc("demo", "+38640111222", "c2")
    assert await repo.on_dnc("demo", "+38631555123", "c1")
    assert not await repo.on_dnc("demo", "+38631555123", "c2")
    assert not await repo.on_dnc("other", "+38640111222")
    assert len(await repo.dnc_list("demo")) == 2
    assert await repo.dnc_remove("demo", "+38640111222")
    assert not await repo.dnc_remove("demo", "+38640111222")
    assert not await repo.on_dnc("demo", "+38640111222")


async def test_each_attempt_is_planned_once_dialled_once_and_recorded_once(
    db: Database, now: datetime
) -> None:
    repo = CampaignRepository(db)
    imported = import_contacts(CSV, default_region="SI", default_timezone="Europe/Ljubljana")
    record = await repo.create(
        tenant_id="demo",
        name="c",
        kind="appointment_confirmation",
        definition={"max_concurrent_calls": 5, "calls_per_second": 1.0},
        contacts=imported.contacts,
        now=now,
    )
    assert await repo.plan_due(record.id, now, lease_s=30) == []  # a draft plans nothing
    await repo.set_status(record.id, CampaignStatus.RUNNING, now)
    first = await repo.plan_due(record.id, now, lease_s=30, horizon_s=0)
    second = await repo.plan_due(record.id, now, lease_s=30, horizon_s=1)
    assert len(first) == 1 and len(second) == 1 and first[0].contact_id != second[0].contact_id
    assert second[0].planned_at == first[0].planned_at + timedelta(seconds=1)  # paced
    assert await repo.plan_due(record.id, now, lease_s=30, horizon_s=10) == []  # nothing planned twice
    attempt = first[0]
    contact = await repo.contact(attempt.contact_id)
    assert contact.status is ContactStatus.CALLING and contact.attempts == 1 == attempt.attempt
    assert await repo.begin_attempt(attempt.id, now, worker="w1", lease_s=30)
    assert not await repo.begin_attempt(attempt.id, now, worker="w2", lease_s=30)  # one licence
    later = now + timedelta(minutes=15)
    waiting = await repo.finish_attempt(attempt.id, outcome="busy", next_due_at=later, now=now)
    assert waiting.status is ContactStatus.PENDING and waiting.next_due_at == later
    with pytest.raises(ConflictError):
        await repo.finish_attempt(attempt.id, outcome="busy", next_due_at=later, now=now)
    assert await repo.plan_due(record.id, now + timedelta(seconds=5), lease_s=30) == []  # not due yet
    (again,) = await repo.plan_due(record.id, later, lease_s=30)
    assert again.contact_id == contact.id and again.attempt == 2
    assert await repo.begin_attempt(again.id, later, worker="w1", lease_s=30)
    done = await repo.finish_attempt(
        again.id, outcome="confirmed", next_due_at=None, now=later, result={"decision": "confirmed"}
    )
    assert done.status is ContactStatus.DONE and done.outcome == "confirmed"
    assert done.result == {"decision": "confirmed"}
    progress = await repo.progress(record.id)
    assert progress == {"status": {"calling": 1, "done": 1}, "outcomes": {"confirmed": 1}}
