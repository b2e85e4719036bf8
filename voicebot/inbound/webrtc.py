"""Browser calls: the ``/call`` page and its WebRTC signalling, ``POST /v1/webrtc/offer``.

1. The page (``web/static/call.html``) takes the microphone, makes an RTCPeerConnection with no
   ICE servers, waits for its candidates (no trickle) and posts ``{"sdp", "type": "offer"}``.
2. The server answers with pipecat's SmallWebRTCConnection (aiortc); the answer carries the
   ``pc_id`` and the ``conversation_id`` the call will store its turns under, so the page can show
   the transcript from ``GET /v1/conversations/{id}`` while the call runs.
3. Each connection runs one ``run_call`` as a task owned by ``WebRTCCalls``: at most ``max_calls``
   at once (503 beyond), ended by the caller (``DELETE /v1/webrtc/calls/{pc_id}`` or closing the
   peer connection), and cancelled and awaited when the app shuts down.

ICE stays on the allowed networks (loopback by default): see ``voicebot.pipeline.webrtc_transport``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from voicebot.errors import ConflictError, InputError, NotFoundError, VoicebotError
from voicebot.pipeline.call import CallInfo, CallResult
from voicebot.pipeline.webrtc_transport import (
    IN_SAMPLE_RATE,
    OUT_SAMPLE_RATE,
    IcePolicy,
    WebRTCPeer,
    serve_webrtc_call,
)

__all__ = ["DEFAULT_MAX_CALLS", "CallsFullError", "WebRTCCalls", "router"]

log = logging.getLogger(__name__)

DEFAULT_MAX_CALLS = 4  # Whisper and Piper share 2 CPU cores; more calls would queue behind them
MAX_SDP_CHARS = 64_000

CallRunner = Callable[[Any, WebRTCPeer, CallInfo], Awaitable[CallResult]]


class CallsFullError(VoicebotError):
    """Every call slot is taken; try again shortly."""

    http_status = 503
    sip_status = 503
    retryable = True


class _PresetConversation:
    """The runtime as ``run_call`` sees it, with ``chat.start`` using the conversation id chosen
    before the call, so the answer can name it. (Remove once run_call takes a conversation_id.)"""

    def __init__(self, runtime: Any, conversation_id: str) -> None:
        self._runtime = runtime
        self.chat = _PresetChat(runtime.chat, conversation_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runtime, name)


class _PresetChat:
    def __init__(self, chat: Any, conversation_id: str) -> None:
        self._chat = chat
        self._conversation_id = conversation_id

    async def start(self, **kwargs: Any) -> Any:
        kwargs.setdefault("conversation_id", self._conversation_id)
        return await self._chat.start(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._chat, name)


class WebRTCCalls:
    """The live browser calls of this process: admission, ownership of their tasks, drain."""

    def __init__(
        self,
        runtime: Any,
        *,
        max_calls: int = DEFAULT_MAX_CALLS,
        policy: IcePolicy | None = None,
        runner: CallRunner = serve_webrtc_call,
    ) -> None:
        self.runtime = runtime
        self.max_calls = max_calls
        self.policy = policy or IcePolicy()
        self._runner = runner
        self._calls: dict[str, tuple[WebRTCPeer, asyncio.Task[CallResult | None]]] = {}
        self._admitting = 0
        self._closing = False
        self.results: list[CallResult] = []

    def __len__(self) -> int:
        return len(self._calls)

    def peer(self, pc_id: str) -> WebRTCPeer | None:
        entry = self._calls.get(pc_id)
        return entry[0] if entry is not None else None

    async def offer(self, sdp: str) -> dict[str, str]:
        """Answer a browser's offer and start its call; returns the answer for the page."""
        if self._closing:
            raise CallsFullError("the server is shutting down; call again in a moment")
        if self.runtime.speech is None:
            raise CallsFullError("voice calls are not available: the speech models are not loaded")
        if len(self._calls) + self._admitting >= self.max_calls:
            log.warning("webrtc call refused: all %d call slots are taken", self.max_calls)
            raise CallsFullError(f"all {self.max_calls} call lines are busy; please try again shortly")
        self._admitting += 1
        try:
            try:
                peer, answer = await WebRTCPeer.answer(sdp, self.policy)
            except ValueError as exc:
                raise InputError(f"the SDP offer could not be used: {exc}") from exc
            conversation_id = uuid.uuid4().hex
            call = CallInfo(
                call_id=peer.pc_id,
                caller=None,
                channel="webrtc",
                in_sample_rate=IN_SAMPLE_RATE,
                out_sample_rate=OUT_SAMPLE_RATE,
            )
            task = asyncio.create_task(self._run(peer, call, conversation_id), name=f"webrtc-{peer.pc_id}")
            self._calls[peer.pc_id] = (peer, task)
        finally:
            self._admitting -= 1
        log.info("webrtc call offered: %s, conversation %s", peer.pc_id, conversation_id)
        return {"sdp": answer, "type": "answer", "pc_id": peer.pc_id, "conversation_id": conversation_id}

    async def _run(self, peer: WebRTCPeer, call: CallInfo, conversation_id: str) -> CallResult | None:
        try:
            result = await self._runner(_PresetConversation(self.runtime, conversation_id), peer, call)
            self.results.append(result)
            return result
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webrtc call %s failed", peer.pc_id)
            return None
        finally:
            self._calls.pop(peer.pc_id, None)
            await peer.close()

    async def hang_up(self, pc_id: str) -> None:
        entry = self._calls.get(pc_id)
        if entry is None:
            raise NotFoundError(f"no live call {pc_id!r}")
        _, task = entry
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def stop(self) -> None:
        """Refuse new calls, then cancel the live ones and wait until they have ended."""
        self._closing = True
        tasks = [task for _, task in self._calls.values()]
        for task in tasks:
            task.cancel()
        if tasks:
            log.info("webrtc: ending %d live calls", len(tasks))
            await asyncio.gather(*tasks, return_exceptions=True)


class Offer(BaseModel):
    sdp: str = Field(min_length=1, max_length=MAX_SDP_CHARS, description="The browser's SDP offer.")
    type: Literal["offer"] = Field(description="Always 'offer'.")
    pc_id: str | None = Field(None, max_length=200, description="Not supported: one offer per call.")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    calls = WebRTCCalls(app.state.runtime)
    app.state.webrtc_calls = calls
    try:
        yield
    finally:
        await calls.stop()


router = APIRouter(lifespan=lifespan)


def _calls(request: Request) -> WebRTCCalls:
    calls: WebRTCCalls | None = getattr(request.app.state, "webrtc_calls", None)
    if calls is None:
        raise CallsFullError("voice calls are not available: the server has not started its lifespan")
    return calls


@router.get("/call", include_in_schema=False)
async def call_page() -> FileResponse:
    from voicebot.app import STATIC

    return FileResponse(STATIC / "call.html")


@router.post("/v1/webrtc/offer")
async def post_offer(body: Offer, request: Request) -> dict[str, str]:
    if body.pc_id is not None:
        raise ConflictError("renegotiating a live call is not supported; hang up and call again")
    if "m=audio" not in body.sdp:
        raise InputError("the SDP offer has no audio (m=audio) section; the call needs a microphone")
    return await _calls(request).offer(body.sdp)


@router.delete("/v1/webrtc/calls/{pc_id}", status_code=204)
async def hang_up(pc_id: str, request: Request) -> Response:
    await _calls(request).hang_up(pc_id)
    return Response(status_code=204)
