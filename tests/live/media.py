"""Media helpers for the live tests: tones, who hears which frequency, and a phone caller that
asks for a person and is held for the desk."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from typing import Any

import numpy as np

from tests.inbound.twilio_client import FRAME, TwilioPeer, utterance
from voicebot.live.calls import LiveCall, call_directory
from voicebot.pipeline.agent_bridge import BridgeState
from voicebot.pipeline.speech_audio import mulaw_decode
from voicebot.runtime import Runtime


def power_at(samples: np.ndarray, hz: float, rate: int) -> float:
    """The share of the signal's energy within 25 Hz of ``hz`` (0 for silence)."""
    x = samples.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    total = spectrum.sum()
    if total == 0:
        return 0.0
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    return float(spectrum[np.abs(freqs - hz) < 25].sum() / total)


def tone(hz: float, samples: int, rate: int, start: int = 0) -> np.ndarray:
    t = (np.arange(samples) + start) / rate
    return (np.sin(2 * np.pi * hz * t) * 0.3 * 32767).astype(np.int16)


class Caller:
    """The Twilio peer sending 20 ms of ``signal`` every 20 ms, as a phone line does."""

    def __init__(self, peer: TwilioPeer) -> None:
        self.peer = peer
        self.hz: float | None = None
        self._sent = 0
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        with contextlib.suppress(Exception):
            while not self.peer.closed.is_set():
                chunk = tone(self.hz, FRAME, 8000, self._sent) if self.hz else np.zeros(FRAME, np.int16)
                self._sent += FRAME
                await self.peer.send_audio(chunk, realtime=True)

    def heard_since(self, index: int) -> np.ndarray:
        chunks = [
            mulaw_decode(base64.b64decode(e["media"]["payload"]))
            for e in self.peer.received[index:]
            if e.get("event") == "media"
        ]
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def held_call(url: str, runtime: Runtime) -> tuple[Caller, LiveCall, str]:
    """A caller asks for a person; returns once the call is held for the desk."""
    peer = await TwilioPeer.connect(url.replace("http://", "ws://") + "/v1/media/twilio")
    await peer.wait_media(5)
    await peer.wait_quiet()
    await peer.send_audio(utterance())
    caller = Caller(peer)
    directory = call_directory(runtime)
    await wait_for(lambda: any(c.bridge.state is BridgeState.WAITING for c in directory.all()))
    call = next(c for c in directory.all() if c.bridge.state is BridgeState.WAITING)
    waiting = await runtime.handoffs.list(runtime.tenant.id)
    handoff = next(h for h in waiting if h.conversation_id == call.conversation_id)
    return caller, call, handoff.id
