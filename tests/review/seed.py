"""Seeded conversations for the review tests: known channels, intents, confidences, outcomes, times."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from voicebot.runtime import Runtime

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Exchange:
    question: str
    answer: str
    action: str = "answer"
    intent: str | None = None
    confidence: float = 0.9
    reason: str | None = "knowledge"


async def seed(
    runtime: Runtime,
    exchanges: list[Exchange],
    *,
    channel: str = "chat",
    at: datetime = T0,
    language: str = "en",
    caller: str | None = None,
) -> str:
    """One conversation with ``exchanges`` (a minute apart from ``at``); returns its id."""
    record = await runtime.conversations.create(
        tenant_id=runtime.tenant.id, channel=channel, now=at, caller=caller
    )
    for n, x in enumerate(exchanges):
        handoff: dict[str, Any] | None = None
        if x.action == "handoff":
            handoff = {"reason": x.reason or "low_confidence", "summary": x.question}
        await runtime.conversations.record_exchange(
            record.id,
            customer_text=x.question,
            bot_text=x.answer,
            action=x.action,
            intent=x.intent,
            confidence=x.confidence,
            citations=[
                {"passage_id": "p1", "source": "en/faq.yaml#x", "title": "t", "text": "x", "score": 0.9}
            ]
            if x.reason == "knowledge"
            else [],
            reason=x.reason,
            state={},
            language=language,
            customer_id=None,
            latency_ms=120.0 + n,
            now=at + timedelta(minutes=n),
            handoff=handoff,
            channel=channel,
        )
    return record.id


async def bot_turns(runtime: Runtime, conversation_id: str) -> list[int]:
    return [t.id for t in await runtime.conversations.turns(conversation_id) if t.role.value == "bot"]
