"""The console's live feed: WebSocket /v1/live.

    GET /v1/live?topics=conversation.,handoff.     (permission desk or live; cookie or Bearer token)
    <- {"type": "ready", "topics": [...]}
    <- {"type": "event", "topic": str, "data": {...}, "at": float}      for each event, as it happens
    <- {"type": "lagged", "dropped": n}        when this socket fell behind and lost n events
    -> {"type": "ping"}  <- {"type": "pong"}   (anything else from the client is ignored)

Only JSON events are forwarded here (audio has its own sockets). Topics an agent may see are the
desk's ("conversation.", "handoff."); the rest need the live permission.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from voicebot.auth.guard import Principal, refuse_socket, websocket_principal
from voicebot.auth.roles import Permission

log = logging.getLogger(__name__)
router = APIRouter()

DEFAULT_TOPICS = ("conversation.", "handoff.")
DESK_TOPICS = ("conversation.", "handoff.", "desk.")


def _topics(query: str | None, principal: Principal) -> tuple[str, ...] | str:
    asked = tuple(t.strip() for t in (query or "").split(",") if t.strip()) or DEFAULT_TOPICS
    if any(t.startswith("audio.") or t == "" for t in asked):
        return "audio is not sent on this socket; use /v1/live/calls/{id}/audio"
    if not principal.can(Permission.LIVE):
        refused = [t for t in asked if not t.startswith(DESK_TOPICS)]
        if refused:
            return f"{principal.role.value} may not follow {', '.join(refused)}"
    return asked


@router.websocket("/v1/live")
async def live_feed(websocket: WebSocket, topics: str | None = None) -> None:
    principal = await websocket_principal(websocket, Permission.LIVE, Permission.DESK)
    if principal is None:
        return
    chosen = _topics(topics, principal)
    if isinstance(chosen, str):
        await refuse_socket(websocket, 4403 if "may not" in chosen else 4422, chosen)
        return
    await websocket.accept()
    runtime: Any = websocket.app.state.runtime
    async with runtime.live.subscribe(*chosen) as events:
        await websocket.send_json({"type": "ready", "topics": list(chosen)})
        reader = asyncio.create_task(_read_until_closed(websocket))
        try:
            while not reader.done():
                getter = asyncio.ensure_future(events.get())
                done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                event = getter.result()
                if events.dropped:
                    await websocket.send_json({"type": "lagged", "dropped": events.dropped})
                    events.dropped = 0
                await websocket.send_json(
                    {"type": "event", "topic": event.topic, "data": event.data, "at": event.at}
                )
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader


async def _read_until_closed(websocket: WebSocket) -> None:
    """Answer pings; return when the client goes away."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") and '"ping"' in message["text"]:
            await websocket.send_json({"type": "pong"})
