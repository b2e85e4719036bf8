"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def encodable(value: str) -> str:
    """JSON may escape lone UTF-16 surrogates ("\\ud800"); they are not text and cannot be stored."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = f"\\u{ord(value[exc.start]):04x}"
        raise ValueError(f"contains an unpaired surrogate ({bad}); send UTF-8 text") from exc
    return value


Text = Annotated[str, AfterValidator(encodable)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewConversation(_Body):
    channel: Literal["chat"] = "chat"
    caller: Text | None = Field(None, max_length=64, description="Caller ID / phone, if known.")
    email: Text | None = Field(None, max_length=254, description="The customer's e-mail, if known.")
    language: Text | None = Field(None, max_length=3, description="Start in this tenant language.")


class Message(_Body):
    text: Text = Field(description="The customer's message (plain text).")
    caller: Text | None = Field(None, max_length=64)


class CSAT(_Body):
    score: int = Field(
        ge=1, le=5, strict=True, description="1 (very unhappy) .. 5 (very happy); a JSON integer"
    )
    comment: Text | None = Field(None, max_length=2000)


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


class DraftApproval(_Body):
    text: Text | None = Field(
        None, max_length=20000, description="The reply as edited by the agent; omitted: send as proposed."
    )
    agent: Text = Field("agent", min_length=1, max_length=128, description="Who approves (for the audit).")


class DraftRejection(_Body):
    note: Text | None = Field(None, max_length=2000, description="Why (kept with the draft and audited).")
    agent: Text = Field("agent", min_length=1, max_length=128, description="Who rejects (for the audit).")


class NewCampaign(_Body):
    definition: Text = Field(max_length=200_000, description="The campaign file's text (YAML or JSON).")
    contacts_csv: Text = Field(max_length=900_000, description="Contacts: CSV with a phone column.")
    name: Text | None = Field(None, max_length=200, description="Shown to operators (default: the file's).")
    region: Text = Field("SI", min_length=2, max_length=2, description="Country of numbers without +code.")
