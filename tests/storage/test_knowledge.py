from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from voicebot.errors import ConflictError, InputError
from voicebot.storage import Database, KnowledgeRepository, PassageRecord
from voicebot.storage.knowledge import content_hash


def passage(
    pid: str, source: str, *, approved: bool = True, text: str = "Returns within 30 days."
) -> PassageRecord:
    return PassageRecord(
        id=pid,
        source=source,
        title=f"Title {pid}",
        text=text,
        language="en",
        tags=("returns",),
        approved=approved,
        questions=("Can I return it?",),
    )


async def test_replace_and_list(db: Database, now: datetime) -> None:
    repo = KnowledgeRepository(db)
    stored = await repo.replace(
        "demo",
        [passage("faq#1", "faq.md"), passage("faq#2", "faq.md", approved=False), passage("p#1", "prices.md")],
        sources=None,
        now=now,
    )
    assert stored == 3
    approved = await repo.list("demo")
    assert [p.id for p in approved] == ["faq#1", "p#1"]
    assert approved[0].tags == ("returns",) and approved[0].questions == ("Can I return it?",)
    assert approved[0].content_hash == content_hash("Returns within 30 days.")
    assert approved[0].updated_at == now
    assert [p.id for p in await repo.list("demo", approved_only=False)] == ["faq#1", "faq#2", "p#1"]
    assert await repo.list("other") == []


async def test_replace_only_named_sources(db: Database, now: datetime) -> None:
    repo = KnowledgeRepository(db)
    await repo.replace(
        "demo", [passage("faq#1", "faq.md"), passage("p#1", "prices.md")], sources=None, now=now
    )
    await repo.replace("other", [passage("faq#1", "faq.md")], sources=None, now=now)  # same id, other tenant
    later = now + timedelta(hours=1)
    count = await repo.replace(
        "demo", [passage("faq#9", "faq.md", text="New")], sources=["faq.md"], now=later
    )
    assert count == 1
    rows = {p.id: p for p in await repo.list("demo")}
    assert set(rows) == {"faq#9", "p#1"}
    assert rows["faq#9"].updated_at == later and rows["p#1"].updated_at == now
    assert [p.id for p in await repo.list("other")] == ["faq#1"]
    assert await repo.replace("demo", [], sources=None, now=later) == 0
    assert await repo.list("demo") == []


async def test_duplicate_ids(db: Database, now: datetime) -> None:
    repo = KnowledgeRepository(db)
    with pytest.raises(InputError):
        await repo.replace("demo", [passage("a", "x.md"), passage("a", "x.md")], sources=None, now=now)
    await repo.replace("demo", [passage("a", "x.md")], sources=None, now=now)
    with pytest.raises(ConflictError):  # "a" belongs to x.md, which is not being replaced
        await repo.replace("demo", [passage("a", "y.md")], sources=["y.md"], now=now)
    assert [p.source for p in await repo.list("demo")] == ["x.md"]  # the transaction rolled back
