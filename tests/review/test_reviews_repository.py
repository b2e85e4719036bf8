"""ReviewRepository on seeded conversations, on SQLite and PostgreSQL: every filter, text search,
keyset paging, marks (bot turns only, one per reviewer), and the unanswered questions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import SESSION_LOOP, RuntimeFactory
from tests.review.seed import T0, Exchange, bot_turns, seed
from voicebot.errors import ConflictError, InputError, NotFoundError
from voicebot.runtime import Runtime
from voicebot.storage.records import ConversationStatus
from voicebot.storage.reviews import ConversationFilter, ReviewRepository, Verdict

pytestmark = SESSION_LOOP

BACKENDS = ["sqlite", "postgresql"]


async def seeded(runtime: Runtime) -> dict[str, str]:
    """Five conversations, one a day apart (oldest first)."""
    ids = {
        "returns": await seed(
            runtime,
            [Exchange("How do I return a jacket?", "Within 14 days.", intent="returns", confidence=0.91)],
            at=T0,
        ),
        "voice_handoff": await seed(
            runtime,
            [
                Exchange(
                    "Do you sell 100% gift_cards?",
                    "Could you say more?",
                    "clarify",
                    None,
                    0.2,
                    "below_threshold",
                ),
                Exchange("gift cards", "Let me get a colleague.", "handoff", None, 0.25, "failed_turns"),
            ],
            channel="voice",
            at=T0 + timedelta(days=1),
            caller="+38640111222",
        ),
        "legal": await seed(
            runtime,
            [
                Exchange(
                    "I will call my lawyer",
                    "A colleague takes over.",
                    "handoff",
                    "complaint",
                    1.0,
                    "sensitive:legal",
                )
            ],
            at=T0 + timedelta(days=2),
        ),
        "email_warranty": await seed(
            runtime,
            [Exchange("Warranty on the coffee machine?", "Two years.", intent="warranty", confidence=0.7)],
            channel="email",
            at=T0 + timedelta(days=3),
        ),
        "goodbye": await seed(
            runtime,
            [
                Exchange(
                    "Where is my order?",
                    "It ships today.",
                    intent="order_status",
                    confidence=0.8,
                    reason="tool",
                ),
                Exchange("bye", "Goodbye!", "end", "goodbye", 0.95, None),
            ],
            at=T0 + timedelta(days=4),
        ),
    }
    return ids


async def found(runtime: Runtime, **filters: object) -> list[str]:
    page = await ReviewRepository(runtime.db).search(runtime.tenant.id, ConversationFilter(**filters))  # type: ignore[arg-type]
    return [s.conversation.id for s in page.items]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_filters_and_search(make_runtime: RuntimeFactory, backend: str) -> None:
    runtime = await make_runtime(backend=backend)
    ids = await seeded(runtime)
    newest_first = [ids[k] for k in ("goodbye", "email_warranty", "legal", "voice_handoff", "returns")]
    assert await found(runtime) == newest_first
    assert await found(runtime, channel="voice") == [ids["voice_handoff"]]
    assert await found(runtime, channel="email") == [ids["email_warranty"]]
    assert await found(runtime, intent="warranty") == [ids["email_warranty"]]
    assert await found(runtime, status=ConversationStatus.ENDED) == [ids["goodbye"]]
    assert await found(runtime, status=ConversationStatus.HANDOFF) == [ids["legal"], ids["voice_handoff"]]
    assert await found(runtime, resolved_without_human=True) == [ids["goodbye"]]
    assert await found(runtime, resolved_without_human=False) == [ids["legal"], ids["voice_handoff"]]
    assert await found(runtime, handoff_reason="sensitive") == [ids["legal"]]  # the family
    assert await found(runtime, handoff_reason="sensitive:legal") == [ids["legal"]]
    assert await found(runtime, handoff_reason="failed_turns") == [ids["voice_handoff"]]
    assert await found(runtime, max_confidence=0.3) == [ids["voice_handoff"]]
    assert await found(runtime, min_confidence=0.75, max_confidence=0.85) == [ids["goodbye"]]
    # the intent and the confidence range apply to the same bot turn
    assert await found(runtime, intent="warranty", min_confidence=0.8) == []
    assert await found(runtime, since=T0 + timedelta(days=1), until=T0 + timedelta(days=3)) == [
        ids["legal"],
        ids["voice_handoff"],
    ]
    # text search: any turn, either role, case-insensitive; LIKE wildcards are literal
    assert await found(runtime, text="COFFEE machine") == [ids["email_warranty"]]
    assert await found(runtime, text="a colleague") == [ids["legal"], ids["voice_handoff"]]
    assert await found(runtime, text="100%") == [ids["voice_handoff"]]
    assert await found(runtime, text="gift_c") == [ids["voice_handoff"]]
    assert await found(runtime, text="%") == [ids["voice_handoff"]]
    assert await found(runtime, text="nothing like this") == []
    assert await found(runtime, channel="chat", text="order") == [ids["goodbye"]]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_summaries_and_keyset_paging(make_runtime: RuntimeFactory, backend: str) -> None:
    runtime = await make_runtime(backend=backend)
    ids = await seeded(runtime)
    repo = ReviewRepository(runtime.db)
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        page = await repo.search(runtime.tenant.id, ConversationFilter(), limit=2, cursor=cursor)
        seen += [s.conversation.id for s in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [ids[k] for k in ("goodbye", "email_warranty", "legal", "voice_handoff", "returns")]
    assert cursor is None
    page = await repo.search(runtime.tenant.id, ConversationFilter(channel="voice"))
    summary = page.items[0]
    assert summary.first_question == "Do you sell 100% gift_cards?"
    assert summary.lowest_confidence == pytest.approx(0.2)
    assert summary.handoff_reason == "failed_turns"
    with pytest.raises(InputError, match="cursor"):
        await repo.search(runtime.tenant.id, ConversationFilter(), cursor="not-a-cursor")
    with pytest.raises(InputError, match="limit"):
        await repo.search(runtime.tenant.id, ConversationFilter(), limit=0)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_marks(make_runtime: RuntimeFactory, backend: str) -> None:
    runtime = await make_runtime(backend=backend)
    ids = await seeded(runtime)
    repo = ReviewRepository(runtime.db)
    tenant = runtime.tenant.id
    turn = (await bot_turns(runtime, ids["email_warranty"]))[0]
    first = await repo.mark(tenant, turn, verdict=Verdict.RIGHT, note="", reviewer="ana", now=T0)
    again = await repo.mark(tenant, turn, verdict=Verdict.WRONG, note="it is 3 years", reviewer="ana", now=T0)
    other = await repo.mark(tenant, turn, verdict=Verdict.RIGHT, note="ok", reviewer="bo", now=T0)
    _record, _turns, marks, _handoffs = await repo.conversation(tenant, ids["email_warranty"])
    assert {(m.reviewer, m.verdict, m.note) for m in marks} == {
        ("ana", Verdict.WRONG, "it is 3 years"),
        ("bo", Verdict.RIGHT, "ok"),
    }
    assert first.id not in {m.id for m in marks} and {again.id, other.id} == {m.id for m in marks}
    assert await found(runtime, marked=Verdict.WRONG) == [ids["email_warranty"]]
    page = await repo.search(tenant, ConversationFilter(marked=Verdict.WRONG))
    assert page.items[0].marks == {"wrong": 1, "right": 1}

    customer_turn = turn - 1
    with pytest.raises(ConflictError, match="only the bot"):
        await repo.mark(tenant, customer_turn, verdict=Verdict.WRONG, note="", reviewer="ana", now=T0)
    with pytest.raises(NotFoundError):
        await repo.mark(tenant, 10**9, verdict=Verdict.WRONG, note="", reviewer="ana", now=T0)
    with pytest.raises(NotFoundError):  # another tenant's turn is not found either
        await repo.mark("other-tenant", turn, verdict=Verdict.WRONG, note="", reviewer="ana", now=T0)
    await repo.unmark(tenant, turn, reviewer="bo")
    with pytest.raises(NotFoundError):
        await repo.unmark(tenant, turn, reviewer="bo")


@pytest.mark.parametrize("backend", BACKENDS)
async def test_unanswered_questions(make_runtime: RuntimeFactory, backend: str) -> None:
    runtime = await make_runtime(backend=backend)
    ids = await seeded(runtime)
    repo = ReviewRepository(runtime.db)
    tenant = runtime.tenant.id
    turn = (await bot_turns(runtime, ids["email_warranty"]))[0]
    await repo.mark(tenant, turn, verdict=Verdict.WRONG, note="3 years now", reviewer="ana", now=T0)
    questions, capped = await repo.unanswered(tenant, since=T0, until=T0 + timedelta(days=10), limit=10)
    assert not capped
    # newest first; the sensitive handoff and the confident answers are not gaps
    assert [(q.text, q.reason) for q in questions] == [
        ("Warranty on the coffee machine?", "marked_wrong"),
        ("gift cards", "failed_turns"),
        ("Do you sell 100% gift_cards?", "below_threshold"),
    ]
    assert questions[0].notes == ("3 years now",)
    assert {q.conversation_id for q in questions[1:]} == {ids["voice_handoff"]}
    assert questions[1].language == "en"
    two, capped = await repo.unanswered(tenant, since=T0, until=T0 + timedelta(days=10), limit=2)
    assert capped and len(two) == 2
    none, _ = await repo.unanswered(
        tenant, since=T0 + timedelta(days=5), until=T0 + timedelta(days=9), limit=10
    )
    assert none == []
