"""The calls this process is running, for the live board and for reaching a call's media.

A call registers itself (voicebot.pipeline.call_live) for as long as its pipeline runs; the API
finds it here by conversation id to bridge an agent's or a supervisor's WebRTC leg into it. Calls in
other worker processes are not here: their conversations still appear on the board (from the
database and the bus), and their audio still reaches listeners over the bus.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["CallDirectory", "LiveCall", "call_directory"]


@dataclass(slots=True)
class LiveCall:
    conversation_id: str
    call_id: str
    channel: str  # twilio | telnyx | plivo | webrtc | sip
    caller: str | None
    started_at: datetime
    bridge: Any = None  # voicebot.pipeline.agent_leg.AgentBridge

    def describe(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "call_id": self.call_id,
            "transport": self.channel,
            "caller": self.caller,
            "started_at": self.started_at.isoformat(),
            "agent_leg": None if self.bridge is None else self.bridge.state.value,
        }


class CallDirectory:
    def __init__(self) -> None:
        self._calls: dict[str, LiveCall] = {}

    def add(self, call: LiveCall) -> None:
        self._calls[call.conversation_id] = call

    def remove(self, conversation_id: str) -> None:
        self._calls.pop(conversation_id, None)

    def get(self, conversation_id: str) -> LiveCall | None:
        return self._calls.get(conversation_id)

    def all(self) -> list[LiveCall]:
        return list(self._calls.values())

    def __len__(self) -> int:
        return len(self._calls)


_DIRECTORIES: weakref.WeakKeyDictionary[Any, CallDirectory] = weakref.WeakKeyDictionary()


def call_directory(runtime: Any) -> CallDirectory:
    """The directory of ``runtime``'s calls in this process (one per live bus, so one per runtime,
    however a channel wraps the runtime object)."""
    key = runtime.live
    directory = _DIRECTORIES.get(key)
    if directory is None:
        directory = _DIRECTORIES[key] = CallDirectory()
    return directory
