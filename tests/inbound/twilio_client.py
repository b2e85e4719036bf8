"""A Twilio Media Streams peer for tests: sends connected/start/media/dtmf/stop like Twilio does and
collects what the server sends back (media, clear)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import websockets

from voicebot.pipeline.speech_audio import mulaw_decode, mulaw_encode

FRAME = 160  # 20 ms at 8 kHz


VOICE_DATA = Path(__file__).resolve().parent.parent / "data" / "voice"


def utterance(name: str = "where_is_my_order") -> np.ndarray:
    """A real utterance (Piper joe voice, CC0) as 8 kHz int16, from tests/data/voice/NAME.ulaw."""
    return mulaw_decode((VOICE_DATA / f"{name}.ulaw").read_bytes())


@dataclass
class TwilioPeer:
    ws: Any
    stream_sid: str = "MZ00000000000000000000000000000001"
    received: list[dict[str, Any]] = field(default_factory=list)
    media_times: list[float] = field(default_factory=list)
    clears: list[float] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    @classmethod
    async def connect(
        cls,
        url: str,
        caller: str = "+38640111222",
        call_sid: str = "CA1",
        *,
        parameters: dict[str, str] | None = None,
        **kw: Any,
    ) -> TwilioPeer:
        """Open the stream as Twilio does; ``start`` carries the TwiML's custom ``parameters``
        (by default the inbound webhook's: the caller's number as ``From``)."""
        ws = await websockets.connect(url, **kw)
        peer = cls(ws)
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        start = {
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": peer.stream_sid,
            "start": {
                "streamSid": peer.stream_sid,
                "callSid": call_sid,
                "accountSid": "AC1",
                "tracks": ["inbound"],
                "customParameters": {"From": caller} if parameters is None else parameters,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        }
        await ws.send(json.dumps(start))
        peer._reader = asyncio.create_task(peer._read())
        return peer

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                event = json.loads(message)
                self.received.append(event)
                if event.get("event") == "media":
                    self.media_times.append(time.monotonic())
                elif event.get("event") == "clear":
                    self.clears.append(time.monotonic())
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()

    def bot_audio(self) -> np.ndarray:
        chunks = [
            mulaw_decode(base64.b64decode(e["media"]["payload"]))
            for e in self.received
            if e.get("event") == "media"
        ]
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)

    async def send_audio(self, pcm: np.ndarray, *, realtime: bool = True) -> None:
        for i in range(0, len(pcm), FRAME):
            chunk = pcm[i : i + FRAME]
            if len(chunk) < FRAME:
                chunk = np.pad(chunk, (0, FRAME - len(chunk)))
            payload = base64.b64encode(mulaw_encode(chunk)).decode()
            await self.ws.send(
                json.dumps({"event": "media", "streamSid": self.stream_sid, "media": {"payload": payload}})
            )
            if realtime:
                await asyncio.sleep(0.02)

    async def send_silence(self, secs: float) -> None:
        await self.send_audio(np.zeros(int(secs * 8000), np.int16))

    async def send_dtmf(self, digit: str) -> None:
        await self.ws.send(
            json.dumps({"event": "dtmf", "streamSid": self.stream_sid, "dtmf": {"digit": digit}})
        )

    async def wait_media(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.media_times) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(self.media_times)} media frames arrived")
            await asyncio.sleep(0.02)

    async def wait_quiet(self, secs: float = 0.5, timeout: float = 15.0) -> None:
        """Until no media arrived for ``secs`` (the bot finished talking)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            last = self.media_times[-1] if self.media_times else 0.0
            if self.media_times and time.monotonic() - last > secs:
                return
            await asyncio.sleep(0.05)
        raise TimeoutError("the bot kept talking")

    async def close(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await self.ws.send(json.dumps({"event": "stop", "streamSid": self.stream_sid}))
        await self.ws.close()
        if self._reader is not None:
            await self._reader
