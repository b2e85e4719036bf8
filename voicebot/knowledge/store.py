"""Knowledge in the database: ingest files into the tenant's store, and load it back.

The store (storage.KnowledgeRepository) is what the server answers from. Ingesting a file
replaces every passage that came from the same file before (headings may have changed), and
leaves passages from other files alone. At start-up the tenant's configured `knowledge` folders
are ingested again, so the files named in the tenant YAML are always current.

Passages written in the console (`voicebot.knowledge.console`) have a source starting with
`CONSOLE_SOURCE` ("console:"), which no file ingest replaces. A console passage that keeps the id
of a file's passage overrides it: ingest leaves the file's version out for as long as the
override exists, so an edit or an unapproval made in the console survives restarts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from voicebot.config import Tenant
from voicebot.knowledge.ingest import Passage, load_knowledge
from voicebot.storage import KnowledgeRepository, PassageRecord


@dataclass(slots=True)
class IngestReport:
    passages: int = 0
    approved: int = 0
    drafts: int = 0
    files: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)


CONSOLE_SOURCE = "console:"


def is_console(source: str) -> bool:
    return source.startswith(CONSOLE_SOURCE)


def _file_of(source: str) -> str:
    return source.split("#", 1)[0]


def to_record(p: Passage) -> PassageRecord:
    return PassageRecord(
        id=p.id,
        source=p.source,
        title=p.title,
        text=p.text,
        language=p.language,
        tags=tuple(p.tags),
        approved=p.approved,
        questions=tuple(p.questions),
        content_hash=p.content_hash,
    )


def to_passage(r: PassageRecord, default_language: str) -> Passage:
    return Passage(
        id=r.id,
        source=r.source,
        title=r.title,
        text=r.text,
        language=r.language or default_language,
        tags=tuple(r.tags),
        approved=r.approved,
        questions=tuple(r.questions),
        content_hash=r.content_hash,
    )


async def ingest_paths(
    repo: KnowledgeRepository, tenant: Tenant, paths: list[Path], *, now: datetime
) -> IngestReport:
    """Parse `paths` (raises ConfigError naming file and line/field) and replace their passages."""
    result = load_knowledge(paths, default_language=tenant.languages[0])
    files = {_file_of(p.source) for p in result.passages}
    existing = await repo.list(tenant.id, approved_only=False)
    stale = {r.source for r in existing if _file_of(r.source) in files and not is_console(r.source)}
    overridden = {r.id for r in existing if is_console(r.source)}
    records = [to_record(p) for p in result.passages if p.id not in overridden]
    await repo.replace(tenant.id, records, sources=sorted(stale | {r.source for r in records}), now=now)
    approved = sum(1 for p in result.passages if p.approved)
    return IngestReport(
        passages=len(records),
        approved=approved,
        drafts=len(records) - approved,
        files=len(files),
        skipped=list(result.skipped),
    )


async def sync_knowledge(repo: KnowledgeRepository, tenant: Tenant, *, now: datetime) -> list[Passage]:
    """Ingest the tenant's configured folders, then return every approved passage in the store."""
    if tenant.knowledge:
        await ingest_paths(repo, tenant, list(tenant.knowledge), now=now)
    return [to_passage(r, tenant.languages[0]) for r in await repo.list(tenant.id, approved_only=True)]
