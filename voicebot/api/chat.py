"""Chat endpoints: conversations over HTTP, and the WebSocket `/v1/chat`.

WebSocket protocol (JSON text frames):
    -> {"type": "start", "conversation_id"?: str, "caller"?: str, "language"?: str}
    <- {"type": "started", "conversation_id": str, "reply": Reply}   (reply = the greeting; none on resume)
    -> {"type": "message", "text": str}
    <- {"type": "reply", "reply": Reply}
           while an agent has the conversation the bot does not answer: reply.text is "",
           reply.action "handoff", reply.reason "with_agent" (the message reached the agent)
    <- {"type": "error", "error": {"code": str, "message": str}}  (the socket stays open)
  pushed by the server at any time once started (voicebot.desk.notices):
    <- {"type": "agent", "text": str, "agent": str, "at": iso}      an agent's reply
    <- {"type": "notice", "kind": str, "text": str, "at": iso, ...}  what is happening: "queued" (handed
           to a person; position, estimate_seconds or null, based_on), "queue" (the place moved),
           "joined" / "closed" (agent: name), "handed_back" (the bot answers again)

HTTP-only clients read agent turns (role "agent") in GET /v1/conversations/{id}.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Depends, Request, WebSocket, WebSocketDisconnect

from voicebot.api.schemas import CSAT, ConversationOut, Message, NewConversation, ReplyOut, encodable
from voicebot.auth.guard import require
from voicebot.auth.roles import Permission
from voicebot.desk.notices import customer_topic
from voicebot.dialogue.types import Reply
from voicebot.errors import InputError, VoicebotError
from voicebot.live.bus import LiveBus, Subscription
from voicebot.runtime import Runtime

log = logging.getLogger(__name__)
router = APIRouter()


def _runtime(request: Request | WebSocket) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def reply_json(conversation_id: str, reply: Reply) -> dict[str, Any]:
    return {"conversation_id": conversation_id, **reply.to_dict()}


@router.post("/v1/conversations", status_code=201, response_model=ConversationOut)
async def create_conversation(body: NewConversation, request: Request) -> dict[str, Any]:
    started = await _runtime(request).chat.start(caller=body.caller, email=body.email, language=body.language)
    record = started.conversation
    return {
        "id": record.id,
        "channel": record.channel,
        "status": record.status,
        "language": started.greeting.language,
        "created_at": record.created_at.isoformat(),
        "greeting": reply_json(record.id, started.greeting),
    }


@router.get("/v1/conversations/{conversation_id}")
async def get_conversation(conversation_id: str, request: Request) -> dict[str, Any]:
    runtime = _runtime(request)
    record = await runtime.conversations.get(conversation_id)
    turns = await runtime.conversations.turns(conversation_id)
    return {
        "id": record.id,
        "channel": record.channel,
        "status": record.status,
        "language": record.language,
        "customer_id": record.customer_id,
        "created_at": record.created_at.isoformat(),
        "first_response_ms": record.first_response_ms,
        "csat": record.csat,
        "turns": [
            {
                "role": t.role,
                "text": t.text,
                "action": t.action,
                "intent": t.intent,
                "confidence": t.confidence,
                "citations": t.citations,
                "at": t.created_at.isoformat(),
            }
            for t in turns
        ],
    }


@router.post("/v1/conversations/{conversation_id}/messages", response_model=ReplyOut)
async def post_message(conversation_id: str, body: Message, request: Request) -> dict[str, Any]:
    reply = await _runtime(request).chat.send(conversation_id, body.text, caller=body.caller)
    return reply_json(conversation_id, reply)


@router.post("/v1/conversations/{conversation_id}/csat")
async def post_csat(conversation_id: str, body: CSAT, request: Request) -> dict[str, Any]:
    record = await _runtime(request).chat.csat(conversation_id, body.score)
    return {"conversation_id": record.id, "csat": record.csat}


@router.get("/v1/handoffs", dependencies=[Depends(require(Permission.DESK))])
async def list_handoffs(request: Request, status: str | None = "waiting") -> dict[str, Any]:
    runtime = _runtime(request)
    if status not in (None, "waiting", "taken", "closed", "all"):
        raise InputError("status must be one of waiting, taken, closed, all")
    rows = await runtime.handoffs.list(runtime.tenant.id, status=None if status == "all" else status)
    return {
        "handoffs": [
            {
                "id": h.id,
                "conversation_id": h.conversation_id,
                "channel": h.channel,
                "reason": h.reason,
                "summary": h.summary,
                "status": h.status,
                "created_at": h.created_at.isoformat(),
                "context": h.context,
            }
            for h in rows
        ]
    }


class _Pushes:
    """The server-pushed frames of one chat socket: its conversation's customer topic on the live
    bus, forwarded by a task the socket owns (stopped when it closes or follows another conversation)."""

    def __init__(self, websocket: WebSocket, live: LiveBus, send_lock: asyncio.Lock) -> None:
        self._websocket = websocket
        self._live = live
        self._lock = send_lock
        self._task: asyncio.Task[None] | None = None

    async def follow(self, conversation_id: str) -> None:
        await self.stop()
        subscription = self._live.subscribe(customer_topic(conversation_id), maxsize=200)
        await subscription.__aenter__()  # subscribed before "started" is sent: nothing falls in between
        self._task = asyncio.create_task(
            self._forward(subscription, customer_topic(conversation_id)), name="chat-push"
        )

    async def _forward(self, subscription: Subscription, topic: str) -> None:
        try:
            async for event in subscription:
                if event.topic != topic:  # a longer id that merely starts with this one
                    continue
                async with self._lock:
                    await self._websocket.send_json(event.data)
        except (WebSocketDisconnect, RuntimeError, OSError):
            return  # the socket went away; the receive loop ends the session
        finally:
            await subscription.__aexit__(None, None, None)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@router.websocket("/v1/chat")
async def chat_socket(websocket: WebSocket) -> None:
    runtime = _runtime(websocket)
    await websocket.accept()
    conversation_id: str | None = None
    send_lock = asyncio.Lock()  # the push task and this loop never interleave frames
    pushes = _Pushes(websocket, runtime.live, send_lock)

    async def send(payload: dict[str, Any]) -> None:
        async with send_lock:
            await websocket.send_json(payload)

    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            try:
                frame = _parse_frame(message)
                if frame["type"] == "start":
                    conversation_id, payload = await _ws_start(runtime, frame)
                    await pushes.follow(conversation_id)
                    await send(payload)
                elif frame["type"] == "message":
                    if conversation_id is None:
                        raise InputError("send {'type': 'start'} before messages")
                    # under the send lock: what the turn pushes (the "queued" notice) follows its reply
                    async with send_lock:
                        reply = await runtime.chat.send(conversation_id, _text(frame, "text"))
                        payload = {"type": "reply", "reply": reply_json(conversation_id, reply)}
                        await websocket.send_json(payload)
                else:
                    raise InputError(f"unknown frame type {frame['type']!r}; use 'start' or 'message'")
            except VoicebotError as exc:
                code = type(exc).__name__.removesuffix("Error").lower()
                await send({"type": "error", "error": {"code": code, "message": exc.message}})
            except WebSocketDisconnect:
                raise
            except Exception:  # a bug must not cost the customer the conversation: report, stay open
                log.exception("chat socket: the frame failed")
                error = {"code": "internal", "message": "something went wrong on our side; please try again"}
                await send({"type": "error", "error": error})
    except WebSocketDisconnect:
        return
    finally:
        await pushes.stop()


def _text(frame: Mapping[str, Any], name: str) -> Any:
    """frame[name] as sent; a string must be encodable text (JSON can smuggle in lone surrogates)."""
    value = frame.get(name)
    if isinstance(value, str):
        try:
            encodable(value)
        except ValueError as exc:
            raise InputError(f"'{name}' {exc}") from exc
    return value


def _parse_frame(message: Mapping[str, Any]) -> dict[str, Any]:
    text = message.get("text")
    if text is None:
        raise InputError("binary frames are not accepted; send JSON text frames")
    try:
        frame = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"the frame is not valid JSON: {exc.msg} at position {exc.pos}") from exc
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise InputError("a frame must be a JSON object with a string 'type'")
    return frame


async def _ws_start(runtime: Runtime, frame: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    existing = _text(frame, "conversation_id")
    if existing is not None:
        if not isinstance(existing, str):
            raise InputError("'conversation_id' must be a string")
        record = await runtime.conversations.get(existing)
        return record.id, {"type": "started", "conversation_id": record.id, "reply": None}
    caller, language = _text(frame, "caller"), _text(frame, "language")
    for name, value in (("caller", caller), ("language", language)):
        if value is not None and not isinstance(value, str):
            raise InputError(f"'{name}' must be a string")
    started = await runtime.chat.start(caller=caller, language=language)
    cid = started.conversation.id
    return cid, {"type": "started", "conversation_id": cid, "reply": reply_json(cid, started.greeting)}
