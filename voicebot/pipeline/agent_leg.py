"""Browser legs bridged into a call over WebRTC (aiortc): an agent's or a whisperer's.

``RtcLeg`` answers a browser's offer on the allowed networks (``IcePolicy``, as the /call page's
peers), hands the remote microphone to a callback as 16 kHz PCM16 mono in 20 ms frames, and sends
a ``PcmMixTrack``: named sources summed into 20 ms frames paced in real time (the caller and the
bot's briefing for an agent; a whispering supervisor is one more source). voicebot.pipeline.
agent_bridge uses them to put an agent on a call.

When the browser's request reached another worker process than the call's, the two halves are
joined over the live bus (voicebot.live.relay): ``BrowserRelay`` is the browser's worker, an
``RtcLeg`` whose microphone goes on the bus and whose track plays what comes back; ``RemoteLeg``
is the call's worker, standing in for the ``RtcLeg`` the bridge would otherwise hold (its
``PcmMixTrack`` is pulled in real time and each frame goes on the bus).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from voicebot.errors import ConflictError, InputError
from voicebot.live.bus import LiveBus
from voicebot.live.relay import (
    BusLink,
    LinkEvent,
    MediaOp,
    call_topic,
    leg_topic,
    new_leg_id,
    request,
)
from voicebot.pipeline.call_tap import FRAME_BYTES, FRAME_SAMPLES, TAP_RATE

if TYPE_CHECKING:
    from voicebot.pipeline.webrtc_transport import IcePolicy

__all__ = ["UNREACHABLE", "BrowserRelay", "PcmMixTrack", "RemoteLeg", "RtcLeg", "browser_relays"]

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


UNREACHABLE = (
    "this call's media is in no running server process (it was transferred out by SIP REFER or a "
    "carrier redirect, or its worker stopped): it cannot be bridged"
)


class RemoteLeg:
    """The call's side of a browser leg whose WebRTC peer is in another worker process: the same
    surface as ``RtcLeg`` for the bridge (``connected``, ``closed``, ``track``, ``close``). The
    browser's microphone arrives through ``link`` to ``on_audio``; ``track`` (if any) is pulled in
    real time and each 20 ms frame goes to the browser's worker."""

    def __init__(
        self, name: str, on_audio: Callable[[bytes], None], track: PcmMixTrack | None, link: BusLink
    ) -> None:
        self.name = name
        self.track = track
        self.link = link
        self.connected = asyncio.Event()
        self.closed = asyncio.Event()
        link.on_frame = on_audio
        link.on_event = self._on_event
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._run(), name=f"{self.name}-relay"))
        if self.track is not None:
            self._tasks.append(asyncio.create_task(self._pump(self.track), name=f"{self.name}-relay-pump"))

    def _on_event(self, event: LinkEvent) -> None:
        if event is LinkEvent.CONNECTED:
            log.info("%s leg (relayed): connected", self.name)
            self.connected.set()

    async def _run(self) -> None:
        keepalive = asyncio.create_task(self.link.keep_alive())
        try:
            await self.link.closed.wait()
        finally:
            keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keepalive
            self.closed.set()

    async def _pump(self, track: PcmMixTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while not self.link.closed.is_set():
                frame = await track.recv()
                self.link.send_frame(bytes(frame.planes[0])[:FRAME_BYTES])

    async def close(self) -> None:
        self.link.end("the call closed the leg")
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.track is not None:
            self.track.stop()
        self.closed.set()


_RELAYS: weakref.WeakKeyDictionary[LiveBus, set[BrowserRelay]] = weakref.WeakKeyDictionary()


def browser_relays(bus: LiveBus) -> set[BrowserRelay]:
    """The relayed browser legs this process terminates (per bus, so per runtime)."""
    relays = _RELAYS.get(bus)
    if relays is None:
        relays = _RELAYS[bus] = set()
    return relays


class BrowserRelay:
    """The browser's worker of a relayed leg: an ``RtcLeg`` whose microphone goes to the call's
    worker over the bus and whose track plays what the call's worker sends back (agent legs)."""

    def __init__(self, bus: LiveBus, conversation_id: str, op: MediaOp, user: str, **link: Any) -> None:
        self.leg_id = new_leg_id()
        self.conversation_id = conversation_id
        self.op = op
        self._bus = bus
        self.link = BusLink(bus, call_topic(conversation_id), tag={"leg": self.leg_id}, **link)
        track = PcmMixTrack() if op is MediaOp.AGENT else None
        self.rtc = RtcLeg(f"{op.value}-{user}", self.link.send_frame, track)
        if track is not None:
            self.link.on_frame = lambda pcm: track.feed("call", pcm)
        self.user = user
        self._subscription = bus.subscribe(leg_topic(self.leg_id), maxsize=250)
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        bus: LiveBus,
        conversation_id: str,
        op: MediaOp,
        user: str,
        offer_sdp: str,
        policy: IcePolicy,
        **link: Any,
    ) -> tuple[BrowserRelay, str]:
        """Answer the browser's offer here and have the call's worker accept the leg: returns the
        relay and the SDP answer; ConflictError with the call's reason when refused or unreachable."""
        relay = cls(bus, conversation_id, op, user, **link)
        answer = await relay.rtc.answer(offer_sdp, policy)  # a bad offer: InputError, nothing asked
        await relay._subscription.__aenter__()
        try:
            reply = await request(
                bus, conversation_id, op, user, leg=relay.leg_id, subscription=relay._subscription
            )
        except BaseException:
            await relay._abandon()
            raise
        if reply is None or not reply[0]:
            await relay._abandon()
            if reply is None:
                raise ConflictError(UNREACHABLE)
            raise ConflictError(reply[1])
        relay.link.open()
        browser_relays(bus).add(relay)
        relay._task = asyncio.create_task(relay._run(), name=f"{op.value}-browser-relay")
        log.info("%s leg of %s relayed to the call's worker as %s", op.value, conversation_id, relay.leg_id)
        return relay, answer

    async def _abandon(self) -> None:
        await self._subscription.__aexit__(None, None, None)
        await self.rtc.close()

    async def _run(self) -> None:
        tasks = [
            asyncio.create_task(self.link.keep_alive()),
            asyncio.create_task(self._follow()),
            asyncio.create_task(self._report_connected()),
        ]
        closed = asyncio.ensure_future(self.rtc.closed.wait())
        ended = asyncio.ensure_future(self.link.closed.wait())
        try:
            await asyncio.wait({closed, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.link.end("the browser's leg closed")
            for task in (*tasks, closed, ended):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self._subscription.__aexit__(None, None, None)
            await self.rtc.close()
            browser_relays(self._bus).discard(self)

    async def _follow(self) -> None:
        prefix = leg_topic(self.leg_id)
        async for event in self._subscription:
            self.link.deliver(event.topic[len(prefix) :], event.data, event.payload)

    async def _report_connected(self) -> None:
        await self.rtc.connected.wait()
        self.link.control(LinkEvent.CONNECTED)

    async def close(self) -> None:
        """End the leg on both sides (e.g. the server stops)."""
        self.link.end("closed by the browser's worker")
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def ended(self) -> asyncio.Event:
        return self.link.closed
