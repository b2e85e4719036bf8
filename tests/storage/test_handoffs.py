from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.storage.test_conversations import exchange
from voicebot.errors import ConflictError, NotFoundError
from voicebot.storage import (
    ConversationRepository,
    ConversationStatus,
    Database,
    HandoffRecord,
    HandoffRepository,
    HandoffStatus,
)


async def handed_off(db: Database, now: datetime, tenant: str = "demo") -> tuple[str, HandoffRecord]:
    repo = ConversationRepository(db)
    conv = await repo.create(tenant_id=tenant, channel="chat", now=now)
    await repo.record_exchange(
        conv.id,
        now=now,
        **exchange(action="handoff"),
        handoff={
            "reason": "low_confidence",
            "summary": "Asked about a refund",
            "fields": {"order_id": "A1001"},
        },
    )
    handoffs = [h for h in await HandoffRepository(db).list(tenant) if h.conversation_id == conv.id]
    return conv.id, handoffs[0]


async def test_list_oldest_first_per_tenant(db: Database, now: datetime) -> None:
    _, first = await handed_off(db, now + timedelta(seconds=1))
    _, second = await handed_off(db, now + timedelta(seconds=2))
    await handed_off(db, now, tenant="other")
    repo = HandoffRepository(db)
    assert [h.id for h in await repo.list("demo")] == [first.id, second.id]
    assert await repo.list("demo", status="taken") == []
    assert first.context == {"fields": {"order_id": "A1001"}}
    assert await repo.get(first.id) == first


async def test_take_and_close_resolves_the_conversation(db: Database, now: datetime) -> None:
    conversation_id, handoff = await handed_off(db, now)
    repo = HandoffRepository(db)
    taken = await repo.take(handoff.id, "maja", now + timedelta(seconds=30))
    assert taken.status is HandoffStatus.TAKEN
    assert (taken.taken_by, taken.taken_at) == ("maja", now + timedelta(seconds=30))
    assert await repo.get(handoff.id) == taken
    assert await repo.take(handoff.id, "maja", now) == taken  # same agent again: no-op
    with pytest.raises(ConflictError, match="maja"):
        await repo.take(handoff.id, "tom", now)
    assert await repo.list("demo") == []
    assert [h.id for h in await repo.list("demo", status="taken")] == [handoff.id]

    closed = await repo.close(handoff.id, now + timedelta(minutes=5))
    assert closed.status is HandoffStatus.CLOSED and closed.closed_at == now + timedelta(minutes=5)
    assert await repo.get(handoff.id) == closed
    assert await repo.close(handoff.id, now) == closed  # closing twice: no-op
    with pytest.raises(ConflictError):
        await repo.take(handoff.id, "maja", now)
    conversation = await ConversationRepository(db).get(conversation_id)
    assert conversation.status is ConversationStatus.RESOLVED
    assert conversation.resolved_without_human is False


async def test_hand_back_reactivates(db: Database, now: datetime) -> None:
    conversation_id, handoff = await handed_off(db, now)
    back = await HandoffRepository(db).hand_back(handoff.id, now)
    assert back.status is HandoffStatus.CLOSED
    conversations = ConversationRepository(db)
    assert (await conversations.get(conversation_id)).status is ConversationStatus.ACTIVE
    # the bot can hand off again later: a new handoff row
    await conversations.record_exchange(conversation_id, now=now, **exchange(action="handoff"))
    assert len(await HandoffRepository(db).list("demo")) == 1


async def test_close_after_customer_left_keeps_ended(db: Database, now: datetime) -> None:
    conversation_id, handoff = await handed_off(db, now)
    await ConversationRepository(db).record_exchange(conversation_id, now=now, **exchange(action="end"))
    await HandoffRepository(db).close(handoff.id, now)
    assert (await ConversationRepository(db).get(conversation_id)).status is ConversationStatus.ENDED


async def test_unknown_handoff(db: Database, now: datetime) -> None:
    repo = HandoffRepository(db)
    with pytest.raises(NotFoundError):
        await repo.get("nope")
    with pytest.raises(NotFoundError):
        await repo.take("nope", "maja", now)
    with pytest.raises(NotFoundError):
        await repo.close("nope", now)
