"""The live bus across machines: one Redis pub/sub channel per deployment (``VOICEBOT_REDIS_URL``).

Every process publishes its events to the channel and hands the others' to its own subscribers;
its own come back too and are skipped by origin. Sending runs in one task fed by a bounded queue,
so a slow or absent Redis never blocks a conversation: while Redis is unreachable, events for the
other machines are dropped (counted) and the link reconnects with back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

SEND_QUEUE = 2000


class RedisLink:
    def __init__(self, url: str, channel: str, deliver: Callable[[bytes], None]) -> None:
        self._url = url
        self.channel = channel
        self._deliver = deliver
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue(SEND_QUEUE)
        self._tasks: list[asyncio.Task[None]] = []
        self.dropped = 0
        self.connected = asyncio.Event()

    async def start(self) -> None:
        import redis.asyncio as redis

        self._client = redis.Redis.from_url(self._url)
        self._tasks = [
            asyncio.create_task(self._receive(), name="live-redis-receive"),
            asyncio.create_task(self._send(), name="live-redis-send"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        with contextlib.suppress(Exception):
            await self._client.aclose()

    def send(self, datagram: bytes) -> None:
        try:
            self._outbox.put_nowait(datagram)
        except asyncio.QueueFull:
            self.dropped += 1

    async def _send(self) -> None:
        while True:
            datagram = await self._outbox.get()
            try:
                await self._client.publish(self.channel, datagram)
            except Exception as exc:  # Redis down: this event misses the other machines
                self.dropped += 1
                log.debug("live bus: Redis publish failed: %s", exc)

    async def _receive(self) -> None:
        delay = 0.5
        while True:
            try:
                async with self._client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    self.connected.set()
                    delay = 0.5
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._deliver(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected.clear()
                log.warning("live bus: Redis %s unreachable (%s); retrying in %.1f s", self._url, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
