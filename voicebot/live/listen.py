"""Listen-in over the live bus: a call publishes its mixed audio only while someone listens.

The call and the supervisor's socket may live in different worker processes, so presence travels
on the bus too. A listener (the audio WebSocket, ``Listener``) publishes on ``listen_topic(id)``::

    {"listener": "<id>", "state": "join"}   on connecting, then every KEEPALIVE_SECS
    {"listener": "<id>", "state": "leave"}  on going away

The call (``ListenPublisher``, a sink of voicebot.pipeline.call_tap) follows that topic; while
``ListenPresence`` counts a listener whose last word is younger than EXPIRY_SECS, each 20 ms frame
is published on ``audio_topic(id)`` with the PCM as the event payload and {"seq": n} as data. A
listener whose process died simply stops renewing and expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from enum import StrEnum
from typing import Any

from voicebot.live.bus import LiveBus

__all__ = [
    "EXPIRY_SECS",
    "KEEPALIVE_SECS",
    "ListenPresence",
    "ListenPublisher",
    "ListenState",
    "audio_topic",
    "listen_topic",
    "listening",
]

log = logging.getLogger(__name__)

KEEPALIVE_SECS = 5.0
EXPIRY_SECS = 15.0  # three missed keepalives


class ListenState(StrEnum):
    JOIN = "join"
    LEAVE = "leave"


def listen_topic(conversation_id: str) -> str:
    return f"listen.{conversation_id}"


def audio_topic(conversation_id: str) -> str:
    return f"audio.{conversation_id}"


class ListenPresence:
    """Who listens to one call right now, from the join/leave announcements."""

    def __init__(self, now: Callable[[], float] = time.monotonic, expiry_secs: float = EXPIRY_SECS) -> None:
        self._now = now
        self._expiry = expiry_secs
        self._seen: dict[str, float] = {}

    def apply(self, data: dict[str, Any]) -> None:
        listener = data.get("listener")
        try:
            state = ListenState(str(data.get("state")))
        except ValueError:
            log.debug("listen: an announcement with an unknown state was ignored: %s", data)
            return
        if not isinstance(listener, str) or not listener:
            return
        if state is ListenState.JOIN:
            if listener not in self._seen:
                log.info("listen: %s joined", listener)
            self._seen[listener] = self._now()
        else:
            if self._seen.pop(listener, None) is not None:
                log.info("listen: %s left", listener)

    def count(self) -> int:
        limit = self._now() - self._expiry
        for listener in [k for k, seen in self._seen.items() if seen < limit]:
            log.info("listen: %s expired", listener)
            del self._seen[listener]
        return len(self._seen)


class ListenPublisher:
    """The tap sink that puts a call's audio on the bus while anybody listens."""

    def __init__(self, bus: LiveBus, conversation_id: str, presence: ListenPresence | None = None) -> None:
        self._bus = bus
        self._conversation_id = conversation_id
        self._topic = audio_topic(conversation_id)
        self.presence = presence or ListenPresence()
        self.published = 0

    def write(self, frame: bytes) -> None:
        if self.presence.count():
            self.published += 1
            self._bus.publish(self._topic, {"seq": self.published}, frame)

    def close(self) -> None:
        return None

    async def watch(self) -> None:
        """Follow the call's listen announcements until cancelled (the tap owns this task)."""
        async with self._bus.subscribe(listen_topic(self._conversation_id)) as events:
            async for event in events:
                self.presence.apply(event.data)


@asynccontextmanager
async def listening(
    bus: LiveBus, conversation_id: str, *, keepalive_secs: float = KEEPALIVE_SECS
) -> AsyncIterator[AsyncIterator[bytes]]:
    """Listen to one call: yields an iterator of its 20 ms PCM frames; announces this listener
    (join, keepalives) while inside, and leaves on the way out."""
    listener = uuid.uuid4().hex
    topic = listen_topic(conversation_id)

    async def keepalive() -> None:
        while True:
            bus.publish(topic, {"listener": listener, "state": ListenState.JOIN.value})
            await asyncio.sleep(keepalive_secs)

    async with bus.subscribe(audio_topic(conversation_id), maxsize=250) as events:
        task = asyncio.create_task(keepalive(), name=f"listen-keepalive-{conversation_id}")

        async def frames() -> AsyncIterator[bytes]:
            async for event in events:
                yield event.payload

        try:
            yield frames()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            bus.publish(topic, {"listener": listener, "state": ListenState.LEAVE.value})
