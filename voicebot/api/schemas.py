"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewConversation(_Body):
    channel: Literal["chat"] = "chat"
    caller: str | None = Field(None, max_length=64, description="Caller ID / phone, if known.")
    email: str | None = Field(None, max_length=254, description="The customer's e-mail, if known.")
    language: str | None = Field(None, max_length=3, description="Start in this tenant language.")


class Message(_Body):
    text: str = Field(description="The customer's message (plain text).")
    caller: str | None = Field(None, max_length=64)


class CSAT(_Body):
    score: int = Field(ge=1, le=5, description="1 (very unhappy) .. 5 (very happy)")
    comment: str | None = Field(None, max_length=2000)


class ReplyOut(BaseModel):
    conversation_id: str
    text: str
    action: Literal["answer", "clarify", "handoff", "end"]
    confidence: float
    intent: str | None
    citations: list[dict[str, Any]]
    handoff: dict[str, Any] | None
    language: str
    fields: dict[str, Any]
    reason: str | None


class ConversationOut(BaseModel):
    id: str
    channel: str
    status: str
    language: str | None
    created_at: str
    greeting: ReplyOut | None = None
