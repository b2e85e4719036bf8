"""Helpers of the desk tests: a chat handed to a person, agents, the customer's pushed frames."""

from __future__ import annotations

import asyncio
from typing import Any

from voicebot.desk.notices import customer_topic
from voicebot.desk.service import Agent, DeskService
from voicebot.live.bus import Subscription

HANDOFF_REQUEST = "I want to talk to a person"
ANA = Agent("ana", "Ana")
BOB = Agent("bob", "Bob")


async def handed_off_chat(runtime: Any) -> tuple[str, str]:
    """A chat the bot handed to a person: (conversation id, handoff id)."""
    started = await runtime.chat.start()
    cid = started.conversation.id
    reply = await runtime.chat.send(cid, HANDOFF_REQUEST)
    assert reply.action == "handoff", reply
    handoff = await runtime.handoffs.active_for(cid)
    assert handoff is not None
    return cid, handoff.id


def desk_for(runtime: Any) -> DeskService:
    return DeskService.for_runtime(runtime)


def pushes(runtime: Any, conversation_id: str) -> Subscription:
    """The frames the customer's chat socket would receive (use with ``async with``)."""
    return runtime.live.subscribe(customer_topic(conversation_id))


async def drain(subscription: Subscription) -> list[dict[str, Any]]:
    """The frames published so far (in-process delivery is synchronous: they are already queued)."""
    frames: list[dict[str, Any]] = []
    while True:
        try:
            event = await asyncio.wait_for(subscription.get(), 0.05)
        except TimeoutError:
            return frames
        frames.append(event.data)
