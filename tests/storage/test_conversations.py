from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from voicebot.errors import ConflictError, InputError, NotFoundError
from voicebot.storage import (
    ConversationRepository,
    ConversationStatus,
    Database,
    HandoffRepository,
    HandoffStatus,
    TurnRole,
)


def exchange(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "customer_text": "Where is my order?",
        "bot_text": "Which order number?",
        "action": "clarify",
        "intent": "order_status",
        "confidence": 0.91,
        "citations": [],
        "reason": None,
        "state": {"awaiting": "order_id", "turn_count": 1},
        "language": "en",
        "customer_id": None,
        "latency_ms": 12.5,
    }
    values.update(overrides)
    return values


async def test_create_and_get(db: Database, now: datetime) -> None:
    repo = ConversationRepository(db)
    created = await repo.create(tenant_id="demo", channel="chat", now=now, email="a@example.com")
    assert len(created.id) == 32
    assert created.status is ConversationStatus.ACTIVE
    assert created.turn_count == 0 and created.state == {}
    fetched = await repo.get(created.id)
    assert fetched == created
    assert fetched.created_at.tzinfo is not None


async def test_create_with_given_id_twice_conflicts(db: Database, now: datetime) -> None:
    repo = ConversationRepository(db)
    await repo.create(
        tenant_id="demo", channel="voice", now=now, caller="+38640111222", conversation_id="call-1"
    )
    with pytest.raises(ConflictError):
        await repo.create(tenant_id="demo", channel="voice", now=now, conversation_id="call-1")


async def test_get_unknown(db: Database) -> None:
    with pytest.raises(NotFoundError):
        await ConversationRepository(db).get("nope")


async def test_naive_now_is_refused(db: Database) -> None:
    with pytest.raises(InputError):
        await ConversationRepository(db).create(tenant_id="demo", channel="chat", now=datetime(2026, 1, 1))


async def test_record_exchange_stores_both_turns_and_state(db: Database, now: datetime) -> None:
    repo = ConversationRepository(db)
    conv = await repo.create(tenant_id="demo", channel="chat", now=now)
    cites = [{"passage_id": "p1", "source": "faq.md", "title": "Returns", "text": "30 days", "score": 0.8}]
    later = now + timedelta(seconds=5)
    record = await repo.record_exchange(
        conv.id,
        now=later,
        **exchange(citations=cites, state={"when": later, "amount": Decimal("1.50")}),
    )
    assert record.turn_count == 2
    assert record.first_response_ms == 12.5
    assert record.language == "en"
    assert record.updated_at == later
    assert record.status is ConversationStatus.ACTIVE
    stored = await repo.get(conv.id)
    assert stored.turn_count == 2 and stored.first_response_ms == 12.5
    assert stored.state == {"when": later.isoformat(), "amount": "1.50"}  # JSON-safe on the way in
    turns = await repo.turns(conv.id)
    assert [t.role for t in turns] == [TurnRole.CUSTOMER, TurnRole.BOT]
    assert turns[0].text == "Where is my order?" and turns[0].action is None
    bot = turns[1]
    assert (bot.action, bot.intent, bot.confidence, bot.latency_ms) == ("clarify", "order_status", 0.91, 12.5)
    assert bot.citations == cites
    assert bot.created_at == later


async def test_first_response_is_kept_and_values_are_coalesced(db: Database, now: datetime) -> None:
    repo = ConversationRepository(db)
    conv = await repo.create(tenant_id="demo", channel="chat", now=now)
    await repo.record_exchange(conv.id, now=now, **exchange(customer_id="c1", language="sl"))
    second = await repo.record_exchange(conv.id, now=now, **exchange(latency_ms=99.0, language=None))
    assert second.first_response_ms == 12.5
    assert second.turn_count == 4
    assert second.customer_id == "c1"  # None keeps the stored value
    assert second.language == "sl"
    assert await repo.get(conv.id) == second


async def test_handoff_creates_a_waiting_handoff(db: Database, now: datetime) -> None:
    repo = ConversationRepository(db)
    conv = await repo.create(tenant_id="demo", channel="voice", now=now)
    context = {"reason": "human_requested", "summary": "Wants a person", "intent": None, "language": "en"}
    record = await repo.record_exchange(
        conv.id, now=now, **exchange(action="handoff", reason="human_requested"), handoff=context
    )
    assert record.status is ConversationStatus.HANDOFF
    assert record.resolved_without_human is False
    handoffs = await HandoffRepository(db).list("demo")
    assert len(handoffs) == 1
    h = handoffs[0]
    assert (h.conversation_id, h.channel, h.reason, h.summary) == (
        conv.id,
        "voice",
        "human_requested",
        "Wants a person",
    )
    assert h.context == {"intent": None, "language": "en"}
    assert h.status is HandoffStatus.WAITING

    # further replies while waiting do not open a second handoff
    again = await repo.record_exchange(conv.id, now=now, **exchange(action="handoff"), handoff=context)
    assert again.status is ConversationStatus.HANDOFF
    assert len(await HandoffRepository(db).list("demo", status=None)) == 1
    ended = await repo.record_exchange(conv.id, now=now, **exchange(action="end"))
    assert ended.status is ConversationStatus.ENDED
    assert ended.resolved_without_human is False


async def test_handoff_channel_override_and_missing_context(db: Database, now: datetime) -> None:
    repo = ConversationRepository(db)
    conv = await repo.create(tenant_id="demo", channel="chat", now=now)
    await repo.record_exchange(
        conv.id, now=now, channel="email", **exchange(action="handoff", reason="policy")
    )
    (h,) = await HandoffRepository(db).list("demo")
    assert (h.channel, h.reason, h.summary, h.context) == ("email", "policy", "", {})


async def test_end_without_human_is_deflected_and_terminal(db: Database, now: datetime) -> None:
    repo = ConversationRepository(db)
    conv = await repo.create(tenant_id="demo", channel="chat", now=now)
    record = await repo.record_exchange(conv.id, now=now, **exchange(action="end"))
    assert record.status is ConversationStatus.ENDED
    assert record.resolved_without_human is True
    with pytest.raises(ConflictError):
        await repo.record_exchange(conv.id, now=now, **exchange())
    assert (await repo.get(conv.id)).turn_count == 2  # the refused exchange left nothing behind
    assert len(await repo.turns(conv.id)) == 2


async def test_record_exchange_unknown_conversation(db: Database, now: datetime) -> None:
    with pytest.raises(NotFoundError):
        await ConversationRepository(db).record_exchange("nope", now=now, **exchange())


async def test_agent_turns(db: Database, now: datetime) -> None:
    repo = ConversationRepository(db)
    conv = await repo.create(tenant_id="demo", channel="chat", now=now)
    turn = await repo.add_agent_turn(conv.id, "Hello, this is Maja.", now)
    assert turn.role is TurnRole.AGENT and turn.id > 0
    assert await repo.turns(conv.id) == [turn]
    assert (await repo.get(conv.id)).turn_count == 1
    with pytest.raises(NotFoundError):
        await repo.add_agent_turn("nope", "x", now)


async def test_turns_of_unknown_and_empty(db: Database, now: datetime) -> None:
    repo = ConversationRepository(db)
    conv = await repo.create(tenant_id="demo", channel="chat", now=now)
    assert await repo.turns(conv.id) == []
    with pytest.raises(NotFoundError):
        await repo.turns("nope")


@pytest.mark.parametrize("score", [0, 6, True, 3.0, "4"])
async def test_csat_validation(db: Database, now: datetime, score: Any) -> None:
    repo = ConversationRepository(db)
    conv = await repo.create(tenant_id="demo", channel="chat", now=now)
    with pytest.raises(InputError):
        await repo.set_csat(conv.id, score, now)


async def test_csat(db: Database, now: datetime) -> None:
    repo = ConversationRepository(db)
    conv = await repo.create(tenant_id="demo", channel="chat", now=now)
    later = now + timedelta(minutes=1)
    record = await repo.set_csat(conv.id, 5, later)
    assert record.csat == 5 and record.updated_at == later
    with pytest.raises(NotFoundError):
        await repo.set_csat("nope", 3, now)


async def test_list_filters_and_order(db: Database, now: datetime) -> None:
    repo = ConversationRepository(db)
    a = await repo.create(tenant_id="demo", channel="chat", now=now)
    b = await repo.create(tenant_id="demo", channel="voice", now=now + timedelta(seconds=1))
    c = await repo.create(tenant_id="demo", channel="chat", now=now + timedelta(seconds=2))
    await repo.create(tenant_id="other", channel="chat", now=now)
    await repo.record_exchange(c.id, now=now, **exchange(action="end"))
    assert [r.id for r in await repo.list("demo")] == [c.id, b.id, a.id]
    assert [r.id for r in await repo.list("demo", channel="chat")] == [c.id, a.id]
    assert [r.id for r in await repo.list("demo", status="ended")] == [c.id]
    assert [r.id for r in await repo.list("demo", limit=1)] == [c.id]


async def test_times_come_back_in_utc(db: Database) -> None:
    repo = ConversationRepository(db)
    local = datetime(2026, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    conv = await repo.create(tenant_id="demo", channel="chat", now=local)
    stored = await repo.get(conv.id)
    assert stored.created_at == local
    assert stored.created_at.utcoffset() == timedelta(0)
