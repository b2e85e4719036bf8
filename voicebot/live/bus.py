"""The live bus: events delivered at once to subscribers in every worker process of one deployment.

A conversation lives in whichever worker took it, while the supervisor's browser may be connected
to another; the console's live views therefore need every process to see every event. On one
machine the processes find each other as Unix datagram sockets in one directory (named after the
database, so two deployments, or two test databases, never mix): publishing sends one datagram to
each sibling, with no broker to run. A peer that has gone away is dropped on the next send.

Delivery is best effort and never blocks a conversation: a subscriber that does not keep up loses
its oldest events (``Subscription.dropped`` counts them), a sibling whose socket buffer is full
misses that event. Live views load their state from the API first and apply events on top.

Across machines (``VOICEBOT_REDIS_URL``), the same datagrams travel on one Redis pub/sub channel per
deployment instead (voicebot.live.redis_link).

Wire form of one datagram: a JSON header {"topic", "data", "at", "origin"}, a newline, the payload.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import itertools
import logging
import os
import socket
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from voicebot.live.redis_link import RedisLink

log = logging.getLogger(__name__)

MAX_DATAGRAM = 200_000  # below Linux's default unix datagram limit (net.core.wmem_default)
_COUNTER = itertools.count(1)


@dataclass(frozen=True, slots=True)
class LiveEvent:
    topic: str
    data: dict[str, Any]
    payload: bytes = b""
    at: float = field(default_factory=time.time)  # wall-clock seconds when it was published


class Subscription:
    """Events whose topic starts with one of ``prefixes``; iterate it inside ``async with``."""

    def __init__(self, bus: LiveBus, prefixes: tuple[str, ...], maxsize: int) -> None:
        self._bus = bus
        self.prefixes = prefixes
        self._queue: asyncio.Queue[LiveEvent] = asyncio.Queue(maxsize)
        self.dropped = 0

    def wants(self, topic: str) -> bool:
        return not self.prefixes or topic.startswith(self.prefixes)

    def offer(self, event: LiveEvent) -> None:
        if self._queue.full():  # a slow reader loses the oldest event, never blocks the publisher
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    async def get(self) -> LiveEvent:
        return await self._queue.get()

    def __aiter__(self) -> AsyncIterator[LiveEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[LiveEvent]:
        while True:
            yield await self._queue.get()

    async def __aenter__(self) -> Subscription:
        self._bus._subscriptions.add(self)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._bus._subscriptions.discard(self)


def deployment_key(database_url: str, tenant_id: str) -> str:
    """Processes on one database serving one tenant are one deployment and share their events."""
    return hashlib.sha256(f"{database_url}\n{tenant_id}".encode()).hexdigest()[:16]


def bus_directory(database_url: str, tenant_id: str) -> Path:
    """The rendezvous directory of one deployment (short: a socket path is limited to 107 bytes)."""
    return (
        Path(tempfile.gettempdir()) / f"voicebot-live-{os.getuid()}" / deployment_key(database_url, tenant_id)
    )


class LiveBus:
    """In-process fan-out, plus the sibling processes when started with a ``directory``, or every
    process of the deployment on any machine with a ``redis_url`` (then the directory is not used)."""

    def __init__(
        self, directory: Path | None = None, *, redis_url: str | None = None, channel: str = "voicebot:live"
    ) -> None:
        self._directory = None if redis_url else directory
        self._redis: RedisLink | None = None
        if redis_url:
            from voicebot.live.redis_link import RedisLink

            self._redis = RedisLink(redis_url, channel, self._accept)
        self._subscriptions: set[Subscription] = set()
        self._socket: socket.socket | None = None
        self._path: Path | None = None
        self._origin = f"{os.getpid()}-{next(_COUNTER)}"
        self.sent = 0
        self.send_failures = 0

    async def start(self) -> None:
        if self._redis is not None:
            await self._redis.start()
            return
        if self._directory is None or self._socket is not None:
            return
        self._directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self._directory / f"{self._origin}.sock"
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            sock.bind(str(path))
        except FileNotFoundError:  # the last sibling removed the directory as it stopped: make it again
            self._directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            sock.bind(str(path))
        os.chmod(path, 0o600)
        self._socket, self._path = sock, path
        asyncio.get_running_loop().add_reader(sock.fileno(), self._receive)

    async def stop(self) -> None:
        if self._redis is not None:
            await self._redis.stop()
        if self._socket is None:
            return
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self._socket.fileno())
        self._socket.close()
        self._socket = None
        if self._path is not None:
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()
            with contextlib.suppress(OSError):  # the last process of the deployment tidies up
                self._path.parent.rmdir()

    def subscribe(self, *prefixes: str, maxsize: int = 1000) -> Subscription:
        return Subscription(self, prefixes, maxsize)

    @property
    def listeners(self) -> int:
        return len(self._subscriptions)

    def publish(self, topic: str, data: dict[str, Any], payload: bytes = b"") -> None:
        """Deliver to this process's subscribers and send to every sibling; never raises on delivery."""
        event = LiveEvent(topic, data, payload)
        self._deliver(event)
        if self._redis is None and (self._socket is None or self._directory is None):
            return
        try:
            header = orjson.dumps({"topic": topic, "data": data, "at": event.at, "origin": self._origin})
        except TypeError:
            log.exception("live event %s is not JSON; not sent to the other processes", topic)
            return
        datagram = header + b"\n" + payload
        if len(datagram) > MAX_DATAGRAM:
            log.warning("live event %s is %d bytes; not sent to the other processes", topic, len(datagram))
            return
        if self._redis is not None:
            self._redis.send(datagram)
            return
        assert self._socket is not None
        for peer in self._peers():
            try:
                self._socket.sendto(datagram, str(peer))
                self.sent += 1
            except (ConnectionRefusedError, FileNotFoundError):
                with contextlib.suppress(FileNotFoundError):  # its process is gone
                    peer.unlink()
            except OSError as exc:  # buffer full (EAGAIN) or similar: this sibling misses it
                self.send_failures += 1
                if exc.errno not in (errno.EAGAIN, errno.ENOBUFS):
                    log.debug("live event to %s: %s", peer.name, exc)

    def _peers(self) -> list[Path]:
        assert self._directory is not None
        try:
            names = os.listdir(self._directory)
        except FileNotFoundError:
            return []
        own = f"{self._origin}.sock"
        return [self._directory / n for n in names if n.endswith(".sock") and n != own]

    def _receive(self) -> None:
        assert self._socket is not None
        while True:
            try:
                datagram = self._socket.recv(MAX_DATAGRAM + 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self._accept(datagram)

    def _accept(self, datagram: bytes) -> None:
        """A sibling's event, to this process's subscribers (this process's own are skipped)."""
        header, _, payload = datagram.partition(b"\n")
        try:
            meta = orjson.loads(header)
            event = LiveEvent(str(meta["topic"]), dict(meta["data"]), payload, float(meta["at"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("live bus: an unreadable datagram was dropped")
            return
        if meta.get("origin") != self._origin:
            self._deliver(event)

    def _deliver(self, event: LiveEvent) -> None:
        for subscription in list(self._subscriptions):
            if subscription.wants(event.topic):
                subscription.offer(event)


def deployment_bus(database_url: str, tenant_id: str, redis_url: str | None) -> LiveBus:
    """The bus every process of one deployment shares (Redis when configured, else this machine's)."""
    return LiveBus(
        bus_directory(database_url, tenant_id),
        redis_url=redis_url,
        channel=f"voicebot:live:{deployment_key(database_url, tenant_id)}",
    )
