"""The values that cross the dialogue boundary: what a channel hands in, what it gets back."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Channel(StrEnum):
    CHAT = "chat"
    VOICE = "voice"
    EMAIL = "email"


class Action(StrEnum):
    """What the channel should do with a reply."""

    ANSWER = "answer"  # the bot answered (from the KB or customer data)
    CLARIFY = "clarify"  # the bot needs more (a missing field, verification, a rephrase)
    HANDOFF = "handoff"  # a human takes over; Reply.handoff carries the context
    END = "end"  # the conversation is over (goodbye)


@dataclass(frozen=True, slots=True)
class Citation:
    """One approved KB passage an answer rests on."""

    passage_id: str
    source: str  # file (and anchor) the passage came from
    title: str
    text: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class TranscriptLine:
    role: str  # "customer" | "bot" | "agent"
    text: str
    at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "text": self.text, "at": self.at.isoformat() if self.at else None}


@dataclass(slots=True)
class HandoffContext:
    """Everything a human needs so the customer never has to repeat themselves."""

    reason: str  # human_requested | low_confidence | failed_turns | sensitive:<topic> | policy | tool_failed
    summary: str
    intent: str | None
    fields: dict[str, Any]
    customer: dict[str, Any] | None
    transcript: list[TranscriptLine]
    language: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "summary": self.summary,
            "intent": self.intent,
            "fields": dict(self.fields),
            "customer": self.customer,
            "transcript": [line.to_dict() for line in self.transcript],
            "language": self.language,
        }


@dataclass(slots=True)
class DialogueState:
    """What the bot remembers between turns of one conversation (persisted as JSON by the channel)."""

    language: str | None = None
    turn_count: int = 0
    failed_turns: int = 0
    customer_id: str | None = None  # identified (caller ID, sender address, or a number/e-mail given)
    verified: bool = False  # identity verified with a knowledge factor
    verification_attempts: int = 0
    pending_intent: str | None = None  # an action waiting for fields or verification
    awaiting: str | None = None  # the field we asked for last ("order_id", "verification", "date"...)
    fields: dict[str, Any] = field(default_factory=dict)  # collected slots
    last_intent: str | None = None
    handed_off: bool = False
    ended: bool = False
    transcript: list[TranscriptLine] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in self.__slots__ if k != "transcript"}
        data["transcript"] = [line.to_dict() for line in self.transcript]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> DialogueState:
        if not data:
            return cls()
        known = {k: v for k, v in data.items() if k in cls.__slots__ and k != "transcript"}
        state = cls(**known)
        state.transcript = [
            TranscriptLine(
                role=line["role"],
                text=line["text"],
                at=datetime.fromisoformat(line["at"]) if line.get("at") else None,
            )
            for line in data.get("transcript", [])
        ]
        return state


@dataclass(slots=True)
class Turn:
    """One customer message as a channel hands it to the DialogueManager."""

    text: str
    channel: Channel = Channel.CHAT
    conversation_id: str | None = None
    caller: str | None = None  # caller ID (E.164 or as received) for voice / CLI
    sender_email: str | None = None  # e-mail channel: the From address
    now: datetime | None = None  # injected time; the manager never reads the clock itself
    state: DialogueState = field(default_factory=DialogueState)
    dtmf: str | None = None  # digits pressed (voice)


@dataclass(slots=True)
class Reply:
    text: str
    action: Action
    confidence: float
    intent: str | None
    citations: list[Citation] = field(default_factory=list)
    handoff: HandoffContext | None = None
    language: str = "en"
    fields: dict[str, Any] = field(default_factory=dict)  # slots extracted from this turn
    reason: str | None = None  # why this action (threshold, verification_required, ...)
    state: DialogueState = field(default_factory=DialogueState)

    def to_dict(self) -> dict[str, Any]:
        """The public JSON shape (API, CLI --json)."""
        return {
            "text": self.text,
            "action": self.action.value,
            "confidence": round(self.confidence, 4),
            "intent": self.intent,
            "citations": [c.to_dict() for c in self.citations],
            "handoff": self.handoff.to_dict() if self.handoff else None,
            "language": self.language,
            "fields": self.fields,
            "reason": self.reason,
        }
