"""The supervisor's live board and the calls' media in the browser.

    GET  /live                                   the live board page (static; its data is guarded)
    GET  /v1/live/active                         (live) active conversations with their recent turns
    WS   /v1/live/calls/{conversation_id}/audio  (live) listen in: one JSON text frame
                                                 {"sample_rate", "channels", "format", "frame_ms"},
                                                 then binary 20 ms frames of PCM16 mono
    POST /v1/desk/handoffs/{handoff_id}/call     (desk) an agent accepts a held call: SDP offer -> answer
    DELETE /v1/desk/handoffs/{handoff_id}/call   (desk) the agent hangs up
    POST /v1/live/calls/{conversation_id}/whisper  (live) speak to the agent only: SDP offer -> answer

A call's media lives in the worker process that runs it; every route works from any worker. The
audio socket follows the call's frames on the live bus; a WebRTC leg is answered by the worker that
got the request, and when the call runs elsewhere its audio is relayed over the bus to the call's
worker, which accepts or refuses the leg by the same rules (voicebot.live.relay). A call that no
worker runs gets a 409 saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from voicebot.auth.guard import Principal, require, websocket_principal
from voicebot.auth.roles import Permission
from voicebot.errors import ConflictError, InputError, NotFoundError
from voicebot.live import relay
from voicebot.live.calls import LiveCall, call_directory
from voicebot.live.listen import listening
from voicebot.live.relay import MediaOp
from voicebot.pipeline.agent_leg import UNREACHABLE, BrowserRelay
from voicebot.pipeline.call_tap import FRAME_MS, TAP_RATE
from voicebot.pipeline.webrtc_transport import IcePolicy

__all__ = ["ACTIVE_WINDOW_MINUTES", "router"]

log = logging.getLogger(__name__)
router = APIRouter()

ACTIVE_WINDOW_MINUTES = 30  # an active conversation quiet for longer is not on the board
ACTIVE_LIMIT = 100
RECENT_TURNS = 8
MAX_SDP_CHARS = 64_000


@router.get("/live", include_in_schema=False)
async def live_page() -> FileResponse:
    from voicebot.app import STATIC

    return FileResponse(STATIC / "live.html")


# -- the board --------------------------------------------------------------------------------
def _turn(turn: Any) -> dict[str, Any]:
    return {
        "role": str(turn.role),
        "text": turn.text,
        "intent": turn.intent,
        "confidence": turn.confidence,
        "action": turn.action,
        "at": turn.created_at.isoformat(),
    }


@router.get("/v1/live/active")
async def active(
    request: Request, principal: Principal = Depends(require(Permission.LIVE))
) -> dict[str, Any]:
    """Conversations active or waiting for a human that moved in the last ACTIVE_WINDOW_MINUTES,
    newest first, with their last RECENT_TURNS turns; calls this process runs are marked."""
    runtime: Any = request.app.state.runtime
    since = runtime.clock() - timedelta(minutes=ACTIVE_WINDOW_MINUTES)
    calls = {c.conversation_id: c for c in call_directory(runtime).all()}
    found = []
    for status in ("active", "handoff"):
        found += await runtime.conversations.list(runtime.tenant.id, status=status, limit=ACTIVE_LIMIT)
    recent = [c for c in found if c.updated_at >= since or c.id in calls]
    recent.sort(key=lambda c: c.updated_at, reverse=True)
    out = []
    for record in recent[:ACTIVE_LIMIT]:
        turns = await runtime.conversations.turns(record.id)
        call = calls.get(record.id)
        out.append(
            {
                "conversation_id": record.id,
                "channel": record.channel,
                "status": str(record.status),
                "caller": record.caller,
                "email": record.email,
                "started_at": record.created_at.isoformat(),
                "updated_at": record.updated_at.isoformat(),
                "turns": [_turn(t) for t in turns[-RECENT_TURNS:]],
                "call": call.describe() if call is not None else None,
            }
        )
    return {"conversations": out, "window_minutes": ACTIVE_WINDOW_MINUTES}


# -- listen in --------------------------------------------------------------------------------
@router.websocket("/v1/live/calls/{conversation_id}/audio")
async def listen_audio(websocket: WebSocket, conversation_id: str) -> None:
    principal = await websocket_principal(websocket, Permission.LIVE)
    if principal is None:
        return
    runtime: Any = websocket.app.state.runtime
    await websocket.accept()  # then refusals carry their code and reason to the page
    try:
        record = await runtime.conversations.get(conversation_id)
    except (NotFoundError, InputError):
        await websocket.close(4404, "no such conversation")
        return
    if record.channel != "voice":
        await websocket.close(4409, f"conversation {conversation_id} is a {record.channel}, not a call")
        return
    log.info("listen: %s listens to %s", principal.username, conversation_id)
    await websocket.send_json(
        {"sample_rate": TAP_RATE, "channels": 1, "format": "s16le", "frame_ms": FRAME_MS}
    )
    async with (
        runtime.live.subscribe("conversation.ended") as ended,
        listening(runtime.live, conversation_id) as frames,
    ):
        reader = asyncio.create_task(_until_closed(websocket), name="listen-reader")
        end = asyncio.create_task(_until_ended(ended, conversation_id), name="listen-ended")
        sender = asyncio.create_task(_send_frames(websocket, frames), name="listen-sender")
        try:
            done, _ = await asyncio.wait({reader, end, sender}, return_when=asyncio.FIRST_COMPLETED)
            if end in done:
                with contextlib.suppress(Exception):
                    await websocket.close(1000, "the call has ended")
        finally:
            for task in (reader, end, sender):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
    log.info("listen: %s stopped listening to %s", principal.username, conversation_id)


async def _send_frames(websocket: WebSocket, frames: Any) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        async for frame in frames:
            await websocket.send_bytes(frame)


async def _until_ended(events: Any, conversation_id: str) -> None:
    async for event in events:
        if event.data.get("conversation_id") == conversation_id:
            return


async def _until_closed(websocket: WebSocket) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


# -- WebRTC legs: the agent accepting a call, the supervisor whispering -----------------------
class Offer(BaseModel):
    sdp: str = Field(min_length=1, max_length=MAX_SDP_CHARS, description="The browser's SDP offer.")
    type: Literal["offer"] = Field(description="Always 'offer'.")


def _policy(request: Request) -> IcePolicy:
    calls = getattr(request.app.state, "webrtc_calls", None)
    return calls.policy if calls is not None else IcePolicy()


async def _local_call(runtime: Any, conversation_id: str) -> LiveCall | None:
    """The call in this process, None when it may run in another worker (its media is then relayed
    over the bus), or a 409 (404) when it is no call or has ended."""
    call = call_directory(runtime).get(conversation_id)
    if call is not None:
        return call
    record = await runtime.conversations.get(conversation_id)
    if record.channel != "voice":
        raise ConflictError(f"conversation {conversation_id} is a {record.channel}, not a call")
    if str(record.status) in ("active", "handoff"):
        return None
    raise ConflictError(f"the call has ended ({record.status})")


def _check_offer(body: Offer) -> None:
    if "m=audio" not in body.sdp:
        raise InputError("the SDP offer has no audio (m=audio) section")


@router.post("/v1/desk/handoffs/{handoff_id}/call")
async def accept_call(
    handoff_id: str, body: Offer, request: Request, principal: Principal = Depends(require(Permission.DESK))
) -> dict[str, str]:
    """The agent takes the handoff and joins the held call; the answer is the agent leg's SDP."""
    _check_offer(body)
    runtime: Any = request.app.state.runtime
    handoff = await runtime.handoffs.get(handoff_id)
    if handoff.channel != "voice":
        raise ConflictError(f"handoff {handoff_id} is a {handoff.channel} conversation, not a call")
    call = await _local_call(runtime, handoff.conversation_id)
    if call is None:  # the call runs in another worker: it accepts the leg first, then we take
        leg, answer = await BrowserRelay.open(
            runtime.live,
            handoff.conversation_id,
            MediaOp.AGENT,
            principal.username,
            body.sdp,
            _policy(request),
        )
        try:
            await runtime.handoffs.take(handoff_id, principal.username, runtime.clock())
        except BaseException:
            await leg.close()
            raise
    else:
        if call.bridge is None or str(call.bridge.state) != "waiting":
            raise ConflictError(
                "this call is not waiting for an agent in the console (its transfer target is not 'desk')"
            )
        await runtime.handoffs.take(handoff_id, principal.username, runtime.clock())
        answer = await call.bridge.connect_agent(body.sdp, _policy(request), principal.username)
    runtime.live.publish(
        "handoff.taken",
        {
            "handoff_id": handoff_id,
            "conversation_id": handoff.conversation_id,
            "channel": "voice",
            "agent": principal.username,
            "at": runtime.clock().isoformat(),
        },
    )
    return {"sdp": answer, "type": "answer", "conversation_id": handoff.conversation_id}


@router.delete("/v1/desk/handoffs/{handoff_id}/call", status_code=204)
async def hang_up_call(
    handoff_id: str, request: Request, principal: Principal = Depends(require(Permission.DESK))
) -> Response:
    runtime: Any = request.app.state.runtime
    handoff = await runtime.handoffs.get(handoff_id)
    call = await _local_call(runtime, handoff.conversation_id)
    if call is None:  # the call's worker closes the agent's leg, wherever the browser's peer is
        reply = await relay.request(runtime.live, handoff.conversation_id, MediaOp.HANGUP, principal.username)
        if reply is None:
            raise ConflictError(UNREACHABLE)
        if not reply[0]:
            raise ConflictError(reply[1])
        return Response(status_code=204)
    if call.bridge is None or call.bridge.agent != principal.username:
        raise ConflictError("you are not on this call")
    await call.bridge.hang_up_agent()
    return Response(status_code=204)


@router.post("/v1/live/calls/{conversation_id}/whisper")
async def whisper(
    conversation_id: str,
    body: Offer,
    request: Request,
    principal: Principal = Depends(require(Permission.LIVE)),
) -> dict[str, str]:
    """Speak to the agent only; 409 when no agent leg of this call passes through this server."""
    _check_offer(body)
    runtime: Any = request.app.state.runtime
    call = await _local_call(runtime, conversation_id)
    if call is None:
        _, answer = await BrowserRelay.open(
            runtime.live, conversation_id, MediaOp.WHISPER, principal.username, body.sdp, _policy(request)
        )
        return {"sdp": answer, "type": "answer", "conversation_id": conversation_id}
    if call.bridge is None:
        raise ConflictError("this call has no agent bridge")
    answer = await call.bridge.add_whisper(body.sdp, _policy(request), principal.username)
    return {"sdp": answer, "type": "answer", "conversation_id": conversation_id}
