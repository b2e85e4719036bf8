from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.fakes.crm import InMemoryCRM
from tests.storage.databases import open_database
from voicebot.crm.base import CRMAdapter
from voicebot.crm.seed import DEMO_SEED, load_seed
from voicebot.crm.sql import SQLCRMAdapter
from voicebot.storage import AuditRecord, AuditRepository, Database

NOW = datetime(2026, 3, 6, 15, 0, tzinfo=UTC)  # a Friday: the next working day is Monday 9 March
TENANT = "demo"


@dataclass
class CRMUnderTest:
    adapter: CRMAdapter
    db: Database | None = None

    async def audit_actions(self) -> list[str]:
        """Audit actions, oldest first, whichever backend."""
        if isinstance(self.adapter, InMemoryCRM):
            return [e.action for e in self.adapter.audit]
        assert self.db is not None
        records: list[AuditRecord] = await AuditRepository(self.db).list(TENANT, limit=1000)
        return [r.action for r in reversed(records)]


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def crm(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CRMUnderTest]:
    """The demo records behind every CRMAdapter implementation we ship or fake."""
    if request.param == "memory":
        yield CRMUnderTest(InMemoryCRM.demo(NOW))
        return
    async with open_database(request.param, tmp_path) as db:
        await load_seed(db, TENANT, DEMO_SEED, now=NOW)
        yield CRMUnderTest(SQLCRMAdapter(db, TENANT, AuditRepository(db), lambda: NOW), db)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with open_database(request.param, tmp_path) as database:
        yield database
