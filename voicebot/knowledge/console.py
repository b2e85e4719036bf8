"""Knowledge-base edits made in the web console: add, edit, approve/unapprove and delete passages.

Every change is written to the database first, then `on_change` runs (the caller rebuilds the
running index and tells the other processes, see `voicebot.knowledge.live`).

Where a passage comes from decides what an edit does (`Origin`):

- ``console``: written here (source ``console:<slug>``, id ``c-<hex>``). Edited and deleted in place.
- ``file``: ingested from the tenant's folders. Editing or (un)approving it stores a console
  override with the same id (source ``console:<file source>``), which the start-up ingest leaves
  alone (`voicebot.knowledge.store`), so the change survives restarts. Deleting it is refused:
  the next start would ingest it again; unapprove it, or remove it from its file.
- ``override``: a file passage edited here. Deleting it restores the file's version.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from voicebot.config import Tenant
from voicebot.errors import ConflictError, InputError
from voicebot.knowledge.ingest import Passage
from voicebot.knowledge.store import CONSOLE_SOURCE, ingest_paths, is_console, to_record
from voicebot.knowledge.text import slug
from voicebot.storage import KnowledgeRepository, PassageRecord

__all__ = ["MAX_TEXT_CHARS", "KnowledgeEditor", "Origin", "PassageFields", "origin_of"]

MAX_TEXT_CHARS = 20_000
MAX_TITLE_CHARS = 500  # the column's width
MAX_QUESTIONS = 20
MAX_QUESTION_CHARS = 1_000
MAX_TAGS = 20


class Origin(StrEnum):
    FILE = "file"
    CONSOLE = "console"
    OVERRIDE = "override"


def origin_of(record: PassageRecord) -> Origin:
    if not is_console(record.source):
        return Origin.FILE
    return Origin.CONSOLE if record.id.startswith("c-") else Origin.OVERRIDE


@dataclass(frozen=True, slots=True)
class PassageFields:
    """What an add or an edit sets; None leaves a field as it is (an add needs `text`)."""

    text: str | None = None
    title: str | None = None
    questions: tuple[str, ...] | None = None
    language: str | None = None
    tags: tuple[str, ...] | None = None
    approved: bool | None = None


class KnowledgeEditor:
    def __init__(
        self,
        repo: KnowledgeRepository,
        tenant: Tenant,
        *,
        clock: Callable[[], datetime],
        on_change: Callable[[], Awaitable[Any]],
    ) -> None:
        self._repo = repo
        self._tenant = tenant
        self._clock = clock
        self._on_change = on_change

    async def list(self) -> list[PassageRecord]:
        return await self._repo.list(self._tenant.id, approved_only=False)

    async def get(self, passage_id: str) -> PassageRecord:
        return await self._repo.get(self._tenant.id, passage_id)

    async def add(self, fields: PassageFields) -> PassageRecord:
        if fields.text is None:
            raise InputError("text: the passage needs a text (the answer)")
        questions = self._questions(fields.questions or ())
        title = fields.title if fields.title is not None else (questions[0] if questions else "")
        passage = self._passage(
            passage_id=f"c-{uuid.uuid4().hex[:16]}",
            source=f"{CONSOLE_SOURCE}{slug(title or fields.text)[:60].rstrip('-') or 'passage'}",
            title=title,
            text=fields.text,
            questions=questions,
            language=fields.language or self._tenant.languages[0],
            tags=fields.tags or (),
            approved=True if fields.approved is None else fields.approved,
        )
        return await self._store(passage)

    async def edit(self, passage_id: str, fields: PassageFields) -> PassageRecord:
        old = await self.get(passage_id)
        source = old.source if is_console(old.source) else f"{CONSOLE_SOURCE}{old.source}"
        passage = self._passage(
            passage_id=old.id,
            source=source[:500],
            title=old.title if fields.title is None else fields.title,
            text=old.text if fields.text is None else fields.text,
            questions=old.questions if fields.questions is None else self._questions(fields.questions),
            language=fields.language or old.language or self._tenant.languages[0],
            tags=old.tags if fields.tags is None else fields.tags,
            approved=old.approved if fields.approved is None else fields.approved,
        )
        return await self._store(passage)

    async def delete(self, passage_id: str) -> Origin:
        """Delete a console passage, or drop an override (the file's version comes back)."""
        old = await self.get(passage_id)
        origin = origin_of(old)
        if origin is Origin.FILE:
            raise ConflictError(
                f"passage {passage_id} comes from the file {old.source.split('#', 1)[0]}: the next start "
                "would read it again; unapprove it here, or remove it from the file"
            )
        await self._repo.delete(self._tenant.id, passage_id)
        if origin is Origin.OVERRIDE and self._tenant.knowledge:
            await ingest_paths(self._repo, self._tenant, list(self._tenant.knowledge), now=self._clock())
        await self._on_change()
        return origin

    async def _store(self, passage: Passage) -> PassageRecord:
        record = await self._repo.save(self._tenant.id, to_record(passage), now=self._clock())
        await self._on_change()
        return record

    def _passage(
        self,
        *,
        passage_id: str,
        source: str,
        title: str,
        text: str,
        questions: tuple[str, ...],
        language: str,
        tags: tuple[str, ...],
        approved: bool,
    ) -> Passage:
        text = text.strip()
        if not text:
            raise InputError("text: must not be empty")
        if len(text) > MAX_TEXT_CHARS:
            raise InputError(f"text: at most {MAX_TEXT_CHARS} characters")
        title = " ".join(title.split())
        if len(title) > MAX_TITLE_CHARS:
            raise InputError(f"title: at most {MAX_TITLE_CHARS} characters")
        if language not in self._tenant.languages:
            known = ", ".join(self._tenant.languages)
            raise InputError(f"language: {language!r} is not one of the tenant's languages ({known})")
        clean_tags = tuple(dict.fromkeys(t.strip().lower() for t in tags if t.strip()))
        if len(clean_tags) > MAX_TAGS or any(len(t) > 100 for t in clean_tags):
            raise InputError(f"tags: at most {MAX_TAGS} tags of up to 100 characters")
        return Passage(
            id=passage_id,
            source=source,
            title=title or text.split("\n", 1)[0][:80],
            text=text,
            language=language,
            tags=clean_tags,
            approved=approved,
            questions=questions,
        )

    @staticmethod
    def _questions(questions: tuple[str, ...]) -> tuple[str, ...]:
        clean = tuple(dict.fromkeys(" ".join(q.split()) for q in questions if q.strip()))
        if len(clean) > MAX_QUESTIONS:
            raise InputError(f"questions: at most {MAX_QUESTIONS}")
        if any(len(q) > MAX_QUESTION_CHARS for q in clean):
            raise InputError(f"questions: each at most {MAX_QUESTION_CHARS} characters")
        return clean
