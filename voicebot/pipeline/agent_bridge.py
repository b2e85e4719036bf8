"""A voice handoff accepted in the browser: the agent's WebRTC leg bridged into the call.

When a call's handoff target is ``desk`` (``voice.transfer``), the channel's transfer hook becomes
``AgentBridge.hold``: the bot has spoken the handoff message, the caller's line stays up, and the
handoff waits in the desk queue. An agent accepts with an SDP offer (``connect_agent``); once the
agent's leg (voicebot.pipeline.agent_leg) connects:

1. BRIEFING: the bot speaks the handoff summary to the agent leg only (the caller hears nothing;
   listeners hear it through the call tap's side audio);
2. BRIDGED: the caller's audio goes to the agent, the agent's microphone to the caller (pushed into
   the output transport, so the tap and the recording carry it); the bot's own speech is dropped
   and its turns are held (``HoldGate``);
3. when the agent hangs up, the hook returns True and the call ends as "transferred" to the desk.

A supervisor may whisper (``add_whisper``): a receive-only leg whose audio is mixed into what the
agent hears, never into the caller's.

Either leg may have reached another worker process than the call's: then that worker terminates the
browser's peer and asks this call over the live bus (voicebot.live.relay); ``hub`` answers with
the same rules (``relay_request``) and the leg is a ``RemoteLeg`` fed over the bus.

Frame flow of a call (the bridge's processors are inert until a desk transfer)::

    ... STT -> HoldGate -> Dialogue -> TTS -> LatencyTap -> BridgeProcessor -> output -> tap
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    OutputAudioRawFrame,
    StartFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from voicebot.dialogue.types import Reply
from voicebot.errors import ConflictError
from voicebot.live.bus import LiveBus
from voicebot.live.relay import BusLink, CallRelayHub, MediaOp, RelayRequest
from voicebot.pipeline.agent_leg import PcmMixTrack, RemoteLeg, RtcLeg
from voicebot.pipeline.call_tap import TAP_RATE, CallAudioTap, Resampler

if TYPE_CHECKING:
    from voicebot.pipeline.webrtc_transport import IcePolicy

__all__ = ["DESK_TARGET", "AgentBridge", "BridgeProcessor", "BridgeState", "HoldGate"]

log = logging.getLogger(__name__)

DESK_TARGET = "desk"  # the voice.transfer value that sends a call to the console's agents
MAX_AGENT_QUEUE = 50  # 1 s of the agent's voice waiting for the output transport


class BridgeState(StrEnum):
    IDLE = "idle"  # the bot has the call
    WAITING = "waiting"  # held for the desk: the handoff is queued, no agent yet
    BRIEFING = "briefing"  # an agent is connected and hears the handoff summary
    BRIDGED = "bridged"  # caller and agent talk
    ENDED = "ended"


_NEXT: dict[BridgeState, frozenset[BridgeState]] = {
    BridgeState.IDLE: frozenset({BridgeState.WAITING, BridgeState.ENDED}),
    BridgeState.WAITING: frozenset({BridgeState.BRIEFING, BridgeState.ENDED}),
    BridgeState.BRIEFING: frozenset({BridgeState.BRIDGED, BridgeState.WAITING, BridgeState.ENDED}),
    BridgeState.BRIDGED: frozenset({BridgeState.ENDED}),
    BridgeState.ENDED: frozenset(),
}

TransferHook = Callable[[str, Reply], Awaitable[bool]]
Leg = RtcLeg | RemoteLeg


class AgentBridge:
    """One call's way to an agent in the browser (see the module docstring)."""

    def __init__(
        self, conversation_id: str, speech: Any, tap: CallAudioTap | None, bus: LiveBus | None = None
    ) -> None:
        self.conversation_id = conversation_id
        self.hub = CallRelayHub(bus, conversation_id, self.relay_request) if bus is not None else None
        self.state = BridgeState.IDLE
        self.agent: str | None = None
        self.summary = ""
        self._speech = speech
        self._tap = tap
        self._agent_leg: Leg | None = None
        self._whispers: list[Leg] = []
        self._agent_joined = asyncio.Event()
        self._to_caller: asyncio.Queue[bytes] = asyncio.Queue(MAX_AGENT_QUEUE)
        self._caller_resampler = Resampler()

    # -- state ------------------------------------------------------------------------------
    def _transition(self, new: BridgeState) -> None:
        if new not in _NEXT[self.state]:
            raise ConflictError(f"the call's agent bridge cannot go from {self.state} to {new}")
        log.info("call %s: agent bridge %s -> %s", self.conversation_id, self.state, new)
        self.state = new

    @property
    def holding(self) -> bool:
        """The bot keeps quiet and takes no turns (waiting for or talking to an agent)."""
        return self.state in (BridgeState.WAITING, BridgeState.BRIEFING, BridgeState.BRIDGED)

    @property
    def agent_speaking(self) -> bool:
        return self.state in (BridgeState.BRIEFING, BridgeState.BRIDGED)

    # -- the transfer hook ------------------------------------------------------------------
    def transfer_hook(self, fallback: TransferHook | None) -> TransferHook:
        """Desk targets go to ``hold``; any other target to the channel's own hook."""

        async def transfer(target: str, reply: Reply) -> bool:
            if target == DESK_TARGET:
                return await self.hold(reply)
            return await fallback(target, reply) if fallback is not None else False

        return transfer

    async def hold(self, reply: Reply) -> bool:
        """Keep the caller until an agent has taken the call and hung up again (True), or the call
        ends first (this task is cancelled)."""
        self.summary = reply.handoff.summary if reply.handoff is not None else reply.text
        self._transition(BridgeState.WAITING)
        try:
            while True:
                await self._agent_joined.wait()
                leg = self._agent_leg
                assert leg is not None
                if await self._connected(leg):
                    break
                log.info("call %s: the agent's leg did not connect; waiting again", self.conversation_id)
                await self._drop_agent()
                self._transition(BridgeState.WAITING)
            await self._brief(leg)
            self._transition(BridgeState.BRIDGED)
            await leg.closed.wait()
            log.info("call %s: the agent (%s) hung up", self.conversation_id, self.agent)
            return True
        finally:
            await self.close()

    async def _connected(self, leg: Leg) -> bool:
        connected = asyncio.ensure_future(leg.connected.wait())
        closed = asyncio.ensure_future(leg.closed.wait())
        await asyncio.wait({connected, closed}, return_when=asyncio.FIRST_COMPLETED)
        connected.cancel()
        closed.cancel()
        return leg.connected.is_set() and not leg.closed.is_set()

    async def _brief(self, leg: Leg) -> None:
        """The handoff summary, spoken to the agent only (the tap carries it for listeners)."""
        synthesize = getattr(self._speech, "synthesize", None)
        if not self.summary or synthesize is None or leg.track is None:
            return
        text = f"Handoff. {self.summary}"
        pcm = await asyncio.to_thread(lambda: b"".join(synthesize(text, TAP_RATE)))
        leg.track.feed("summary", pcm)
        await leg.track.drained("summary")

    # -- legs -------------------------------------------------------------------------------
    async def connect_agent(self, offer_sdp: str, policy: IcePolicy, agent: str) -> str:
        """An agent accepts the call: returns the SDP answer of the agent's leg."""
        self._check_waiting()
        track = PcmMixTrack(on_source=self._on_agent_track_source)
        leg = RtcLeg("agent", self._from_agent, track)
        answer = await leg.answer(offer_sdp, policy)
        self._admit_agent(leg, agent)
        return answer

    def _check_waiting(self) -> None:
        if self.state is not BridgeState.WAITING or self._agent_leg is not None:
            if self.agent_speaking:
                raise ConflictError(f"{self.agent} is already on this call")
            raise ConflictError("this call is not waiting for an agent (its handoff target is not the desk)")

    def _admit_agent(self, leg: Leg, agent: str) -> None:
        self._check_waiting()  # again: another agent may have come in while this one's SDP was read
        self._agent_leg, self.agent = leg, agent
        self._transition(BridgeState.BRIEFING)
        self._agent_joined.set()
        log.info("call %s: %s is joining on a WebRTC leg", self.conversation_id, agent)

    def _agent_track(self) -> PcmMixTrack:
        leg = self._agent_leg
        if not self.agent_speaking or leg is None or leg.track is None:
            raise ConflictError(
                "no agent is on this call in the server's media path: whisper needs an agent who "
                "accepted the call in the console"
            )
        return leg.track

    async def add_whisper(self, offer_sdp: str, policy: IcePolicy, supervisor: str) -> str:
        """A supervisor speaks to the agent only: a receive-only leg mixed into the agent's audio."""
        track = self._agent_track()
        whisper = RtcLeg(f"whisper-{supervisor}", lambda pcm: track.feed(f"whisper-{supervisor}", pcm), None)
        answer = await whisper.answer(offer_sdp, policy)
        self._whispers.append(whisper)
        log.info("call %s: %s whispers to %s", self.conversation_id, supervisor, self.agent)
        return answer

    async def relay_request(self, req: RelayRequest, link: BusLink) -> RemoteLeg | None:
        """A leg whose browser reached another worker (voicebot.live.relay), by the same rules as
        ``connect_agent``, ``add_whisper`` and ``hang_up_agent``; ConflictError says why not."""
        if req.op is MediaOp.AGENT:
            self._check_waiting()
            leg = RemoteLeg(
                "agent", self._from_agent, PcmMixTrack(on_source=self._on_agent_track_source), link
            )
            self._admit_agent(leg, req.user)
            leg.start()
            return leg
        if req.op is MediaOp.WHISPER:
            track, source = self._agent_track(), f"whisper-{req.user}"
            whisper = RemoteLeg(source, lambda pcm: track.feed(source, pcm), None, link)
            whisper.start()
            self._whispers.append(whisper)
            log.info("call %s: %s whispers to %s (relayed)", self.conversation_id, req.user, self.agent)
            return whisper
        if self._agent_leg is None or self.agent != req.user:
            raise ConflictError("you are not on this call")
        await self.hang_up_agent()
        return None

    async def hang_up_agent(self) -> None:
        if self._agent_leg is None:
            raise ConflictError("no agent is on this call")
        await self._agent_leg.close()

    def caller_audio(self, pcm: bytes, sample_rate: int) -> None:
        """The caller's audio (from BridgeProcessor): to the agent once bridged."""
        leg = self._agent_leg
        if self.state is BridgeState.BRIDGED and leg is not None and leg.track is not None:
            leg.track.feed("caller", self._caller_resampler(pcm, sample_rate))

    async def next_to_caller(self) -> bytes:
        return await self._to_caller.get()

    def _from_agent(self, pcm: bytes) -> None:
        if self.state is not BridgeState.BRIDGED:
            return
        if self._to_caller.full():  # the output transport is behind: drop the oldest
            self._to_caller.get_nowait()
        self._to_caller.put_nowait(pcm)

    def _on_agent_track_source(self, source: str, pcm: bytes) -> None:
        if source == "summary" and self._tap is not None:
            self._tap.side_audio("summary", pcm, TAP_RATE)

    async def _drop_agent(self) -> None:
        leg, self._agent_leg, self.agent = self._agent_leg, None, None
        self._agent_joined.clear()
        if leg is not None:
            await leg.close()

    async def close(self) -> None:
        """Close every leg (the call is over, or the agent left)."""
        whispers, self._whispers = self._whispers, []
        for whisper in whispers:
            await whisper.close()
        if self._agent_leg is not None:
            await self._agent_leg.close()
        if self.state is not BridgeState.ENDED:
            self._transition(BridgeState.ENDED)


_HELD = (
    TranscriptionFrame,
    InputDTMFFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)


class HoldGate(FrameProcessor):
    """Between STT and the dialogue: while the bridge holds the call, the caller's turns (and
    barge-ins, which would cut the agent off) do not reach the bot."""

    def __init__(self, bridge: AgentBridge, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._bridge = bridge

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if self._bridge.holding and isinstance(frame, _HELD):
            return
        await self.push_frame(frame, direction)


class BridgeProcessor(FrameProcessor):
    """Before the output transport: once bridged, the caller's audio goes to the agent, the
    agent's voice replaces the bot's."""

    def __init__(self, bridge: AgentBridge, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._bridge = bridge
        self._pump: asyncio.Task[None] | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            self._pump = self.create_task(self._agent_to_caller(), name="call-agent-audio")
            return
        if isinstance(frame, (EndFrame, CancelFrame)) and self._pump is not None:
            await self.cancel_task(self._pump)
            self._pump = None
        if direction is FrameDirection.DOWNSTREAM:
            if isinstance(frame, InputAudioRawFrame):
                self._bridge.caller_audio(frame.audio, frame.sample_rate)
            elif isinstance(frame, OutputAudioRawFrame) and self._bridge.agent_speaking:
                return  # the bot's speech: the caller talks to a person now
        await self.push_frame(frame, direction)

    async def _agent_to_caller(self) -> None:
        while True:
            pcm = await self._bridge.next_to_caller()
            await self.push_frame(OutputAudioRawFrame(audio=pcm, sample_rate=TAP_RATE, num_channels=1))
