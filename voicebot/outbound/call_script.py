"""A campaign conversation as the voice pipeline's turn source (``pipeline.call_dialogue.CallScript``).

The script speaks first (its opening) and answers every turn; DTMF digits reach it raw. A step
that hands off becomes a transfer when the tenant has a transfer target for campaign calls
(``voice.transfer`` key ``campaign`` or ``default``), otherwise the call ends after the words
(the outcome ``handoff`` tells a person to call back).
"""

from __future__ import annotations

from voicebot.dialogue.types import Action, Reply
from voicebot.outbound.conversation import ScriptedConversation

TRANSFER_KEYS = ("campaign", "default")


class ScriptTurns:
    def __init__(
        self, conversation: ScriptedConversation, *, transfers: dict[str, str] | None = None
    ) -> None:
        self.conversation = conversation
        self.can_transfer = any(k in (transfers or {}) for k in TRANSFER_KEYS)

    def opening(self) -> list[str]:
        step = self.conversation.opening()
        return [step.text] if step.text else []

    async def reply(self, text: str, *, source: str) -> Reply:
        step = self.conversation.hear(text, source="dtmf" if source == "dtmf" else "speech")
        if step.done:
            action = Action.END
        elif step.handoff:
            action = Action.HANDOFF if self.can_transfer else Action.END
        else:
            action = Action.CLARIFY
        return Reply(
            text=step.text,
            action=action,
            confidence=1.0,
            intent="campaign",  # voice.transfer["campaign"] routes a campaign handoff
            language=self.conversation.language,
            reason=self.conversation.state(),
        )
