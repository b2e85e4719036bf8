"""The handoff desk's endpoints (permission ``desk``: agents, supervisors, admins) and its page.

GET  /v1/desk/queue                          waiting handoffs oldest first (position, waited_seconds),
                                             and the ones agents have now
GET  /v1/desk/handoffs/{id}                  context (summary, intent, reason, fields), the matched
                                             customer with recent orders, transcript, e-mail thread
POST /v1/desk/handoffs/{id}/take             409 when another agent has it
POST /v1/desk/handoffs/{id}/reply            {"text"}: chat -> shown in the customer's widget;
                                             e-mail -> a threaded reply through the tenant's mailer
POST /v1/desk/handoffs/{id}/hand-back        the bot answers again
POST /v1/desk/handoffs/{id}/close            resolved
POST /v1/desk/conversations/{id}/take        take over a chat (or e-mail) the bot still handles
GET  /desk                                   the desk page (desk.html; its data is guarded, the page is not)

The queue changes arrive as events on WS /v1/live (topics ``handoff.``, ``conversation.``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from pydantic import Field

from voicebot.api.schemas import Text, _Body
from voicebot.auth.guard import Principal, require
from voicebot.auth.roles import Permission
from voicebot.desk.context import queue_entry
from voicebot.desk.service import Agent, DeskService
from voicebot.storage.records import HandoffRecord

router = APIRouter()

STATIC = Path(__file__).resolve().parent.parent / "web" / "static"
DESK = require(Permission.DESK)


class DeskReply(_Body):
    text: Text = Field(max_length=20000, description="The agent's answer (plain text).")


def _desk(request: Request) -> DeskService:
    return DeskService.for_runtime(request.app.state.runtime, getattr(request.app.state, "email", None))


def _agent(principal: Principal) -> Agent:
    return Agent(principal.username, principal.display_name or principal.username)


def _entry(request: Request, handoff: HandoffRecord) -> dict[str, Any]:
    return queue_entry(handoff, request.app.state.runtime.clock())


@router.get("/v1/desk/queue")
async def desk_queue(request: Request, principal: Principal = Depends(DESK)) -> dict[str, Any]:
    return await _desk(request).queue()


@router.get("/v1/desk/handoffs/{handoff_id}")
async def desk_handoff(
    handoff_id: str, request: Request, principal: Principal = Depends(DESK)
) -> dict[str, Any]:
    return await _desk(request).detail(handoff_id)


@router.post("/v1/desk/handoffs/{handoff_id}/take")
async def desk_take(
    handoff_id: str, request: Request, principal: Principal = Depends(DESK)
) -> dict[str, Any]:
    return _entry(request, await _desk(request).take(handoff_id, _agent(principal)))


@router.post("/v1/desk/handoffs/{handoff_id}/reply")
async def desk_reply(
    handoff_id: str, body: DeskReply, request: Request, principal: Principal = Depends(DESK)
) -> dict[str, Any]:
    return await _desk(request).reply(handoff_id, _agent(principal), body.text)


@router.post("/v1/desk/handoffs/{handoff_id}/hand-back")
async def desk_hand_back(
    handoff_id: str, request: Request, principal: Principal = Depends(DESK)
) -> dict[str, Any]:
    return _entry(request, await _desk(request).hand_back(handoff_id, _agent(principal)))


@router.post("/v1/desk/handoffs/{handoff_id}/close")
async def desk_close(
    handoff_id: str, request: Request, principal: Principal = Depends(DESK)
) -> dict[str, Any]:
    return _entry(request, await _desk(request).close(handoff_id, _agent(principal)))


@router.post("/v1/desk/conversations/{conversation_id}/take")
async def desk_take_over(
    conversation_id: str, request: Request, principal: Principal = Depends(DESK)
) -> dict[str, Any]:
    return _entry(request, await _desk(request).take_over(conversation_id, _agent(principal)))


@router.get("/desk", include_in_schema=False)
async def desk_page() -> FileResponse:
    return FileResponse(STATIC / "desk.html")
