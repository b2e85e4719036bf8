"""Keep the running knowledge base in step with the database, in every worker process.

`LiveKnowledge.changed()` is what a KB edit calls: it rebuilds this process's index from the
database at once (the edit answers the very next question) and publishes ``knowledge.changed``
on the live bus. Every other process runs `LiveKnowledge.start()`, whose task reloads from the
database on that event (its own events are recognised by `origin` and skipped).

A rebuild embeds only new or changed texts (the vector cache keeps the rest) in a worker thread,
then `KnowledgeBase.adopt` swaps the index in one step on the event loop, so conversations being
answered meanwhile use either the old index or the new one, never a mix. Rebuilds are serialised:
edits in quick succession each end with the database's latest state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

from voicebot.config import Tenant
from voicebot.knowledge.retrieval import KnowledgeBase
from voicebot.knowledge.store import to_passage
from voicebot.storage import KnowledgeRepository

__all__ = ["TOPIC", "LiveKnowledge"]

log = logging.getLogger("voicebot.knowledge")

TOPIC = "knowledge.changed"


class Bus(Protocol):
    def publish(self, topic: str, data: dict[str, Any], payload: bytes = b"") -> None: ...

    def subscribe(self, *prefixes: str) -> AbstractAsyncContextManager[Any]: ...


class LiveKnowledge:
    def __init__(
        self,
        knowledge: KnowledgeBase,
        repo: KnowledgeRepository,
        tenant: Tenant,
        bus: Bus,
        clock: Callable[[], datetime],
    ) -> None:
        self.knowledge = knowledge
        self._repo = repo
        self._tenant = tenant
        self._bus = bus
        self._clock = clock
        self.origin = uuid.uuid4().hex
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self.reloads = 0

    async def reload(self) -> dict[str, Any]:
        """Rebuild the index from the database's approved passages; returns the new stats."""
        async with self._lock:
            records = await self._repo.list(self._tenant.id, approved_only=True)
            passages = [to_passage(r, self._tenant.languages[0]) for r in records]
            fresh = await asyncio.to_thread(self.knowledge.rebuilt, passages)
            self.knowledge.adopt(fresh)
            self.reloads += 1
        stats = self.knowledge.stats()
        log.info("knowledge base reloaded: %d passages indexed", stats["indexed"])
        return stats

    async def changed(self, **details: Any) -> dict[str, Any]:
        """After an edit: reload here, then tell the other processes."""
        stats = await self.reload()
        self._bus.publish(TOPIC, {"origin": self.origin, "at": self._clock().isoformat(), **details})
        return stats

    async def start(self) -> None:
        """Reload on every other process's ``knowledge.changed`` until `stop()`."""
        if self._task is None:
            self._task = asyncio.create_task(self._follow(), name="knowledge-reloader")
            await self._ready.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _follow(self) -> None:
        async with self._bus.subscribe(TOPIC) as events:
            self._ready.set()
            async for event in events:
                if event.data.get("origin") == self.origin:
                    continue
                try:
                    await self.reload()
                except Exception:  # keep following: the next change reloads again
                    log.exception("knowledge base: reload after another process's edit failed")
