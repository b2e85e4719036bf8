"""A call's part in the console's live views: the audio tap, listen-in, recording, agent bridge.

``CallLive.open`` is called by ``run_call`` once the conversation exists. It builds

* the tap (voicebot.pipeline.call_tap) with its sinks: the listen-in publisher (voicebot.live.listen)
  and, when the tenant's ``voice.record_calls`` is on, the WAV recording at
  ``voicebot.live.recordings.recording_path``;
* the agent bridge (voicebot.pipeline.agent_bridge) and its two processors, and the bridge's relay
  hub (voicebot.live.relay), which lets browser legs terminated in other workers reach the call;
* the call's entry in this process's call directory (voicebot.live.calls), added by ``register``
  just before the pipeline runs.

``close`` undoes all of it and publishes ``conversation.ended`` on the live bus.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voicebot.live.calls import LiveCall, call_directory
from voicebot.live.listen import ListenPublisher
from voicebot.live.recordings import recording_path
from voicebot.live.wav import WavSink
from voicebot.pipeline.agent_bridge import AgentBridge, BridgeProcessor, HoldGate
from voicebot.pipeline.call_tap import TAP_RATE, CallAudioTap, TapSink

__all__ = ["CallLive"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class CallLive:
    runtime: Any
    entry: LiveCall
    tap: CallAudioTap
    listen: ListenPublisher
    bridge: AgentBridge
    gate: HoldGate
    bridge_processor: BridgeProcessor
    recording: WavSink | None

    @classmethod
    def open(
        cls,
        runtime: Any,
        speech: Any,
        *,
        conversation_id: str,
        call_id: str,
        channel: str,
        caller: str | None,
    ) -> CallLive:
        listen = ListenPublisher(runtime.live, conversation_id)
        sinks: list[TapSink] = [listen]
        recording = None
        if runtime.tenant.voice.record_calls:
            path = recording_path(runtime.settings, runtime.tenant.id, conversation_id)
            recording = WavSink(path, TAP_RATE)
            sinks.append(recording)

        async def relay() -> None:  # browser legs whose requests reached other worker processes
            if bridge.hub is not None:
                await bridge.hub.watch()

        # the tap owns the call-long watchers (their tasks start with the pipeline)
        tap = CallAudioTap(sinks, watchers=[listen.watch, relay])
        bridge = AgentBridge(conversation_id, speech, tap, runtime.live)
        entry = LiveCall(conversation_id, call_id, channel, caller, runtime.clock(), bridge)
        return cls(runtime, entry, tap, listen, bridge, HoldGate(bridge), BridgeProcessor(bridge), recording)

    def register(self) -> None:
        """The call runs: the API may find it (``close`` removes it again)."""
        call_directory(self.runtime).add(self.entry)

    async def close(self, *, reason: str, turns: int, duration_s: float) -> Path | None:
        """The call is over: leave the directory, close the legs, tell the live board."""
        call_directory(self.runtime).remove(self.entry.conversation_id)
        try:
            await self.bridge.close()
        except Exception:
            log.exception("call %s: closing the agent bridge failed", self.entry.conversation_id)
        self.tap.close_sinks()
        self.runtime.live.publish(
            "conversation.ended",
            {
                "conversation_id": self.entry.conversation_id,
                "channel": "voice",
                "transport": self.entry.channel,
                "reason": reason,
                "turns": turns,
                "duration_s": round(duration_s, 1),
                "at": self.runtime.clock().isoformat(),
            },
        )
        return self.recording.written if self.recording is not None else None
