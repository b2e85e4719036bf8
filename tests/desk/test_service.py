"""The desk on the real dialogue and database: the queue with its context, take races, human mode,
hand back and close, take-over, the customer's notices, and the audit trail."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.desk.conftest import ANA, BOB, desk_for, drain, handed_off_chat, pushes
from voicebot.errors import ConflictError, InputError
from voicebot.storage.records import ConversationStatus, HandoffStatus

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_handoff_waits_in_the_queue_with_its_context(runtime: Any) -> None:
    started = await runtime.chat.start()
    cid = started.conversation.id
    async with pushes(runtime, cid) as frames, runtime.live.subscribe("handoff.") as events:
        await runtime.chat.send(cid, "Where is my order A1001?")
        await runtime.chat.send(cid, "I want to talk to a person")
        waiting = await asyncio.wait_for(events.get(), 5)
        queued = await drain(frames)
    handoff = await runtime.handoffs.active_for(cid)
    assert handoff is not None and handoff.status is HandoffStatus.WAITING
    assert waiting.topic == "handoff.waiting" and waiting.data["handoff_id"] == handoff.id
    assert [f["kind"] for f in queued] == ["queued"]
    assert queued[0]["position"] == 1 and queued[0]["estimate_seconds"] is None
    assert "no recent waits" in queued[0]["text"]

    desk = desk_for(runtime)
    queue = await desk.queue()
    assert [h["id"] for h in queue["waiting"]] == [handoff.id] and queue["taken"] == []
    assert queue["waiting"][0]["position"] == 1 and queue["waiting"][0]["waited_seconds"] >= 0
    detail = await desk.detail(handoff.id)
    assert detail["context"]["summary"] and detail["context"]["reason"] == handoff.reason
    assert [t["role"] for t in detail["transcript"]][-2:] == ["customer", "bot"]
    assert "A1001" in " ".join(t["text"] for t in detail["transcript"])
    assert detail["conversation"]["id"] == cid and detail["email"] is None
    assert detail["handoff"]["position"] == 1


async def test_the_customer_is_matched_in_the_crm(runtime: Any) -> None:
    started = await runtime.chat.start(email="ana.novak@example.com")
    cid = started.conversation.id
    await runtime.chat.send(cid, "I want to talk to a person")
    handoff = await runtime.handoffs.active_for(cid)
    assert handoff is not None
    detail = await desk_for(runtime).detail(handoff.id)
    customer = detail["customer"]
    assert customer is not None and customer["name"] == "Ana Novak", detail
    assert customer["email"] == "ana.novak@example.com"
    assert "birth_date" not in customer and "postcode" not in customer  # knowledge factors stay hidden
    assert isinstance(customer["orders"], list)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_two_agents_race_to_take_one_wins(make_runtime: Any, backend: str) -> None:
    runtime = await make_runtime(backend)
    _, handoff_id = await handed_off_chat(runtime)
    desk = desk_for(runtime)
    results = await asyncio.gather(
        desk.take(handoff_id, ANA), desk.take(handoff_id, BOB), return_exceptions=True
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1 and len(losers) == 1, results
    assert isinstance(losers[0], ConflictError) and "already taken by" in losers[0].message
    stored = await runtime.handoffs.get(handoff_id)
    assert stored.status is HandoffStatus.TAKEN and stored.taken_by == winners[0].taken_by
    taken = await runtime.audit.search(runtime.tenant.id, action="desk.take")
    assert [a.actor for a in taken] == [stored.taken_by]
    assert (
        await desk.take(handoff_id, ANA if stored.taken_by == "ana" else BOB)
    ).id == handoff_id  # again: ok


async def test_human_mode_the_bot_is_silent_and_the_agent_answers(runtime: Any) -> None:
    cid, handoff_id = await handed_off_chat(runtime)
    desk = desk_for(runtime)
    async with pushes(runtime, cid) as frames:
        await desk.take(handoff_id, ANA)
        joined = await drain(frames)
        assert [(f["type"], f["kind"], f["agent"]) for f in joined] == [("notice", "joined", "Ana")]
        assert joined[0]["text"] == "Ana has joined the conversation."

        before = len(await runtime.conversations.turns(cid))
        async with runtime.live.subscribe("conversation.turn") as turns:
            reply = await runtime.chat.send(cid, "Hello, are you there? What is your returns policy?")
            customer_turn = await asyncio.wait_for(turns.get(), 5)
        assert reply.text == "" and reply.action == "handoff" and reply.reason == "with_agent"
        assert customer_turn.data["role"] == "customer" and "returns" in customer_turn.data["text"]
        stored = await runtime.conversations.turns(cid)
        assert len(stored) == before + 1 and stored[-1].role == "customer"  # no bot turn

        async with runtime.live.subscribe("conversation.turn") as turns:
            result = await desk.reply(
                handoff_id, ANA, "  Hi, this is Ana. Returns are free within 30 days.  "
            )
            agent_turn = await asyncio.wait_for(turns.get(), 5)
        assert result["turn"]["text"] == "Hi, this is Ana. Returns are free within 30 days."
        assert agent_turn.data["role"] == "agent" and agent_turn.data["agent"] == "Ana"
        (frame,) = await drain(frames)
        assert (
            frame["type"] == "agent"
            and frame["agent"] == "Ana"
            and frame["text"].startswith("Hi, this is Ana")
        )
    stored = await runtime.conversations.turns(cid)
    assert stored[-1].role == "agent" and stored[-1].text.startswith("Hi, this is Ana")
    replies = await runtime.audit.search(runtime.tenant.id, action="desk.reply")
    assert [(a.actor, a.conversation_id) for a in replies] == [("ana", cid)]


async def test_only_the_agent_who_took_it_acts_on_it(runtime: Any) -> None:
    _, handoff_id = await handed_off_chat(runtime)
    desk = desk_for(runtime)
    with pytest.raises(ConflictError, match="take the conversation"):
        await desk.reply(handoff_id, ANA, "hello")
    await desk.take(handoff_id, ANA)
    for action in (desk.hand_back, desk.close):
        with pytest.raises(ConflictError, match="ana has this conversation"):
            await action(handoff_id, BOB)
    with pytest.raises(ConflictError, match="ana has this conversation"):
        await desk.reply(handoff_id, BOB, "hello")
    with pytest.raises(InputError, match="empty"):
        await desk.reply(handoff_id, ANA, "   ")
    with pytest.raises(InputError, match="NUL"):
        await desk.reply(handoff_id, ANA, "a\x00b")
    await desk.close(handoff_id, ANA)
    with pytest.raises(ConflictError, match="closed"):
        await desk.reply(handoff_id, ANA, "hello")


async def test_hand_back_resumes_the_bot(runtime: Any) -> None:
    cid, handoff_id = await handed_off_chat(runtime)
    desk = desk_for(runtime)
    await desk.take(handoff_id, ANA)
    async with pushes(runtime, cid) as frames:
        back = await desk.hand_back(handoff_id, ANA)
        (notice,) = await drain(frames)
    assert back.status is HandoffStatus.CLOSED
    assert notice["kind"] == "handed_back"
    assert (await runtime.conversations.get(cid)).status is ConversationStatus.ACTIVE
    reply = await runtime.chat.send(cid, "What is your returns policy?")
    assert reply.text and reply.action == "answer", reply  # the bot answers, not "a colleague is coming"
    assert reply.reason != "already_handed_off"
    audit = await runtime.audit.for_conversation(cid, action="desk.hand_back")
    assert [a.actor for a in audit] == ["ana"]


async def test_close_resolves_and_a_new_message_reaches_the_bot(runtime: Any) -> None:
    cid, handoff_id = await handed_off_chat(runtime)
    desk = desk_for(runtime)
    await desk.take(handoff_id, ANA)
    async with pushes(runtime, cid) as frames:
        await desk.close(handoff_id, ANA)
        (notice,) = await drain(frames)
    assert notice["kind"] == "closed" and "Ana has closed" in notice["text"]
    assert (await runtime.conversations.get(cid)).status is ConversationStatus.RESOLVED
    assert (await desk.queue())["taken"] == []
    reply = await runtime.chat.send(cid, "What is your returns policy?")
    assert reply.action == "answer", reply
    assert [a.actor for a in await runtime.audit.for_conversation(cid, action="desk.close")] == ["ana"]


async def test_a_waiting_chat_hears_its_place_when_the_queue_moves(runtime: Any) -> None:
    _, first = await handed_off_chat(runtime)
    second_cid, second = await handed_off_chat(runtime)
    desk = desk_for(runtime)
    assert [h["position"] for h in (await desk.queue())["waiting"]] == [1, 2]
    async with pushes(runtime, second_cid) as frames:
        await runtime.chat.send(second_cid, "hello?")  # while waiting the bot says a colleague is coming
        (place,) = await drain(frames)
        assert place["kind"] == "queue" and place["position"] == 2
        await desk.take(first, ANA)
        (moved,) = await drain(frames)
    assert moved["kind"] == "queue" and moved["position"] == 1 and moved["based_on"] == 1
    assert moved["estimate_seconds"] is not None and "median of the last 1" in moved["text"]
    assert (await desk.detail(second))["handoff"]["position"] == 1


async def test_take_over_a_chat_the_bot_is_handling(runtime: Any) -> None:
    started = await runtime.chat.start()
    cid = started.conversation.id
    await runtime.chat.send(cid, "Where is my order A1001?")
    desk = desk_for(runtime)
    async with pushes(runtime, cid) as frames:
        handoff = await desk.take_over(cid, ANA)
        joined = await drain(frames)
    assert (
        handoff.reason == "taken_over" and handoff.status is HandoffStatus.TAKEN and handoff.taken_by == "ana"
    )
    assert [f["kind"] for f in joined] == ["joined"]
    assert (await runtime.conversations.get(cid)).status is ConversationStatus.HANDOFF
    assert (await runtime.chat.send(cid, "thanks")).reason == "with_agent"
    detail = await desk.detail(handoff.id)
    assert "A1001" in " ".join(t["text"] for t in detail["transcript"])
    with pytest.raises(ConflictError, match="already taken by ana"):
        await desk.take_over(cid, BOB)
    assert (await desk.take_over(cid, ANA)).id == handoff.id  # again: the same one
    assert [a.actor for a in await runtime.audit.for_conversation(cid, action="desk.take_over")] == ["ana"]
    await desk.hand_back(handoff.id, ANA)
    assert (await runtime.chat.send(cid, "What is your returns policy?")).action == "answer"
    # a take-over is no wait: it does not count in the estimate
    assert await runtime.handoffs.recent_waits(runtime.tenant.id, "chat") == []


async def test_take_over_of_a_waiting_chat_takes_its_handoff(runtime: Any) -> None:
    cid, handoff_id = await handed_off_chat(runtime)
    handoff = await desk_for(runtime).take_over(cid, ANA)
    assert handoff.id == handoff_id and handoff.reason != "taken_over"
    assert [a.action for a in await runtime.audit.for_conversation(cid) if a.actor == "ana"] == ["desk.take"]


async def test_voice_is_answered_on_the_call_not_by_text(runtime: Any) -> None:
    from voicebot.dialogue.types import Channel

    started = await runtime.chat.start(channel=Channel.VOICE, caller="+38640111222")
    cid = started.conversation.id
    await runtime.chat.send(cid, "I want to talk to a person")
    handoff = await runtime.handoffs.active_for(cid)
    assert handoff is not None and handoff.channel == "voice"
    desk = desk_for(runtime)
    assert [h["channel"] for h in (await desk.queue())["waiting"]] == ["voice"]
    await desk.take(handoff.id, ANA)
    with pytest.raises(ConflictError, match="on the call"):
        await desk.reply(handoff.id, ANA, "hello")
    with pytest.raises(ConflictError, match="transfer the call"):
        await desk.take_over(cid, BOB)
