"""A voice handoff accepted in the browser, end to end on 127.0.0.1 with real media.

The caller is a Twilio Media Streams peer (tests/inbound/twilio_client.py); the agent and the
whispering supervisor are aiortc peers confined to loopback, like a browser on the console. Speech
is the FakeSpeech seam (scripted STT, TTS as a 300 Hz tone). Each party sends its own tone, so the
test can tell by frequency who hears whom: caller 440 Hz, agent 600 Hz, whisperer 800 Hz.
"""

from __future__ import annotations

import asyncio
import contextlib
import wave
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError

from tests.auth_helpers import token_headers
from tests.conftest import SESSION_LOOP
from tests.live.media import held_call, power_at, tone, wait_for
from voicebot.auth.roles import Role
from voicebot.live.calls import call_directory
from voicebot.live.listen import listening
from voicebot.live.recordings import recording_path
from voicebot.pipeline.agent_bridge import BridgeState
from voicebot.pipeline.call_tap import TAP_RATE
from voicebot.pipeline.webrtc_transport import IcePolicy, confine_peer_connection

pytestmark = [SESSION_LOOP, pytest.mark.slow]

CALLER_HZ, AGENT_HZ, WHISPER_HZ, BOT_HZ = 440.0, 600.0, 800.0, 300.0
LOOPBACK = IcePolicy()


class ToneTrack(AudioStreamTrack):
    """aiortc's paced 20 ms audio track, playing a tone instead of silence."""

    def __init__(self, hz: float) -> None:
        super().__init__()
        self.hz = hz
        self._sent = 0

    async def recv(self) -> Any:
        frame = await super().recv()
        frame.planes[0].update(tone(self.hz, frame.samples, frame.sample_rate, self._sent).tobytes())
        self._sent += frame.samples
        return frame


@dataclass
class BrowserLeg:
    """An aiortc peer standing in for a console browser: sends a tone, records what it hears with
    the bridge's state at the time."""

    pc: RTCPeerConnection
    heard: list[tuple[str, np.ndarray]] = field(default_factory=list)  # (bridge state, 48 kHz mono)
    reader: asyncio.Task[None] | None = None

    @classmethod
    async def offer(cls, hz: float, *, send_only: bool = False) -> tuple[BrowserLeg, str]:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        if send_only:
            pc.addTransceiver(ToneTrack(hz), direction="sendonly")
        else:
            pc.addTrack(ToneTrack(hz))
        confine_peer_connection(pc, LOOPBACK)
        await pc.setLocalDescription(await pc.createOffer())
        return cls(pc), pc.localDescription.sdp

    def follow(self, state: Any) -> None:
        @self.pc.on("track")
        def on_track(track: Any) -> None:
            self.reader = asyncio.create_task(self._read(track, state))

    async def _read(self, track: Any, state: Any) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                samples = frame.to_ndarray().reshape(-1)
                if frame.layout.name == "stereo":
                    samples = samples[0::2]
                self.heard.append((str(state()), samples))

    def audio(self, *states: str) -> np.ndarray:
        chunks = [s for st, s in self.heard if st in states]
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)

    async def close(self) -> None:
        await self.pc.close()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader


async def test_an_agent_accepts_a_held_call_hears_the_summary_then_the_caller(desk_server: Any) -> None:
    url, runtime, speech = desk_server
    agent_headers = await token_headers(runtime, Role.AGENT, username="agent-ana")
    supervisor_headers = await token_headers(runtime, Role.SUPERVISOR, username="sup-sam")
    caller, call, handoff_id = await held_call(url, runtime)
    bridge = call.bridge
    agent, agent_offer = await BrowserLeg.offer(AGENT_HZ)
    agent.follow(lambda: bridge.state)
    whisperer, whisper_offer = await BrowserLeg.offer(WHISPER_HZ, send_only=True)
    listened: list[tuple[str, bytes]] = []

    async def listen() -> None:
        async with listening(runtime.live, call.conversation_id) as frames:
            async for frame in frames:
                listened.append((str(bridge.state), frame))

    listener = asyncio.create_task(listen())
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            # nobody to whisper to yet: refused with the reason
            early = await client.post(
                f"/v1/live/calls/{call.conversation_id}/whisper",
                json={"sdp": whisper_offer, "type": "offer"},
                headers=supervisor_headers,
            )
            assert early.status_code == 409 and "no agent" in early.json()["error"]["message"]
            # a supervisor may listen but not accept calls; the agent may
            path = f"/v1/desk/handoffs/{handoff_id}/call"
            refused = await client.post(path, json={"sdp": agent_offer, "type": "offer"}, headers={})
            assert refused.status_code == 401
            answer = await client.post(
                path, json={"sdp": agent_offer, "type": "offer"}, headers=agent_headers
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["conversation_id"] == call.conversation_id
            await agent.pc.setRemoteDescription(RTCSessionDescription(answer.json()["sdp"], "answer"))
            assert (await runtime.handoffs.get(handoff_id)).taken_by == "agent-ana"
            again = await client.post(path, json={"sdp": agent_offer, "type": "offer"}, headers=agent_headers)
            assert again.status_code == 409

            # the summary first, to the agent only; then caller and agent talk
            await wait_for(lambda: bridge.state is BridgeState.BRIDGED)
            assert any(text.startswith("Handoff.") for text in speech.spoken)
            caller.hz = CALLER_HZ
            bridged_at = len(caller.peer.received)
            await wait_for(lambda: len(agent.audio("bridged")) > 48000 * 2)

            whispered = await client.post(
                f"/v1/live/calls/{call.conversation_id}/whisper",
                json={"sdp": whisper_offer, "type": "offer"},
                headers=supervisor_headers,
            )
            assert whispered.status_code == 200, whispered.text
            heard_before_whisper = len(agent.heard)
            caller_before_whisper = len(caller.peer.received)
            await whisperer.pc.setRemoteDescription(RTCSessionDescription(whispered.json()["sdp"], "answer"))
            await wait_for(lambda: whisperer.pc.connectionState == "connected")
            await asyncio.sleep(1.5)  # let the whisper play for a while
            during_whisper = np.concatenate([s for _, s in agent.heard[heard_before_whisper:]])
            caller_during_whisper = caller.heard_since(caller_before_whisper)

            hung_up = await client.delete(path, headers=agent_headers)
            assert hung_up.status_code == 204
            await asyncio.wait_for(caller.peer.closed.wait(), 10)
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await caller.stop()
        await agent.close()
        await whisperer.close()

    # the agent heard the bot's summary (its tone) while briefed, then the caller's tone
    briefing = agent.audio("briefing")
    assert len(briefing) > 4800 and power_at(briefing, BOT_HZ, 48000) > 0.3
    assert power_at(agent.audio("bridged"), CALLER_HZ, 48000) > 0.2
    # the whisper reached the agent only
    assert power_at(during_whisper, WHISPER_HZ, 48000) > 0.1
    assert power_at(caller_during_whisper, WHISPER_HZ, 8000) < 0.01
    # the caller heard the agent once bridged
    assert power_at(caller.heard_since(bridged_at), AGENT_HZ, 8000) > 0.2
    # a listener heard the summary through the tap, and the agent after it
    summary = np.frombuffer(b"".join(f for st, f in listened if st == "briefing"), np.int16)
    assert len(summary) > TAP_RATE // 5 and power_at(summary, BOT_HZ, TAP_RATE) > 0.2
    talk = np.frombuffer(b"".join(f for st, f in listened if st == "bridged"), np.int16)
    assert power_at(talk, AGENT_HZ, TAP_RATE) > 0.1 and power_at(talk, CALLER_HZ, TAP_RATE) > 0.1

    # the call ended as transferred to the desk; the recording holds the whole call, mixed
    await wait_for(lambda: call_directory(runtime).get(call.conversation_id) is None)
    path = recording_path(runtime.settings, runtime.tenant.id, call.conversation_id)
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, TAP_RATE)
        recorded = np.frombuffer(wav.readframes(wav.getnframes()), np.int16)
    assert len(recorded) > TAP_RATE * 3
    for hz in (BOT_HZ, CALLER_HZ, AGENT_HZ):
        assert power_at(recorded, hz, TAP_RATE) > 0.02, hz
    assert power_at(recorded, WHISPER_HZ, TAP_RATE) < 0.005  # the whisper is not the caller's
