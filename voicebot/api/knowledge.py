"""Knowledge-base passages, edited live (permission KNOWLEDGE).

GET    /v1/knowledge/passages?q=&origin=file|console|override&approved=true|false&language=&limit=&offset=
GET    /v1/knowledge/passages/{id}
POST   /v1/knowledge/passages              {"text", "title"?, "questions"?, "language"?, "tags"?, "approved"?}
PATCH  /v1/knowledge/passages/{id}         any of the same fields
POST   /v1/knowledge/passages/{id}/approve
POST   /v1/knowledge/passages/{id}/unapprove
DELETE /v1/knowledge/passages/{id}         a console passage; on an edited file passage, the file's version

Each change is stored, then this process's index is rebuilt before the response (the next
question is answered from it) and the other worker processes reload on the live bus
(`voicebot.knowledge.live`). The router's lifespan starts that follower in every process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from voicebot.api.schemas import Text
from voicebot.auth.guard import Principal, require
from voicebot.auth.roles import Permission
from voicebot.knowledge.console import KnowledgeEditor, Origin, PassageFields, origin_of
from voicebot.knowledge.live import LiveKnowledge
from voicebot.runtime import Runtime
from voicebot.storage import PassageRecord


def live_knowledge(app: FastAPI) -> LiveKnowledge:
    """The app's LiveKnowledge (made on first use, e.g. when a test serves the app without its lifespan)."""
    live: LiveKnowledge | None = getattr(app.state, "live_knowledge", None)
    if live is None:
        runtime: Runtime = app.state.runtime
        live = LiveKnowledge(
            runtime.knowledge, runtime.knowledge_repo, runtime.tenant, runtime.live, runtime.clock
        )
        app.state.live_knowledge = live
    return live


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Runs after the app's own lifespan has started the runtime: follow other processes' edits."""
    live = live_knowledge(app)
    await live.start()
    try:
        yield
    finally:
        await live.stop()


router = APIRouter(lifespan=lifespan)
KNOWLEDGE = Depends(require(Permission.KNOWLEDGE))


class PassageBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text | None = Field(None, max_length=20_000, description="The passage; for an FAQ, the answer.")
    title: Text | None = Field(None, max_length=500)
    questions: list[Text] | None = Field(None, max_length=20, description="FAQ questions it answers.")
    language: Text | None = Field(None, max_length=3)
    tags: list[Text] | None = Field(None, max_length=20)
    approved: bool | None = None

    def fields(self) -> PassageFields:
        return PassageFields(
            text=self.text,
            title=self.title,
            questions=tuple(self.questions) if self.questions is not None else None,
            language=self.language,
            tags=tuple(self.tags) if self.tags is not None else None,
            approved=self.approved,
        )


def passage_json(p: PassageRecord) -> dict[str, Any]:
    return {
        "id": p.id,
        "source": p.source,
        "origin": origin_of(p).value,
        "title": p.title,
        "text": p.text,
        "questions": list(p.questions),
        "language": p.language,
        "tags": list(p.tags),
        "approved": p.approved,
        "updated_at": p.updated_at.isoformat() if p.updated_at else None,
    }


def _editor(request: Request) -> KnowledgeEditor:
    runtime: Runtime = request.app.state.runtime
    live = live_knowledge(request.app)
    return KnowledgeEditor(
        runtime.knowledge_repo, runtime.tenant, clock=runtime.clock, on_change=live.changed
    )


async def _audit(request: Request, principal: Principal, action: str, details: dict[str, Any]) -> None:
    runtime: Runtime = request.app.state.runtime
    await runtime.audit.record(
        tenant_id=runtime.tenant.id,
        actor=principal.username,
        action=f"knowledge.{action}",
        now=runtime.clock(),
        details=details,
    )


def _matches(p: PassageRecord, q: str) -> bool:
    needle = q.casefold()
    return any(needle in part.casefold() for part in (p.title, p.text, p.source, *p.questions))


@router.get("/v1/knowledge/passages", dependencies=[KNOWLEDGE])
async def list_passages(
    request: Request,
    q: str | None = Query(None, max_length=200),
    origin: Origin | None = None,
    approved: bool | None = None,
    language: str | None = Query(None, max_length=3),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> dict[str, Any]:
    # a tenant's KB is thousands of passages at most: filtered here, read in one indexed query
    runtime: Runtime = request.app.state.runtime
    passages = await _editor(request).list()
    chosen = [
        p
        for p in passages
        if (origin is None or origin_of(p) is origin)
        and (approved is None or p.approved is approved)
        and (language is None or p.language == language)
        and (not q or _matches(p, q))
    ]
    chosen.sort(
        key=lambda p: (origin_of(p) is Origin.FILE, -(p.updated_at.timestamp() if p.updated_at else 0))
    )
    return {
        "passages": [passage_json(p) for p in chosen[offset : offset + limit]],
        "total": len(chosen),
        "languages": list(runtime.tenant.languages),
        "offset": offset,
        "limit": limit,
    }


@router.get("/v1/knowledge/passages/{passage_id}", dependencies=[KNOWLEDGE])
async def get_passage(passage_id: str, request: Request) -> dict[str, Any]:
    return passage_json(await _editor(request).get(passage_id))


@router.post("/v1/knowledge/passages", status_code=201)
async def add_passage(
    body: PassageBody, request: Request, principal: Principal = KNOWLEDGE
) -> dict[str, Any]:
    record = await _editor(request).add(body.fields())
    await _audit(request, principal, "add", {"passage_id": record.id, "title": record.title})
    return passage_json(record)


@router.patch("/v1/knowledge/passages/{passage_id}")
async def edit_passage(
    passage_id: str, body: PassageBody, request: Request, principal: Principal = KNOWLEDGE
) -> dict[str, Any]:
    record = await _editor(request).edit(passage_id, body.fields())
    changed = sorted(body.model_dump(exclude_none=True))
    await _audit(request, principal, "edit", {"passage_id": passage_id, "fields": changed})
    return passage_json(record)


@router.post("/v1/knowledge/passages/{passage_id}/approve")
async def approve_passage(
    passage_id: str, request: Request, principal: Principal = KNOWLEDGE
) -> dict[str, Any]:
    record = await _editor(request).edit(passage_id, PassageFields(approved=True))
    await _audit(request, principal, "approve", {"passage_id": passage_id})
    return passage_json(record)


@router.post("/v1/knowledge/passages/{passage_id}/unapprove")
async def unapprove_passage(
    passage_id: str, request: Request, principal: Principal = KNOWLEDGE
) -> dict[str, Any]:
    record = await _editor(request).edit(passage_id, PassageFields(approved=False))
    await _audit(request, principal, "unapprove", {"passage_id": passage_id})
    return passage_json(record)


@router.delete("/v1/knowledge/passages/{passage_id}")
async def delete_passage(
    passage_id: str, request: Request, principal: Principal = KNOWLEDGE
) -> dict[str, Any]:
    origin = await _editor(request).delete(passage_id)
    outcome = "restored_from_file" if origin is Origin.OVERRIDE else "deleted"
    await _audit(request, principal, "delete", {"passage_id": passage_id, "outcome": outcome})
    return {"id": passage_id, "outcome": outcome}
