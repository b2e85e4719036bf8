"""E-mail endpoints: the drafts agents approve, edit or reject, the messages, and the channel status.

GET  /v1/email/status                      mailboxes, listener, counts by status
GET  /v1/email/drafts?status=pending|approved|rejected|all&limit=N
GET  /v1/email/drafts/{id}                 one draft with the original message in full
POST /v1/email/drafts/{id}/approve         {"text"?: edited reply, "agent"?: name} -> sent, threaded
POST /v1/email/drafts/{id}/reject          {"note"?: why, "agent"?: name}
GET  /v1/email/messages?direction=in|out&status=...&limit=N
GET  /email/drafts                         the drafts page of the web UI
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse

from voicebot.api.schemas import DraftApproval, DraftRejection
from voicebot.auth.guard import require
from voicebot.auth.roles import Permission
from voicebot.errors import ConflictError
from voicebot.runtime import Runtime
from voicebot.storage.email import EmailRepository
from voicebot.storage.records import DraftStatus, EmailDraftRecord, EmailMessageRecord
from voicebot.text_channels.email_message import parse_email
from voicebot.text_channels.email_service import EmailService

router = APIRouter()

_DRAFT_STATUSES = "pending|approved|rejected|all"
_MESSAGE_STATUSES = "received|processing|replied|drafted|ignored|failed|queued|sending|sent"


def _repo(request: Request) -> EmailRepository:
    service = _service(request)
    if service is not None:
        return service.repo
    runtime: Runtime = request.app.state.runtime
    return EmailRepository(runtime.db)


def _service(request: Request) -> EmailService | None:
    return getattr(request.app.state, "email", None)


def _tenant(request: Request) -> str:
    runtime: Runtime = request.app.state.runtime
    return runtime.tenant.id


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def message_json(message: EmailMessageRecord) -> dict[str, Any]:
    data = asdict(message)
    for key in ("received_at", "claimed_at", "done_at"):
        data[key] = _iso(data[key])
    return data


def draft_json(draft: EmailDraftRecord, original: EmailMessageRecord | None = None) -> dict[str, Any]:
    data = asdict(draft)
    for key in ("created_at", "decided_at"):
        data[key] = _iso(data[key])
    data["status"] = draft.status.value
    if original is not None:
        data["original"] = {
            "id": original.id,
            "message_id": original.message_id,
            "from": original.from_address,
            "to": list(original.to_addresses),
            "subject": original.subject,
            "text": original.text,
            "attachments": list(original.attachments),
            "received_at": _iso(original.received_at),
        }
    return data


@router.get("/v1/email/status", dependencies=[Depends(require(Permission.EMAIL))])
async def email_status(request: Request) -> dict[str, Any]:
    service = _service(request)
    if service is not None:
        return await service.status()
    return {"enabled": False, "messages": await _repo(request).counts(_tenant(request))}


@router.get("/v1/email/drafts", dependencies=[Depends(require(Permission.EMAIL))])
async def list_drafts(
    request: Request,
    status: str = Query("pending", pattern=f"^({_DRAFT_STATUSES})$"),
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    repo = _repo(request)
    wanted = None if status == "all" else DraftStatus(status)
    drafts = await repo.drafts(_tenant(request), wanted, limit)
    out = []
    for draft in drafts:
        out.append(draft_json(draft, await repo.message(draft.message_id)))
    return {"drafts": out}


@router.get("/v1/email/drafts/{draft_id}", dependencies=[Depends(require(Permission.EMAIL))])
async def get_draft(draft_id: str, request: Request) -> dict[str, Any]:
    repo = _repo(request)
    draft = await repo.draft(draft_id)
    data = draft_json(draft, await repo.message(draft.message_id))
    parsed = parse_email(await repo.raw(draft.message_id))
    data["original"] |= {
        "from_name": parsed.from_name,
        "date": _iso(parsed.date),
        "quoted": parsed.quoted,
        "signature": parsed.signature,
        "html_only": parsed.html_only,
        "truncated": parsed.truncated,
        "forwarded": [asdict(f) for f in parsed.forwarded],
    }
    return data


def _running(request: Request) -> EmailService:
    service = _service(request)
    if service is None:
        raise ConflictError(
            "the e-mail bot is not running here (email.enabled is false): nothing can be sent"
        )
    return service


@router.post("/v1/email/drafts/{draft_id}/approve", dependencies=[Depends(require(Permission.EMAIL))])
async def approve_draft(draft_id: str, body: DraftApproval, request: Request) -> dict[str, Any]:
    service = _running(request)
    draft = await service.approve(draft_id, agent=body.agent, text=body.text)
    return draft_json(draft)


@router.post("/v1/email/drafts/{draft_id}/reject", dependencies=[Depends(require(Permission.EMAIL))])
async def reject_draft(draft_id: str, body: DraftRejection, request: Request) -> dict[str, Any]:
    service = _running(request)
    draft = await service.reject(draft_id, agent=body.agent, note=body.note)
    return draft_json(draft)


@router.get("/v1/email/messages", dependencies=[Depends(require(Permission.EMAIL))])
async def list_messages(
    request: Request,
    direction: str | None = Query(None, pattern="^(in|out)$"),
    status: str | None = Query(None, pattern=f"^({_MESSAGE_STATUSES})$"),
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    messages = await _repo(request).messages(
        _tenant(request), direction=direction, status=status, limit=limit
    )
    return {"messages": [message_json(m) for m in messages]}


@router.get("/email/drafts", include_in_schema=False)
async def drafts_page() -> FileResponse:
    from voicebot.app import STATIC

    return FileResponse(STATIC / "drafts.html")
