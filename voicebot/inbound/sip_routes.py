"""HTTP views of the SIP side: live status (for operators and bench/sip.py) and a call's SIP record."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from voicebot.auth.guard import require
from voicebot.auth.roles import Permission
from voicebot.inbound.sip import SIP_CALL_ACTION

router = APIRouter()


@router.get("/v1/sip/status", dependencies=[Depends(require(Permission.VOICE_OPS))])
async def sip_status(request: Request) -> dict[str, Any]:
    """Live SIP counters of this process: calls, dialogs, transactions, RTP ports, tasks."""
    sip = getattr(request.app.state, "sip", None)
    if sip is None:
        return {"enabled": False}
    return {"enabled": True, "port": sip.port, **sip.status()}


@router.get(
    "/v1/voice/conversations/{conversation_id}/call", dependencies=[Depends(require(Permission.VOICE_OPS))]
)
async def sip_call_record(conversation_id: str, request: Request) -> dict[str, Any]:
    """The SIP record of a call (Call-ID, From, To, hang-up reason); empty for other channels."""
    runtime = request.app.state.runtime
    await runtime.conversations.get(conversation_id)  # 404 for an unknown id
    rows = await runtime.audit.for_conversation(conversation_id, action=SIP_CALL_ACTION)
    return {"conversation_id": conversation_id, "sip": rows[-1].details if rows else None}
