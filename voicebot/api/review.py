"""Conversation review (permission REVIEW): search, one conversation, its recording, answer marks,
and the knowledge-base gaps report.

GET    /v1/review/conversations?q=&channel=&status=&resolved=&handoff_reason=&intent=
       &min_confidence=&max_confidence=&marked=&since=&until=&limit=&cursor=   newest first
GET    /v1/review/conversations/{id}             turns (intent, confidence, citations, latency, marks)
GET    /v1/review/conversations/{id}/recording   the call's WAV (HTTP Range supported)
POST   /v1/review/turns/{turn_id}/mark           {"verdict": "right"|"wrong", "note"?}
DELETE /v1/review/turns/{turn_id}/mark           the logged-in reviewer's mark
GET    /v1/review/gaps?since=&until=&limit=&similarity=
GET    /review                                   the review page

Times without a UTC offset are read as UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from voicebot.api.schemas import Text
from voicebot.auth.guard import Principal, require
from voicebot.auth.roles import Permission
from voicebot.errors import InputError, NotFoundError
from voicebot.live.recordings import recording_path
from voicebot.review.gaps import DEFAULT_THRESHOLD, gaps_report
from voicebot.runtime import Runtime
from voicebot.storage.records import ConversationStatus, TurnRecord
from voicebot.storage.reviews import (
    ConversationFilter,
    ConversationSummary,
    MarkRecord,
    ReviewRepository,
    Verdict,
)

router = APIRouter()
REVIEW = Depends(require(Permission.REVIEW))

GAPS_DEFAULT_DAYS = 30
GAPS_DEFAULT_LIMIT = 500
GAPS_MAX_LIMIT = 1000  # clustering is O(n^2) memory, up to O(n^3) time: about 0.7 s at 1,000


class MarkBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    verdict: Verdict
    note: Text = Field("", max_length=2000)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _repo(request: Request) -> ReviewRepository:
    return ReviewRepository(_runtime(request).db)


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def summary_json(s: ConversationSummary) -> dict[str, Any]:
    c = s.conversation
    return {
        "id": c.id,
        "channel": c.channel,
        "status": c.status.value,
        "language": c.language,
        "caller": c.caller,
        "email": c.email,
        "created_at": _iso(c.created_at),
        "updated_at": _iso(c.updated_at),
        "turn_count": c.turn_count,
        "resolved_without_human": c.resolved_without_human,
        "csat": c.csat,
        "first_question": s.first_question,
        "lowest_confidence": s.lowest_confidence,
        "handoff_reason": s.handoff_reason,
        "marks": s.marks,
    }


def mark_json(m: MarkRecord) -> dict[str, Any]:
    return {
        "id": m.id,
        "turn_id": m.turn_id,
        "verdict": m.verdict.value,
        "note": m.note,
        "reviewer": m.reviewer,
        "created_at": _iso(m.created_at),
    }


def turn_json(t: TurnRecord, marks: list[MarkRecord]) -> dict[str, Any]:
    return {
        "id": t.id,
        "role": t.role.value,
        "text": t.text,
        "created_at": _iso(t.created_at),
        "action": t.action,
        "intent": t.intent,
        "confidence": t.confidence,
        "citations": t.citations,
        "reason": t.reason,
        "latency_ms": t.latency_ms,
        "marks": [mark_json(m) for m in marks if m.turn_id == t.id],
    }


@router.get("/v1/review/conversations", dependencies=[REVIEW])
async def search_conversations(
    request: Request,
    q: str | None = Query(None, max_length=200, description="Text in any turn (case-insensitive)."),
    channel: str | None = Query(None, pattern="^(chat|voice|email)$"),
    status: ConversationStatus | None = None,
    resolved: bool | None = Query(None, description="Resolved without a human (true) or not (false)."),
    handoff_reason: str | None = Query(None, max_length=100),
    intent: str | None = Query(None, max_length=100),
    min_confidence: float | None = Query(None, ge=0.0, le=1.0),
    max_confidence: float | None = Query(None, ge=0.0, le=1.0),
    marked: Verdict | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = Query(None, max_length=400),
) -> dict[str, Any]:
    if min_confidence is not None and max_confidence is not None and min_confidence > max_confidence:
        raise InputError("min_confidence: must not be above max_confidence")
    filters = ConversationFilter(
        text=q.strip() or None if q else None,
        channel=channel,
        status=status,
        resolved_without_human=resolved,
        handoff_reason=handoff_reason or None,
        intent=intent or None,
        min_confidence=min_confidence,
        max_confidence=max_confidence,
        marked=marked,
        since=_aware(since),
        until=_aware(until),
    )
    runtime = _runtime(request)
    page = await _repo(request).search(runtime.tenant.id, filters, limit=limit, cursor=cursor)
    return {"conversations": [summary_json(s) for s in page.items], "next_cursor": page.next_cursor}


@router.get("/v1/review/conversations/{conversation_id}", dependencies=[REVIEW])
async def conversation_detail(conversation_id: str, request: Request) -> dict[str, Any]:
    runtime = _runtime(request)
    record, turns, marks, handoffs = await _repo(request).conversation(runtime.tenant.id, conversation_id)
    path = recording_path(runtime.settings, runtime.tenant.id, conversation_id)
    return {
        **summary_json(ConversationSummary(record, None, None, None, {})),
        "turns": [turn_json(t, marks) for t in turns],
        "handoffs": [{**h, "created_at": _iso(h["created_at"])} for h in handoffs],
        "recording": path.is_file(),
        "recording_url": f"/v1/review/conversations/{conversation_id}/recording" if path.is_file() else None,
    }


@router.get("/v1/review/conversations/{conversation_id}/recording", dependencies=[REVIEW])
async def recording(conversation_id: str, request: Request) -> FileResponse:
    runtime = _runtime(request)
    await _repo(request).conversation(runtime.tenant.id, conversation_id)  # 404 for another tenant's
    path = recording_path(runtime.settings, runtime.tenant.id, conversation_id)
    if not path.is_file():
        raise NotFoundError(f"conversation {conversation_id} has no recording (only calls are recorded)")
    return FileResponse(path, media_type="audio/wav", filename=f"{conversation_id}.wav")


@router.post("/v1/review/turns/{turn_id}/mark")
async def mark_turn(
    turn_id: int, body: MarkBody, request: Request, principal: Principal = REVIEW
) -> dict[str, Any]:
    runtime = _runtime(request)
    mark = await _repo(request).mark(
        runtime.tenant.id,
        turn_id,
        verdict=body.verdict,
        note=body.note.strip(),
        reviewer=principal.username,
        now=runtime.clock(),
    )
    await runtime.audit.record(
        tenant_id=runtime.tenant.id,
        actor=principal.username,
        action="review.mark",
        now=runtime.clock(),
        conversation_id=mark.conversation_id,
        details={"turn_id": turn_id, "verdict": mark.verdict.value, "note": mark.note},
    )
    return mark_json(mark)


@router.delete("/v1/review/turns/{turn_id}/mark", status_code=204)
async def unmark_turn(turn_id: int, request: Request, principal: Principal = REVIEW) -> None:
    runtime = _runtime(request)
    await _repo(request).unmark(runtime.tenant.id, turn_id, reviewer=principal.username)
    await runtime.audit.record(
        tenant_id=runtime.tenant.id,
        actor=principal.username,
        action="review.unmark",
        now=runtime.clock(),
        details={"turn_id": turn_id},
    )


@router.get("/v1/review/gaps", dependencies=[REVIEW])
async def gaps(
    request: Request,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(GAPS_DEFAULT_LIMIT, ge=1, le=GAPS_MAX_LIMIT),
    similarity: float = Query(DEFAULT_THRESHOLD, ge=0.1, le=0.99),
) -> dict[str, Any]:
    runtime = _runtime(request)
    end = _aware(until) or runtime.clock()
    start = _aware(since) or end - timedelta(days=GAPS_DEFAULT_DAYS)
    if start >= end:
        raise InputError("since: must be before until")
    questions, capped = await ReviewRepository(runtime.db).unanswered(
        runtime.tenant.id, since=start, until=end, limit=limit
    )
    knowledge = runtime.knowledge

    def answers(text: str, language: str | None, vector: np.ndarray[Any, Any]) -> float:
        lang = language if language in knowledge.languages else None
        hits = knowledge.search(text, language=lang, vector=vector, top_k=1)
        return hits[0].confidence if hits else 0.0

    report = await gaps_report(
        questions,
        embed=runtime.embedder.embed,
        limit=limit,
        capped=capped,
        threshold=similarity,
        answers=answers,
        answer_threshold=runtime.tenant.threshold,
    )
    return {
        "since": start.isoformat(),
        "until": end.isoformat(),
        "questions": report.questions,
        "limit": report.limit,
        "capped": report.capped,
        "note": (
            f"only the newest {limit} unanswered questions were grouped; narrow the dates to see older ones"
            if report.capped
            else None
        ),
        "similarity": report.threshold,
        "groups": [g.to_dict() for g in report.groups],
    }


@router.get("/review", include_in_schema=False)
async def review_page() -> FileResponse:
    from voicebot.app import STATIC

    return FileResponse(STATIC / "review.html")
