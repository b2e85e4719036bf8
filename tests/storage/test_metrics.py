from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.storage.test_conversations import exchange
from voicebot.storage import ConversationRepository, Database, MetricsRepository, percentile


async def test_empty_summary(db: Database) -> None:
    summary = await MetricsRepository(db).summary("demo")
    assert summary == {
        "conversations": 0,
        "first_response_ms": {"p50": None, "p95": None},
        "deflection_rate": None,
        "handoff_rate": None,
        "csat": {"average": None, "responses": 0},
        "per_channel": {},
    }


async def test_summary(db: Database, now: datetime) -> None:
    repo = ConversationRepository(db)

    async def conversation(channel: str, latency: float | None, action: str, csat: int | None = None) -> None:
        conv = await repo.create(tenant_id="demo", channel=channel, now=now)
        if latency is not None:
            await repo.record_exchange(conv.id, now=now, **exchange(action=action, latency_ms=latency))
        if csat is not None:
            await repo.set_csat(conv.id, csat, now)

    await conversation("chat", 10.0, "end", csat=5)  # deflected
    await conversation("chat", 20.0, "end", csat=4)  # deflected
    await conversation("chat", 30.0, "handoff", csat=2)  # handed off
    await conversation("chat", 40.0, "answer")  # still open
    await conversation("voice", 100.0, "handoff")
    await conversation("voice", None, "answer")  # no bot turn: counted, not in the rates
    other = await repo.create(tenant_id="other", channel="chat", now=now)
    await repo.record_exchange(other.id, now=now, **exchange(action="end", latency_ms=1.0))

    summary = await MetricsRepository(db).summary("demo")
    assert summary["conversations"] == 6
    assert summary["first_response_ms"]["p50"] == pytest.approx(30.0)
    assert summary["first_response_ms"]["p95"] == pytest.approx(88.0)
    assert summary["deflection_rate"] == pytest.approx(2 / 5)
    assert summary["handoff_rate"] == pytest.approx(2 / 5)
    assert summary["csat"] == {"average": pytest.approx(11 / 3), "responses": 3}
    chat = summary["per_channel"]["chat"]
    assert chat["conversations"] == 4
    assert chat["first_response_ms"]["p50"] == pytest.approx(25.0)
    assert chat["deflection_rate"] == pytest.approx(0.5)
    assert chat["handoff_rate"] == pytest.approx(0.25)
    voice = summary["per_channel"]["voice"]
    assert voice["conversations"] == 2
    assert voice["deflection_rate"] == 0.0
    assert voice["handoff_rate"] == 1.0
    assert voice["csat"] == {"average": None, "responses": 0}

    later = await MetricsRepository(db).summary("demo", since=now + timedelta(seconds=1))
    assert later["conversations"] == 0


def test_percentile_examples() -> None:
    assert percentile([], 50) is None
    assert percentile([7.0], 95) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([4.0, 1.0, 3.0, 2.0], 100) == 4.0
    assert percentile([1.0, 2.0], 0) == 1.0


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1), st.floats(0, 100))
def test_percentile_is_bounded_and_monotonic(values: list[float], q: float) -> None:
    p = percentile(values, q)
    assert p is not None
    assert min(values) - 1e-6 <= p <= max(values) + 1e-6
    higher = percentile(values, min(100.0, q + 10))
    assert higher is not None and higher >= p - 1e-6
