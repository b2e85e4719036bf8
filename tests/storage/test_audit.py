from __future__ import annotations

from datetime import datetime, timedelta

from voicebot.storage import AuditRepository, Database


async def test_record_and_list_newest_first(db: Database, now: datetime) -> None:
    repo = AuditRepository(db)
    first = await repo.record(tenant_id="demo", actor="bot", action="order.viewed", now=now, customer_id="c1")
    second = await repo.record(
        tenant_id="demo",
        actor="agent:maja",
        action="address.updated",
        now=now + timedelta(seconds=1),
        customer_id="c2",
        conversation_id="conv-1",
        details={"order_id": "A1001", "address": "Slovenska cesta 2"},
    )
    await repo.record(tenant_id="other", actor="bot", action="x", now=now)
    assert first.id < second.id
    assert second.details == {"order_id": "A1001", "address": "Slovenska cesta 2"}
    assert await repo.list("demo") == [second, first]
    assert await repo.list("demo", limit=1) == [second]
    assert await repo.list("demo", customer_id="c1") == [first]
    assert first.at == now and first.details == {}
