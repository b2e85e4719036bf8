"""Carrier WebSocket media: Twilio Media Streams (and Telnyx, Plivo) into ``run_call``.

Twilio, step by step:

1. The number's voice webhook is ``POST /v1/twilio/voice``. It answers TwiML that connects the
   call's audio to our WebSocket, passing the caller's number as a stream parameter::

       <Response><Connect><Stream url="wss://HOST/v1/media/twilio">
         <Parameter name="From" value="+38640111222"/></Stream></Connect></Response>

   The URL is built from the request's Host; ``ws://`` when the webhook came over plain http.
2. Twilio opens ``/v1/media/twilio`` and sends ``connected``, ``start`` (streamSid, callSid,
   customParameters.From), then ``media`` (8 kHz mu-law, 20 ms), ``dtmf`` and ``stop`` events.
   pipecat's TwilioFrameSerializer turns them into frames and bot audio back into ``media``;
   a barge-in sends Twilio ``clear`` so the audio already buffered at Twilio stops at once.
3. Signatures: when the auth token is set (the environment variable named by the tenant's
   ``voice.twilio_auth_token_env``, TWILIO_AUTH_TOKEN by default) every webhook must carry a valid
   ``X-Twilio-Signature`` (base64 HMAC-SHA1 of the full URL + the sorted POST parameters,
   concatenated name+value, keyed with the token), else 403; the WebSocket upgrade is checked the
   same way over its URL (close 1008). Without a token nothing is checked (development only).
4. Ending: when our side ends the call we close the WebSocket; with ``<Connect><Stream>`` and no
   further TwiML, Twilio then ends the call. With credentials (token + TWILIO_ACCOUNT_SID) we also
   set the call ``completed`` over the REST API (not when the caller hung up or was transferred).
   pipecat's own auto hang-up is off (it would use its own HTTP client, outside the seam tests
   control).
5. Transfer on handoff: the tenant's ``voice.transfer`` maps an intent (or handoff reason, or
   ``default``) to a number. With credentials, once the handoff message has been spoken, the live
   call is redirected with the REST API (``POST .../Calls/{CallSid}.json`` with
   ``Twiml=<Response><Dial>NUMBER</Dial></Response>``), which ends the media stream. The REST client
   is ``app.state.carrier_http`` when the app provides one (tests inject an ``httpx.MockTransport``
   there), else one per call; without credentials the handoff message is spoken, the handoff is
   queued for a person (as on every channel), the missing transfer is logged, and the call goes on.

6. Outbound campaign calls (``voicebot.outbound.twilio_dialer``) are created over the REST API with
   their own webhooks under an unguessable token: ``POST /v1/twilio/outbound/{token}`` answers the
   picked-up call with the stream TwiML, the token as stream parameter ``outbound`` (or
   ``<Hangup/>``), and ``POST /v1/twilio/outbound/{token}/status`` takes the status callbacks; both
   are signature-checked like the inbound webhook, an unknown token is 404. A ``start`` carrying
   ``outbound`` hands the socket to that call (``OutboundCalls``, on ``app.state``), which already
   holds its line and runs the campaign script on it. The webhooks must reach the process that
   placed the call (one worker, or sticky routing by path).

Telnyx (``/v1/media/telnyx``) and Plivo (``/v1/media/plivo``) use pipecat's serializers for their
stream protocols; signature checks, hang-up and transfer are not implemented for them yet.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import Iterable
from typing import Any, Protocol
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape, quoteattr

import httpx
import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request, Response, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from voicebot.auth.guard import require
from voicebot.auth.roles import Permission
from voicebot.config import VoiceConfig
from voicebot.dialogue.types import Reply
from voicebot.pipeline.call import CallResult
from voicebot.pipeline.call_dialogue import CallScript
from voicebot.pipeline.carrier import CARRIER_RATE, CarrierStart, parse_start, serve_media_call
from voicebot.pipeline.speech_audio import mulaw_encode

log = logging.getLogger(__name__)
router = APIRouter()

TWILIO_API = "https://api.twilio.com"
MEDIA_PROVIDERS = ("twilio", "telnyx", "plivo")
PLAYOUT_MARGIN_SECS = 1.0  # a message is taken as played this long after its length without a mark back


def twilio_signature(auth_token: str, url: str, params: dict[str, str] | None = None) -> str:
    """Twilio's request signature: base64(HMAC-SHA1(token, url + name1 + value1 + ...)), sorted."""
    data = url + "".join(f"{k}{v}" for k, v in sorted((params or {}).items()))
    digest = hmac.new(auth_token.encode(), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signature_valid(auth_token: str, url: str, params: dict[str, str], signature: str | None) -> bool:
    if not signature:
        return False
    return hmac.compare_digest(twilio_signature(auth_token, url, params), signature)


def credentials(voice: VoiceConfig) -> tuple[str | None, str | None]:
    """(account_sid, auth_token) from the environment variables the tenant names."""
    return os.environ.get(voice.twilio_account_sid_env) or None, os.environ.get(
        voice.twilio_auth_token_env
    ) or None


def _runtime(conn: Request | WebSocket) -> Any:
    return conn.app.state.runtime


def _public_url(conn: Request | WebSocket) -> str:
    """The URL as the carrier called it (honours X-Forwarded-Proto from a TLS-terminating proxy)."""
    url = conn.url
    proto = conn.headers.get("x-forwarded-proto")
    if proto:
        scheme = proto if url.scheme in ("http", "https") else ("wss" if proto == "https" else "ws")
        url = url.replace(scheme=scheme)
    return str(url)


def twiml(verbs: str) -> Response:
    return Response(
        f'<?xml version="1.0" encoding="UTF-8"?><Response>{verbs}</Response>', media_type="application/xml"
    )


def stream_twiml(stream_url: str, parameters: dict[str, str]) -> Response:
    params = "".join(
        f"<Parameter name={quoteattr(name)} value={quoteattr(value)}/>" for name, value in parameters.items()
    )
    return twiml(f"<Connect><Stream url={quoteattr(stream_url)}>{params}</Stream></Connect>")


async def _signed_form(request: Request) -> dict[str, str] | None:
    """The webhook's POST parameters, or None when its signature is required and wrong."""
    body = (await request.body()).decode("utf-8", errors="replace")
    params = dict(parse_qsl(body, keep_blank_values=True))
    _, token = credentials(_runtime(request).tenant.voice)
    if token is not None:
        url = _public_url(request)
        if not signature_valid(token, url, params, request.headers.get("x-twilio-signature")):
            log.warning("twilio webhook %s refused: bad or missing X-Twilio-Signature", request.url.path)
            return None
    return params


def _refused() -> Response:
    return Response("invalid signature", status_code=403, media_type="text/plain")


def _stream_url(request: Request) -> str:
    """Our media WebSocket as the carrier reaches this webhook (same host, wss behind https)."""
    secure = (request.headers.get("x-forwarded-proto") or request.url.scheme) == "https"
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{'wss' if secure else 'ws'}://{host}/v1/media/twilio"


@router.post("/v1/twilio/voice")
async def twilio_voice(request: Request) -> Response:
    params = await _signed_form(request)
    if params is None:
        return _refused()
    log.info("call offered by twilio: %s", params.get("CallSid", "?"))
    caller = params.get("From")
    return stream_twiml(_stream_url(request), {"From": caller} if caller else {})


class OutboundCall(Protocol):
    """A call we placed over the REST API, as its webhooks and media stream see it."""

    def answer(self, params: dict[str, str]) -> bool:
        """The call was picked up (``AnsweredBy`` set by answering-machine detection): True to
        connect its media stream, False to hang up."""

    def status(self, params: dict[str, str]) -> None:
        """A status callback (``CallStatus``)."""

    async def attach(self, websocket: WebSocket, start: CarrierStart) -> None:
        """The answered call's media stream (accepted, past ``start``); returns when it is over."""


class OutboundCalls:
    """The outbound calls of this process that are not over, by the unguessable token their
    webhook URLs and stream parameter carry; the last ENDED_KEPT tokens of calls that are over are
    remembered, as Twilio still calls back for them (the final status; an answer after we gave up)."""

    ENDED_KEPT = 1000

    def __init__(self) -> None:
        self._calls: dict[str, OutboundCall] = {}
        self._ended: dict[str, None] = {}  # insertion-ordered: the oldest is forgotten first

    def add(self, call: OutboundCall) -> str:
        token = secrets.token_urlsafe(24)
        self._calls[token] = call
        return token

    def get(self, token: str) -> OutboundCall | None:
        return self._calls.get(token)

    def ended(self, token: str) -> bool:
        return token in self._ended

    def discard(self, token: str) -> None:
        if self._calls.pop(token, None) is not None:
            self._ended[token] = None
            if len(self._ended) > self.ENDED_KEPT:
                del self._ended[next(iter(self._ended))]

    def __len__(self) -> int:
        return len(self._calls)


def outbound_calls(app: Any) -> OutboundCalls:
    calls: OutboundCalls | None = getattr(app.state, "twilio_outbound", None)
    if calls is None:
        calls = app.state.twilio_outbound = OutboundCalls()
    return calls


async def _outbound_call(token: str, request: Request) -> tuple[OutboundCall | None, dict[str, str]]:
    """The call an outbound webhook is about (None once it is over: Twilio still calls back) and its
    signed parameters; a bad signature is refused (403), a token never issued unknown (404)."""
    params = await _signed_form(request)
    if params is None:
        raise HTTPException(403, "invalid signature")
    calls = outbound_calls(request.app)
    call = calls.get(token)
    if call is None and not calls.ended(token):
        raise HTTPException(404, "unknown call")
    return call, params


@router.post("/v1/twilio/outbound/{token}")
async def twilio_outbound(token: str, request: Request) -> Response:
    call, params = await _outbound_call(token, request)
    if call is None or not call.answer(params):  # a 404 would have Twilio say "application error"
        return twiml("<Hangup/>")
    return stream_twiml(_stream_url(request), {"outbound": token})


@router.post("/v1/twilio/outbound/{token}/status")
async def twilio_outbound_status(token: str, request: Request) -> Response:
    call, params = await _outbound_call(token, request)
    if call is not None:
        call.status(params)
    return Response(status_code=204)


def _http(conn: WebSocket) -> httpx.AsyncClient | None:
    client: httpx.AsyncClient | None = getattr(conn.app.state, "carrier_http", None)
    return client


class TwilioCallControl:
    """REST actions on one live Twilio call (needs account SID + auth token)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        account_sid: str,
        auth_token: str,
        call_sid: str,
        *,
        api_base: str = TWILIO_API,
    ) -> None:
        self._client = client
        self._auth = (account_sid, auth_token)
        self._url = f"{api_base}/2010-04-01/Accounts/{account_sid}/Calls/{call_sid}.json"
        self.transferred = False

    async def _update(self, data: dict[str, str]) -> bool:
        try:
            response = await self._client.post(self._url, data=data, auth=self._auth, timeout=10)
        except httpx.HTTPError as exc:
            log.warning("twilio call update failed: %s", exc)
            return False
        if response.status_code >= 400:
            log.warning("twilio call update refused: %s %s", response.status_code, response.text[:200])
            return False
        return True

    async def transfer(self, target: str, reply: Reply) -> bool:
        twiml = f"<Response><Dial>{escape(target)}</Dial></Response>"
        self.transferred = await self._update({"Twiml": twiml})
        return self.transferred

    async def hang_up(self) -> None:
        if not self.transferred:
            await self._update({"Status": "completed"})

    async def cancel(self) -> None:
        """Stop a call that is still ringing."""
        await self._update({"Status": "canceled"})


async def speak_on_stream(runtime: Any, websocket: WebSocket, start: CarrierStart, text: str) -> None:
    """Say ``text`` with the call TTS voice on a Twilio media stream no pipeline runs on, and return
    once Twilio played it: it echoes a ``mark`` sent after the audio (or after the audio's length)."""
    synthesize = getattr(runtime.speech, "synthesize", None)
    if synthesize is None:
        return
    chunks: Iterable[bytes] = await asyncio.to_thread(lambda: list(synthesize(text, CARRIER_RATE)))
    samples = 0
    for chunk in chunks:
        pcm = np.frombuffer(chunk, np.int16)
        samples += len(pcm)
        payload = base64.b64encode(mulaw_encode(pcm)).decode()
        await websocket.send_text(
            json.dumps({"event": "media", "streamSid": start.stream_id, "media": {"payload": payload}})
        )
    await websocket.send_text(
        json.dumps({"event": "mark", "streamSid": start.stream_id, "mark": {"name": "end"}})
    )
    with contextlib.suppress(TimeoutError, WebSocketDisconnect, ValueError):
        async with asyncio.timeout(samples / CARRIER_RATE + PLAYOUT_MARGIN_SECS):
            while True:
                event = json.loads(await websocket.receive_text())
                if event.get("event") in ("mark", "stop"):
                    return


@router.websocket("/v1/media/{provider}")
async def media_socket(websocket: WebSocket, provider: str) -> None:
    runtime = _runtime(websocket)
    if provider not in MEDIA_PROVIDERS:
        await websocket.close(code=1008, reason=f"unknown provider {provider!r}")
        return
    voice: VoiceConfig = runtime.tenant.voice
    _, token = credentials(voice)
    if provider == "twilio" and token is not None:
        signature = websocket.headers.get("x-twilio-signature")
        if not signature_valid(token, _public_url(websocket), {}, signature):
            await websocket.close(code=1008, reason="invalid signature")
            return
    if runtime.speech is None:
        await websocket.close(code=1013, reason="voice is not available on this server")
        return
    outbound = outbound_calls(websocket.app)
    # a campaign call's stream holds the line its dialer took, so it is not refused when all are busy
    if runtime.call_admission.full and not (provider == "twilio" and len(outbound)):
        await _refuse_busy(websocket, runtime, provider)
        return
    await websocket.accept()
    try:
        start: CarrierStart | None = await parse_start(websocket, provider)
    except WebSocketDisconnect:
        return
    if start is None:
        await websocket.close(code=1002, reason="expected a 'start' event")
        return
    if start.outbound is not None:
        call = outbound.get(start.outbound)
        if call is None:
            await websocket.close(code=1008, reason="unknown outbound call")
            return
        await call.attach(websocket, start)
        return
    if runtime.call_admission.full:
        await _refuse_busy(websocket, runtime, provider)
        return
    with runtime.call_admission.admit():
        await carrier_call(runtime, websocket, start)


async def _refuse_busy(websocket: WebSocket, runtime: Any, provider: str) -> None:
    log.warning(
        "%s call refused: %d of %d lines busy",
        provider,
        runtime.call_admission.active,
        runtime.call_admission.limit,
    )
    if websocket.application_state is WebSocketState.CONNECTING:
        await websocket.accept()  # accepted so the carrier sees the close code and reason
    await websocket.close(code=1013, reason="all lines are busy; try again shortly")


async def carrier_call(
    runtime: Any, websocket: WebSocket, start: CarrierStart, *, script: CallScript | None = None
) -> CallResult:
    """Run the call on an accepted media socket past ``start``; a Twilio call with credentials is
    transferred and hung up over the REST API."""
    voice: VoiceConfig = runtime.tenant.voice
    account_sid, token = credentials(voice)
    control: TwilioCallControl | None = None
    client = _http(websocket)
    owned: httpx.AsyncClient | None = None
    if start.provider == "twilio" and account_sid and token and start.call_id:
        if client is None:
            client = owned = httpx.AsyncClient()
        control = TwilioCallControl(client, account_sid, token, start.call_id, api_base=voice.twilio_api_base)
    try:
        result = await serve_media_call(
            runtime,
            websocket,
            start,
            transfer=control.transfer if control is not None else None,
            script=script,
        )
        if control is not None and result.reason != "caller_hung_up":
            await control.hang_up()  # our side ended it (a transferred call is left alone)
        return result
    finally:
        if owned is not None:
            await owned.aclose()


@router.get(
    "/v1/voice/conversations/{conversation_id}/latency", dependencies=[Depends(require(Permission.VOICE_OPS))]
)
async def voice_latency(conversation_id: str, request: Request) -> dict[str, Any]:
    """The stored per-turn voice latencies of one call (see voicebot.pipeline.call_latency)."""
    from voicebot.pipeline.call_latency import LATENCY_ACTION

    runtime = _runtime(request)
    await runtime.conversations.get(conversation_id)  # 404 for an unknown id
    rows = await runtime.audit.for_conversation(conversation_id, action=LATENCY_ACTION)
    return {"conversation_id": conversation_id, "turns": [r.details for r in rows]}


@router.get("/v1/voice/latency", dependencies=[Depends(require(Permission.VOICE_OPS))])
async def recent_voice_latency(request: Request, limit: int = 200) -> dict[str, Any]:
    """The tenant's most recent per-turn voice latencies (newest first), for dashboards and bench/voice.py."""
    from voicebot.pipeline.call_latency import LATENCY_ACTION

    runtime = _runtime(request)
    rows = await runtime.audit.recent_actions(runtime.tenant.id, LATENCY_ACTION, min(max(limit, 1), 5000))
    return {"turns": [{**r.details, "conversation_id": r.conversation_id} for r in rows]}
