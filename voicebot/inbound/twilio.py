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

Telnyx (``/v1/media/telnyx``) and Plivo (``/v1/media/plivo``) use pipecat's serializers for their
stream protocols; signature checks, hang-up and transfer are not implemented for them yet.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape, quoteattr

import httpx
from fastapi import APIRouter, Request, Response, WebSocket, WebSocketDisconnect

from voicebot.config import VoiceConfig
from voicebot.dialogue.types import Reply
from voicebot.pipeline.carrier import CarrierStart, parse_start, serve_media_call

log = logging.getLogger(__name__)
router = APIRouter()

TWILIO_API = "https://api.twilio.com"
MEDIA_PROVIDERS = ("twilio", "telnyx", "plivo")


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


def stream_twiml(stream_url: str, caller: str | None) -> str:
    param = f'<Parameter name="From" value={quoteattr(caller)}/>' if caller else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response><Connect><Stream url={quoteattr(stream_url)}>{param}</Stream></Connect></Response>"
    )


@router.post("/v1/twilio/voice")
async def twilio_voice(request: Request) -> Response:
    body = (await request.body()).decode("utf-8", errors="replace")
    params = dict(parse_qsl(body, keep_blank_values=True))
    voice: VoiceConfig = _runtime(request).tenant.voice
    _, token = credentials(voice)
    if token is not None:
        url = _public_url(request)
        if not signature_valid(token, url, params, request.headers.get("x-twilio-signature")):
            log.warning("twilio webhook refused: bad or missing X-Twilio-Signature")
            return Response("invalid signature", status_code=403, media_type="text/plain")
    secure = (request.headers.get("x-forwarded-proto") or request.url.scheme) == "https"
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    stream_url = f"{'wss' if secure else 'ws'}://{host}/v1/media/twilio"
    log.info("call offered by twilio: %s", params.get("CallSid", "?"))
    return Response(stream_twiml(stream_url, params.get("From")), media_type="application/xml")


def _http(conn: WebSocket) -> httpx.AsyncClient | None:
    client: httpx.AsyncClient | None = getattr(conn.app.state, "carrier_http", None)
    return client


class TwilioCallControl:
    """REST actions on one live Twilio call (needs account SID + auth token)."""

    def __init__(self, client: httpx.AsyncClient, account_sid: str, auth_token: str, call_sid: str) -> None:
        self._client = client
        self._auth = (account_sid, auth_token)
        self._url = f"{TWILIO_API}/2010-04-01/Accounts/{account_sid}/Calls/{call_sid}.json"
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
    if runtime.call_admission.full:
        log.warning(
            "%s call refused: %d of %d lines busy",
            provider,
            runtime.call_admission.active,
            runtime.call_admission.limit,
        )
        await websocket.accept()  # accepted so the carrier sees the close code and reason
        await websocket.close(code=1013, reason="all lines are busy; try again shortly")
        return
    with runtime.call_admission.admit():
        await _media_call(websocket, runtime, provider, voice)


async def _media_call(websocket: WebSocket, runtime: Any, provider: str, voice: VoiceConfig) -> None:
    account_sid, token = credentials(voice)
    await websocket.accept()
    try:
        start: CarrierStart | None = await parse_start(websocket, provider)
    except WebSocketDisconnect:
        return
    if start is None:
        await websocket.close(code=1002, reason="expected a 'start' event")
        return
    control: TwilioCallControl | None = None
    client = _http(websocket)
    owned: httpx.AsyncClient | None = None
    if provider == "twilio" and account_sid and token and start.call_id:
        if client is None:
            client = owned = httpx.AsyncClient()
        control = TwilioCallControl(client, account_sid, token, start.call_id)
    try:
        result = await serve_media_call(
            runtime, websocket, start, transfer=control.transfer if control is not None else None
        )
        if control is not None and result.reason != "caller_hung_up":
            await control.hang_up()  # our side ended it (a transferred call is left alone)
    finally:
        if owned is not None:
            await owned.aclose()


@router.get("/v1/voice/conversations/{conversation_id}/latency")
async def voice_latency(conversation_id: str, request: Request) -> dict[str, Any]:
    """The stored per-turn voice latencies of one call (see voicebot.pipeline.call_latency)."""
    from voicebot.pipeline.call_latency import LATENCY_ACTION

    runtime = _runtime(request)
    await runtime.conversations.get(conversation_id)  # 404 for an unknown id
    rows = await runtime.audit.for_conversation(conversation_id, action=LATENCY_ACTION)
    return {"conversation_id": conversation_id, "turns": [r.details for r in rows]}


@router.get("/v1/voice/latency")
async def recent_voice_latency(request: Request, limit: int = 200) -> dict[str, Any]:
    """The tenant's most recent per-turn voice latencies (newest first), for dashboards and bench/voice.py."""
    from voicebot.pipeline.call_latency import LATENCY_ACTION

    runtime = _runtime(request)
    rows = await runtime.audit.recent_actions(runtime.tenant.id, LATENCY_ACTION, min(max(limit, 1), 5000))
    return {"turns": [{**r.details, "conversation_id": r.conversation_id} for r in rows]}
