"""What the customer's chat is told while a human is involved, pushed over the live bus.

Each chat conversation has its own topic, ``customer.<conversation id>``; the chat socket
(voicebot.api.chat) subscribes to it while it is open and forwards every event's data as one frame:

    {"type": "notice", "kind": "queued" | "queue" | "joined" | "handed_back" | "closed",
     "text": str, "at": iso, ...}       kind "queued"/"queue" add position, estimate_seconds, based_on;
                                         "joined"/"closed" add agent (the agent's display name)
    {"type": "agent", "text": str, "agent": str, "at": iso}      an agent's reply

Only the chat channel gets these (a voice caller hears the call; an e-mail customer gets mail).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from voicebot.desk.waits import SAMPLE, WaitEstimate, estimate, waiting_text
from voicebot.live.bus import LiveBus
from voicebot.storage.handoffs import HandoffRepository
from voicebot.storage.records import HandoffRecord, HandoffStatus

CUSTOMER_TOPIC = "customer."
PUSHED_CHANNELS = frozenset({"chat"})


def customer_topic(conversation_id: str) -> str:
    return f"{CUSTOMER_TOPIC}{conversation_id}"


def push(live: LiveBus, conversation_id: str, frame: dict[str, Any]) -> None:
    live.publish(customer_topic(conversation_id), frame)


def notice(live: LiveBus, conversation_id: str, kind: str, text: str, at: datetime, **extra: Any) -> None:
    push(live, conversation_id, {"type": "notice", "kind": kind, "text": text, "at": at.isoformat(), **extra})


async def wait_for(handoffs: HandoffRepository, handoff: HandoffRecord) -> WaitEstimate:
    position = await handoffs.queue_position(handoff)
    waits = await handoffs.recent_waits(handoff.tenant_id, handoff.channel, SAMPLE)
    return estimate(position, waits)


async def announce_wait(
    live: LiveBus, handoffs: HandoffRepository, handoff: HandoffRecord, at: datetime, *, kind: str = "queued"
) -> WaitEstimate | None:
    """Tell a waiting chat customer their place and the likely wait; None when nothing was said."""
    if handoff.channel not in PUSHED_CHANNELS or handoff.status is not HandoffStatus.WAITING:
        return None
    wait = await wait_for(handoffs, handoff)
    if wait.position is None:  # taken or closed meanwhile
        return None
    notice(live, handoff.conversation_id, kind, waiting_text(wait), at, **wait.to_dict())
    return wait


async def announce_queue(live: LiveBus, handoffs: HandoffRepository, tenant_id: str, at: datetime) -> int:
    """The queue moved (a handoff was taken or closed): every waiting chat customer hears their new
    place. Returns how many were told."""
    queue = await handoffs.list(tenant_id, "waiting")  # oldest first: the position is the index
    order = {h.id: i + 1 for i, h in enumerate(queue)}
    waiting = [h for h in queue if h.channel in PUSHED_CHANNELS]
    waits: dict[str, list[float]] = {}
    for handoff in waiting:
        if handoff.channel not in waits:
            waits[handoff.channel] = await handoffs.recent_waits(tenant_id, handoff.channel, SAMPLE)
        wait = estimate(order.get(handoff.id), waits[handoff.channel])
        notice(live, handoff.conversation_id, "queue", waiting_text(wait), at, **wait.to_dict())
    return len(waiting)
