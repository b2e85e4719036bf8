"""Browser legs bridged into a call over WebRTC (aiortc): an agent's or a whisperer's.

``RtcLeg`` answers a browser's offer on the allowed networks (``IcePolicy``, as the /call page's
peers), hands the remote microphone to a callback as 16 kHz PCM16 mono in 20 ms frames, and sends
a ``PcmMixTrack``: named sources summed into 20 ms frames paced in real time (the caller and the
bot's briefing for an agent; a whispering supervisor is one more source). voicebot.pipeline.
agent_bridge uses them to put an agent on a call.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from voicebot.errors import InputError
from voicebot.pipeline.call_tap import FRAME_BYTES, FRAME_SAMPLES, TAP_RATE

if TYPE_CHECKING:
    from voicebot.pipeline.webrtc_transport import IcePolicy

__all__ = ["PcmMixTrack", "RtcLeg"]

log = logging.getLogger(__name__)

MAX_SOURCE_MS = 1000  # a live source further behind than this loses its oldest audio


class PcmMixTrack(MediaStreamTrack):
    """An outgoing aiortc audio track: the named sources (16 kHz PCM16 mono) summed into 20 ms
    frames, paced in real time; silence when nothing is queued. ``on_source`` sees each source's
    frame as it is sent (the tap uses it to carry the briefing)."""

    kind = "audio"

    def __init__(self, on_source: Callable[[str, bytes], None] | None = None) -> None:
        super().__init__()
        self._sources: dict[str, bytearray] = {}
        self._on_source = on_source
        self._start: float | None = None
        self._pts = 0
        self._drained: dict[str, asyncio.Event] = {}

    def feed(self, source: str, pcm: bytes) -> None:
        buffer = self._sources.setdefault(source, bytearray())
        buffer += pcm
        limit = FRAME_BYTES * MAX_SOURCE_MS // 20
        if len(buffer) > limit and source != "summary":  # live audio: keep latency bounded
            del buffer[: len(buffer) - limit]
        event = self._drained.get(source)
        if event is not None:
            event.clear()

    def pending(self, source: str) -> int:
        return len(self._sources.get(source, b""))

    async def drained(self, source: str) -> None:
        event = self._drained.setdefault(source, asyncio.Event())
        if not self.pending(source):
            event.set()
        await event.wait()

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._pts += FRAME_SAMPLES
            wait = self._start + self._pts / TAP_RATE - time.monotonic()
            if wait > 0:  # media pacing: one frame per 20 ms, as aiortc's own tracks do
                await asyncio.sleep(wait)
        total = bytes(FRAME_BYTES)
        for name, buffer in self._sources.items():
            if not buffer:
                continue
            chunk = bytes(buffer[:FRAME_BYTES]).ljust(FRAME_BYTES, b"\x00")
            del buffer[:FRAME_BYTES]
            if self._on_source is not None:
                self._on_source(name, chunk)
            total = _add(total, chunk)
            if not buffer and name in self._drained:
                self._drained[name].set()
        frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
        frame.planes[0].update(total)
        frame.pts = self._pts
        frame.sample_rate = TAP_RATE
        frame.time_base = fractions.Fraction(1, TAP_RATE)
        return frame


def _add(a: bytes, b: bytes) -> bytes:
    mixed = np.frombuffer(a, dtype=np.int16).astype(np.int32) + np.frombuffer(b, dtype=np.int16)
    return np.clip(mixed, -32768, 32767).astype(np.int16).tobytes()


class RtcLeg:
    """One browser leg (agent or whisperer) as an aiortc peer: the remote microphone goes to
    ``on_audio`` (16 kHz PCM16 mono, 20 ms); ``track`` (if given) is what the browser hears."""

    def __init__(self, name: str, on_audio: Callable[[bytes], None], track: PcmMixTrack | None) -> None:
        self.name = name
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.track = track
        self.connected = asyncio.Event()
        self.closed = asyncio.Event()
        self._on_audio = on_audio
        self._reader: asyncio.Task[None] | None = None
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    async def answer(self, offer_sdp: str, policy: IcePolicy) -> str:
        # imported here: webrtc_transport imports the call pipeline, which imports this module
        from voicebot.pipeline.webrtc_transport import confine_peer_connection, confine_sdp

        sdp, dropped = confine_sdp(offer_sdp, policy)
        if dropped:
            log.info("%s leg: %d candidates outside the allowed networks ignored", self.name, len(dropped))
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            if self.track is not None:
                self.pc.addTrack(self.track)
            confine_peer_connection(self.pc, policy)
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        except Exception as exc:
            await self.close()
            raise InputError(f"the SDP offer could not be used: {exc or type(exc).__name__}") from exc
        return str(self.pc.localDescription.sdp)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._reader is None:
            self._reader = asyncio.create_task(self._read(track), name=f"{self.name}-leg-audio")

    async def _on_state(self) -> None:
        state = self.pc.connectionState
        log.info("%s leg: %s", self.name, state)
        if state == "connected":
            self.connected.set()
        elif state in ("failed", "closed"):
            self.closed.set()

    async def _read(self, track: MediaStreamTrack) -> None:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=TAP_RATE)
        pending = bytearray()
        try:
            while True:
                frame = await track.recv()
                if not isinstance(frame, av.AudioFrame):
                    continue
                for out in resampler.resample(frame):
                    pending += bytes(out.planes[0])[: out.samples * 2]
                while len(pending) >= FRAME_BYTES:
                    self._on_audio(bytes(pending[:FRAME_BYTES]))
                    del pending[:FRAME_BYTES]
        except MediaStreamError:
            self.closed.set()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None
        if self.track is not None:
            self.track.stop()
        await self.pc.close()
        self.closed.set()
