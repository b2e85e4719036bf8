"""Carrier WebSocket media streams (Twilio, Telnyx, Plivo) as pipecat transports for ``run_call``.

``parse_start`` reads the stream's opening events up to ``start`` (ids, caller number, encoding);
``serve_media_call`` puts pipecat's FastAPIWebsocketTransport with the carrier's FrameSerializer
(8 kHz G.711 on the wire, 8 kHz PCM in the pipeline) around the socket and runs the call.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from fastapi import WebSocket
from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.serializers.plivo import PlivoFrameSerializer
from pipecat.serializers.telnyx import TelnyxFrameSerializer
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport

from voicebot.pipeline.call import CallInfo, CallResult, run_call
from voicebot.pipeline.call_dialogue import CallScript, TransferHook

log = logging.getLogger(__name__)

CARRIER_RATE = 8000
MAX_OPENING_EVENTS = 5  # "connected" (Twilio), "start"; anything else first is a protocol error


@dataclass(frozen=True, slots=True)
class CarrierStart:
    provider: str
    stream_id: str
    call_id: str | None
    caller: str | None
    called: str | None
    encoding: str = "PCMU"
    outbound: str | None = None  # Twilio: the token of our campaign call this stream answers


def start_from_event(provider: str, event: dict[str, Any]) -> CarrierStart | None:
    """The CarrierStart of a ``start`` event, None for any other event."""
    if event.get("event") != "start":
        return None
    start = event.get("start") or {}
    if provider == "twilio":
        custom = start.get("customParameters") or {}
        return CarrierStart(
            provider,
            stream_id=str(start.get("streamSid") or event.get("streamSid") or ""),
            call_id=start.get("callSid"),
            caller=custom.get("From"),
            called=custom.get("To"),
            outbound=custom.get("outbound"),
        )
    if provider == "telnyx":
        media = start.get("media_format") or {}
        return CarrierStart(
            provider,
            stream_id=str(event.get("stream_id") or ""),
            call_id=start.get("call_control_id"),
            caller=start.get("from"),
            called=start.get("to"),
            encoding=str(media.get("encoding") or "PCMU"),
        )
    return CarrierStart(
        provider,
        stream_id=str(start.get("streamId") or event.get("streamId") or ""),
        call_id=start.get("callId"),
        caller=start.get("from") or (event.get("extra_headers") or {}).get("From"),
        called=start.get("to"),
    )


async def parse_start(websocket: WebSocket, provider: str) -> CarrierStart | None:
    for _ in range(MAX_OPENING_EVENTS):
        text = await websocket.receive_text()
        try:
            event = json.loads(text)
        except json.JSONDecodeError:
            return None
        if not isinstance(event, dict):
            return None
        found = start_from_event(provider, event)
        if found is not None:
            return found
    return None


def serializer_for(start: CarrierStart) -> FrameSerializer:
    if start.provider == "twilio":
        return TwilioFrameSerializer(
            start.stream_id,
            call_sid=start.call_id,
            params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
        )
    if start.provider == "telnyx":
        return TelnyxFrameSerializer(
            start.stream_id,
            outbound_encoding=start.encoding,
            inbound_encoding=start.encoding,
            call_control_id=start.call_id,
            params=TelnyxFrameSerializer.InputParams(auto_hang_up=False),
        )
    return PlivoFrameSerializer(
        start.stream_id, call_id=start.call_id, params=PlivoFrameSerializer.InputParams(auto_hang_up=False)
    )


async def serve_media_call(
    runtime: Any,
    websocket: WebSocket,
    start: CarrierStart,
    *,
    transfer: TransferHook | None = None,
    script: CallScript | None = None,
) -> CallResult:
    transport = FastAPIWebsocketTransport(
        websocket=websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            add_wav_header=False,
            serializer=serializer_for(start),
            allowed_origins=[],
        ),
    )
    call = CallInfo(
        call_id=start.call_id or start.stream_id,
        caller=start.caller,
        called=start.called,
        channel=start.provider,
        in_sample_rate=CARRIER_RATE,
        out_sample_rate=CARRIER_RATE,
    )
    return await run_call(runtime, runtime.speech, transport, call, transfer=transfer, script=script)
