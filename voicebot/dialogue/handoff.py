"""The handoff context: everything a human needs so the customer never repeats themselves."""

from __future__ import annotations

from typing import Any

from voicebot.dialogue.types import DialogueState, HandoffContext

REASONS = {
    "human_requested": "the customer asked for a person",
    "low_confidence": "the bot was not confident enough to answer",
    "failed_turns": "several turns in a row without an answer",
    "verification_failed": "identity verification failed",
    "tool_failed": "customer records could not be reached",
}

INTENT_LABELS = {
    "order_status": "order status",
    "change_delivery": "change of delivery details",
    "returns_policy": "returns and refunds",
    "book_appointment": "book an appointment",
    "confirm_appointment": "confirm an appointment",
    "cancel_appointment": "cancel an appointment",
    "reschedule_appointment": "reschedule an appointment",
    "payment_status": "payment status",
    "complaint": "complaint",
    "cancel_contract": "cancel a contract",
}


def describe_reason(reason: str) -> str:
    if reason.startswith("sensitive:"):
        return f"sensitive topic ({reason.split(':', 1)[1].replace('_', ' ')})"
    return REASONS.get(reason, reason.replace("_", " "))


def build_handoff(
    *,
    reason: str,
    intent: str | None,
    state: DialogueState,
    channel: str,
    customer: dict[str, Any] | None,
    language: str,
    withhold_last: bool = False,
) -> HandoffContext:
    """A short, factual summary plus the full transcript and collected fields.

    `withhold_last`: the last customer message carried a knowledge factor (postcode, birth date),
    so the summary does not quote it."""
    who = "Unidentified customer"
    if customer:
        who = f"{customer.get('name', 'Customer ' + str(customer.get('id')))} "
        who += "(identity verified)" if state.verified else "(matched, not verified)"
    parts = [f"{who} via {channel}, language {language}."]
    if intent:
        parts.append(f"Wants: {INTENT_LABELS.get(intent, intent.replace('_', ' '))}.")
    fields = {k: v for k, v in state.fields.items() if v not in (None, "")}
    if fields:
        parts.append("Details: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in fields.items()) + ".")
    parts.append(f"Handed off because {describe_reason(reason)}.")
    last = next((line.text for line in reversed(state.transcript) if line.role == "customer"), "")
    if last and withhold_last:
        parts.append("Last message: (verification details, not repeated here)")
    elif last:
        parts.append(f'Last message: "{last[:200]}"')
    return HandoffContext(
        reason=reason,
        summary=" ".join(parts),
        intent=intent,
        fields=fields,
        customer=customer,
        transcript=list(state.transcript),
        language=language,
    )
