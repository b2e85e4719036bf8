"""The dashboard's figures on hand-made conversations (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from tests.storage.test_conversations import exchange
from voicebot.storage import (
    AuditRepository,
    ConversationRepository,
    Database,
    HandoffRepository,
    MetricsRepository,
    tables,
)
from voicebot.storage.dashboard import Bucket, DashboardRange
from voicebot.storage.dashboard_rollup import whole_days

H = timedelta(hours=1)
M = timedelta(minutes=1)
D = timedelta(days=1)


async def _latency(db: Database, conversation_id: str, at: datetime, v2v_ms: float) -> None:
    await AuditRepository(db).record(
        tenant_id="demo",
        actor="bot",
        action="voice.turn_latency",
        now=at,
        conversation_id=conversation_id,
        details={"v2v_ms": v2v_ms, "stt_ms": 300.0},
    )


async def _shop(db: Database, now: datetime) -> None:
    """A: chat, answered then ended by the bot, CSAT 5. B: chat, handed off, an agent took it after
    10 min and closed it 20 min later, CSAT 2. C: voice, ended by the bot; its caller called again the
    next day (D, still open). E: e-mail without a bot reply. One conversation of another tenant."""
    repo = ConversationRepository(db)
    a = await repo.create(tenant_id="demo", channel="chat", now=now)
    await repo.record_exchange(a.id, now=now + M, **exchange(action="answer", latency_ms=10.0))
    await repo.record_exchange(a.id, now=now + 3 * M, **exchange(action="end", latency_ms=5.0))
    await repo.set_csat(a.id, 5, now + 4 * M)

    b = await repo.create(tenant_id="demo", channel="chat", now=now + H, email="b@example.com")
    await repo.record_exchange(
        b.id,
        now=now + H + M,
        **exchange(action="handoff", intent="billing", reason="customer_asked", latency_ms=30.0),
    )
    handoffs = HandoffRepository(db)
    (waiting,) = await handoffs.list("demo")
    await handoffs.take(waiting.id, "agent1", now + H + 10 * M)
    await handoffs.close(waiting.id, now + H + 30 * M)
    await repo.set_csat(b.id, 2, now + H + 31 * M)

    c = await repo.create(tenant_id="demo", channel="voice", now=now + 2 * H, caller="+38640111222")
    await repo.record_exchange(
        c.id, now=now + 2 * H + M, **exchange(action="answer", intent="opening_hours", latency_ms=100.0)
    )
    await repo.record_exchange(c.id, now=now + 2 * H + 5 * M, **exchange(action="end", intent="bye"))
    await _latency(db, c.id, now + 2 * H + M, 800.0)
    await _latency(db, c.id, now + 2 * H + 2 * M, 1200.0)

    d = await repo.create(tenant_id="demo", channel="voice", now=now + D + 2 * H, caller="+38640111222")
    await repo.record_exchange(d.id, now=now + D + 2 * H + M, **exchange(action="answer", latency_ms=50.0))
    await _latency(db, d.id, now + D + 2 * H + M, 1000.0)

    await repo.create(tenant_id="demo", channel="email", now=now + D, email="e@example.com")
    other = await repo.create(tenant_id="other", channel="chat", now=now)
    await repo.record_exchange(other.id, now=now + M, **exchange(action="handoff", latency_ms=1.0))


async def test_dashboard_figures(db: Database, now: datetime) -> None:
    await _shop(db, now)
    midnight = now.replace(hour=0)
    rng = DashboardRange(since=midnight, until=midnight + 2 * D, bucket=Bucket.DAY)
    board = await MetricsRepository(db).dashboard("demo", rng, now=rng.until)

    assert board["range"]["bucket"] == "day" and board["range"]["channel"] is None
    assert board["conversations"] == 5 and board["answered"] == 4
    assert board["first_response_ms"] == {"p50": 40.0, "p95": 92.5}  # of 10, 30, 50, 100
    assert board["deflection_rate"] == 0.5  # A and C of the 4 answered
    assert board["handoff_rate"] == 0.25 and board["handoffs"] == 1
    assert board["csat"] == {
        "average": 3.5,
        "responses": 2,
        "distribution": {"1": 0, "2": 1, "3": 0, "4": 0, "5": 1},
    }
    # closed: A (ended), B (resolved by the agent), C (ended, but its caller came back)
    assert board["first_contact_resolution"] == {
        "rate": pytest.approx(2 / 3, abs=1e-4),
        "closed": 3,
        "came_back": 1,
    }
    assert board["handle_ms"] == {
        "bot_average": 180_000.0,  # A 3 min, C 5 min, D 1 min (so far); B had a human
        "bot_conversations": 3,
        "human_average": 1_200_000.0,  # taken -> closed
        "human_handoffs": 1,
    }
    assert board["voice_latency_ms"] == {"p50": 1000.0, "p95": 1180.0, "turns": 3}
    assert board["handoff_reasons"] == {"customer_asked": 1}

    chat, voice, email = (board["per_channel"][c] for c in ("chat", "voice", "email"))
    assert chat["conversations"] == 2 and chat["handoff_rate"] == 0.5
    assert chat["handoff_reasons"] == {"customer_asked": 1}
    assert chat["first_response_ms"] == {"p50": 20.0, "p95": 29.0}
    assert voice["conversations"] == 2 and voice["voice_latency_ms"]["turns"] == 3
    assert voice["first_contact_resolution"]["rate"] == 0.0
    assert email["conversations"] == 1 and email["answered"] == 0 and email["deflection_rate"] is None

    intents = board["per_intent"]
    assert set(intents) == {"order_status", "billing", "opening_hours", "(none)"}
    assert intents["order_status"]["conversations"] == 2  # A and D: the first intent counts
    assert intents["opening_hours"]["voice_latency_ms"] == {"p50": 1000.0, "p95": 1180.0, "turns": 2}
    assert intents["billing"]["handle_ms"]["human_average"] == 1_200_000.0

    first_day, second_day = board["series"]
    assert first_day["start"] == midnight.isoformat()
    assert [first_day["conversations"], second_day["conversations"]] == [3, 2]
    assert first_day["voice_latency_ms"]["turns"] == 2 and second_day["voice_latency_ms"]["p50"] == 1000.0


async def test_channel_filter_and_hourly_buckets(db: Database, now: datetime) -> None:
    await _shop(db, now)
    rng = DashboardRange(since=now, until=now + 3 * H, bucket=Bucket.HOUR, channel="voice")
    board = await MetricsRepository(db).dashboard("demo", rng, now=rng.until)
    assert board["conversations"] == 1 and set(board["per_channel"]) == {"voice"}
    assert board["voice_latency_ms"]["turns"] == 2
    assert [s["conversations"] for s in board["series"]] == [0, 0, 1]
    assert board["series"][2]["start"] == (now + 2 * H).isoformat()
    assert board["handoff_reasons"] == {}


async def test_weeks_start_on_monday(db: Database, now: datetime) -> None:
    repo = ConversationRepository(db)
    sunday = now - timedelta(days=1)  # NOW is a Monday
    for at in (sunday, now, now + 6 * D):
        await repo.create(tenant_id="demo", channel="chat", now=at)
    rng = DashboardRange(since=now - 7 * D, until=now + 14 * D, bucket=Bucket.WEEK)
    board = await MetricsRepository(db).dashboard("demo", rng, now=rng.until)
    starts = [s["start"][:10] for s in board["series"]]
    assert starts == ["2026-02-23", "2026-03-02", "2026-03-09", "2026-03-16"]  # the last one partly
    assert [s["conversations"] for s in board["series"]] == [1, 2, 0, 0]


async def _came_back(db: Database, conversation_id: str) -> bool | None:
    async with db.reader.connect() as conn:
        return await conn.scalar(
            select(tables.conversations.c.came_back).where(tables.conversations.c.id == conversation_id)
        )


async def test_repeat_contacts_by_customer_id_else_address(db: Database, now: datetime) -> None:
    repo = ConversationRepository(db)
    first = await repo.create(tenant_id="demo", channel="chat", now=now)  # anonymous until identified
    await repo.record_exchange(first.id, now=now + M, **exchange(customer_id="C1", action="end"))
    late = await repo.create(tenant_id="demo", channel="email", now=now, email="Pat@Example.com")
    # The same customer by CRM id, on another channel, 6 days later: the first did not resolve it.
    again = await repo.create(tenant_id="demo", channel="voice", now=now + 6 * D, caller="+1555")
    assert await _came_back(db, first.id) is None
    await repo.record_exchange(again.id, now=now + 6 * D + M, **exchange(customer_id="C1"))
    assert await _came_back(db, first.id) is True
    # By address (case-insensitive), but only within 7 days.
    await repo.create(tenant_id="demo", channel="email", now=now + 8 * D, email="pat@example.com")
    assert await _came_back(db, late.id) is None
    # Another tenant's customer of the same id is someone else.
    stranger = await repo.create(tenant_id="other", channel="chat", now=now + D)
    await repo.record_exchange(stranger.id, now=now + D + M, **exchange(customer_id="C1"))
    assert await _came_back(db, again.id) is None


async def test_empty_range(db: Database, now: datetime) -> None:
    rng = DashboardRange(since=now, until=now + D, bucket=Bucket.HOUR)
    board = await MetricsRepository(db).dashboard("demo", rng, now=rng.until)
    assert board["conversations"] == 0 and board["per_channel"] == {} and board["per_intent"] == {}
    assert len(board["series"]) == 24
    assert board["first_response_ms"] == {"p50": None, "p95": None}
    assert board["voice_latency_ms"] == {"p50": None, "p95": None, "turns": 0}
    assert board["first_contact_resolution"]["rate"] is None


def test_bucket_for_range(now: datetime) -> None:
    assert Bucket.for_range(now, now + 2 * D) is Bucket.HOUR
    assert Bucket.for_range(now, now + 30 * D) is Bucket.DAY
    assert Bucket.for_range(now, now + 91 * D) is Bucket.WEEK


def _without_series(board: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in board.items() if k not in ("series", "range")}


async def test_rollup_of_whole_days_agrees_with_the_base_tables(db: Database, now: datetime) -> None:
    """Days from the rollup plus the partial days at the edges give what the base tables give."""
    await _shop(db, now)
    metrics = MetricsRepository(db)
    since, until = now - D + 3 * H, now + 2 * D - 5 * H  # whole days inside, partial ones around
    by_day = await metrics.dashboard(
        "demo", DashboardRange(since=since, until=until, bucket=Bucket.DAY), now=until
    )
    by_hour = await metrics.dashboard(
        "demo", DashboardRange(since=since, until=until, bucket=Bucket.HOUR), now=until
    )  # hourly buckets never read the rollup
    assert by_day["conversations"] == 5
    assert _without_series(by_day) == _without_series(by_hour)
    for channel in ("chat", "voice"):
        one = DashboardRange(since=since, until=until, bucket=Bucket.DAY, channel=channel)
        hourly = DashboardRange(since=since, until=until, bucket=Bucket.HOUR, channel=channel)
        assert _without_series(await metrics.dashboard("demo", one, now=until)) == _without_series(
            await metrics.dashboard("demo", hourly, now=until)
        )


async def test_rollup_follows_later_changes(db: Database, now: datetime) -> None:
    """A day already rolled up changes later: a CSAT answer, an agent closing the handoff, the
    customer coming back; the next read shows it."""
    repo, handoffs = ConversationRepository(db), HandoffRepository(db)
    metrics = MetricsRepository(db)
    midnight = now.replace(hour=0)
    rng = DashboardRange(since=midnight, until=midnight + D, bucket=Bucket.DAY)
    a = await repo.create(tenant_id="demo", channel="voice", now=now, caller="+1555")
    await repo.record_exchange(a.id, now=now + M, **exchange(action="end"))
    b = await repo.create(tenant_id="demo", channel="chat", now=now + H)
    await repo.record_exchange(b.id, now=now + H + M, **exchange(action="handoff", reason="low_confidence"))
    later = now + 2 * D
    before = await metrics.dashboard("demo", rng, now=later)
    assert before["csat"]["responses"] == 0 and before["handle_ms"]["human_handoffs"] == 0
    assert before["first_contact_resolution"] == {"rate": 1.0, "closed": 1, "came_back": 0}

    await repo.set_csat(a.id, 4, later + M)
    (waiting,) = await handoffs.list("demo")
    await handoffs.take(waiting.id, "agent1", later + M)
    await handoffs.close(waiting.id, later + 3 * M)
    after = await metrics.dashboard("demo", rng, now=later + 4 * M)
    assert after["csat"]["responses"] == 1
    assert after["handle_ms"]["human_average"] == 120_000.0
    assert after["first_contact_resolution"]["closed"] == 2  # b is resolved now

    await repo.create(tenant_id="demo", channel="voice", now=now + 3 * D, caller="+1555")
    again = await metrics.dashboard("demo", rng, now=now + 3 * D + M)
    assert again["first_contact_resolution"]["came_back"] == 1


async def test_the_conversation_row_keeps_what_the_dashboard_needs(db: Database, now: datetime) -> None:
    repo = ConversationRepository(db)
    conv = await repo.create(tenant_id="demo", channel="chat", now=now, caller="+1555")
    await repo.record_exchange(conv.id, now=now + M, **exchange(intent="order_status"))
    await repo.record_exchange(
        conv.id, now=now + 2 * M, **exchange(action="handoff", intent="human", reason="human_requested")
    )
    await repo.record_exchange(conv.id, now=now + 4 * M, **exchange(action="end", intent="goodbye"))
    c = tables.conversations.c
    async with db.reader.connect() as conn:
        row = (
            await conn.execute(
                select(c.intent, c.handoff_reason, c.ended_at, c.handle_ms, c.contact_key).where(
                    c.id == conv.id
                )
            )
        ).one()
    assert row.intent == "order_status"  # the first the bot recognised
    assert row.handoff_reason == "human_requested"
    assert row.ended_at == now + 4 * M
    assert row.handle_ms == 240_000.0  # start -> the latest bot reply
    assert row.contact_key == "caller:+1555"


async def test_warming_prepares_the_days_a_first_view_would_compute(db: Database, now: datetime) -> None:
    await _shop(db, now)
    metrics = MetricsRepository(db)
    later = now + 3 * D
    first, end = whole_days(later - 90 * D, later)
    assert await metrics.warm_rollups("demo", now=later, days=90) == end - first > 80  # every whole day
    assert await metrics.warm_rollups("demo", now=later, days=90) == 0  # nothing left to do
    warmed = await metrics.dashboard(
        "demo", DashboardRange(since=later - 90 * D, until=later, bucket=Bucket.DAY), now=later
    )
    assert warmed["conversations"] == 5
