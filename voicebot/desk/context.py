"""One handoff as the agent sees it, so the customer never has to repeat themselves: the bot's
summary, intent, reason and collected fields at the top, the matched customer from the CRM (with
their recent orders), the whole transcript, and for e-mail the messages of the thread.

The CRM is asked for the customer the conversation identified; failing that, by the e-mail address
or the caller's number. A CRM that is down does not hide the rest: ``customer_error`` says why.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from voicebot.crm.base import CRMAdapter, Customer, to_jsonable
from voicebot.errors import ProviderError
from voicebot.storage.records import (
    ConversationRecord,
    EmailMessageRecord,
    HandoffRecord,
    HandoffStatus,
    TurnRecord,
)

log = logging.getLogger(__name__)

RECENT_ORDERS = 5


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def waited_seconds(handoff: HandoffRecord, now: datetime) -> float:
    """How long the customer waited (still waits) for a person."""
    end = now if handoff.status is HandoffStatus.WAITING else handoff.taken_at or handoff.closed_at or now
    return max(0.0, (end - handoff.created_at).total_seconds())


def queue_entry(handoff: HandoffRecord, now: datetime, position: int | None = None) -> dict[str, Any]:
    """A handoff as one line of the queue."""
    context = handoff.context or {}
    customer = context.get("customer") if isinstance(context.get("customer"), dict) else None
    return {
        "id": handoff.id,
        "conversation_id": handoff.conversation_id,
        "channel": handoff.channel,
        "reason": handoff.reason,
        "summary": handoff.summary,
        "status": handoff.status.value,
        "intent": context.get("intent"),
        "customer_name": (customer or {}).get("name"),
        "created_at": handoff.created_at.isoformat(),
        "taken_at": _iso(handoff.taken_at),
        "taken_by": handoff.taken_by,
        "waited_seconds": round(waited_seconds(handoff, now), 1),
        "position": position,
    }


async def find_customer(
    crm: CRMAdapter, conversation: ConversationRecord, handoff: HandoffRecord
) -> tuple[dict[str, Any] | None, str | None]:
    """The matched customer (public fields and recent orders), or None; and an error if the CRM failed."""
    known = (handoff.context or {}).get("customer")
    customer_id = conversation.customer_id or (known.get("id") if isinstance(known, dict) else None)
    try:
        customer: Customer | None = None
        if customer_id:
            customer = await crm.get_customer(str(customer_id))
        if customer is None and conversation.email:
            customer = await crm.find_customer_by_email(conversation.email)
        if customer is None and conversation.caller:
            customer = await crm.find_customer_by_phone(conversation.caller)
        if customer is None:
            return None, None
        orders = await crm.list_orders(customer.id)
    except ProviderError as exc:
        log.warning("desk: customer records unavailable for %s: %s", conversation.id, exc.message)
        return None, f"customer records could not be read: {exc.message}"
    recent = sorted(orders, key=lambda o: o.updated_at.isoformat() if o.updated_at else "", reverse=True)
    data = customer.public() | {"orders": [to_jsonable(o) for o in recent[:RECENT_ORDERS]]}
    data["matched_by"] = "conversation" if customer_id else ("email" if conversation.email else "caller")
    return data, None


def transcript(turns: list[TurnRecord]) -> list[dict[str, Any]]:
    return [
        {
            "role": t.role.value,
            "text": t.text,
            "at": t.created_at.isoformat(),
            "action": t.action,
            "intent": t.intent,
            "confidence": t.confidence,
        }
        for t in turns
    ]


def email_thread(messages: list[EmailMessageRecord]) -> list[dict[str, Any]]:
    """The thread's messages, oldest first."""
    ordered = sorted(messages, key=lambda m: (m.received_at, m.id))
    return [
        {
            "direction": m.direction,
            "status": m.status,
            "subject": m.subject,
            "text": m.text,
            "from": m.from_address,
            "to": list(m.to_addresses),
            "at": m.received_at.isoformat(),
        }
        for m in ordered
    ]


def handoff_view(
    handoff: HandoffRecord,
    conversation: ConversationRecord,
    turns: list[TurnRecord],
    *,
    now: datetime,
    position: int | None,
    customer: dict[str, Any] | None,
    customer_error: str | None,
    emails: list[EmailMessageRecord] | None,
) -> dict[str, Any]:
    context = handoff.context or {}
    return {
        "handoff": queue_entry(handoff, now, position) | {"closed_at": _iso(handoff.closed_at)},
        "context": {
            "summary": handoff.summary,
            "reason": handoff.reason,
            "intent": context.get("intent"),
            "fields": context.get("fields") or {},
            "language": context.get("language") or conversation.language,
            "customer": context.get("customer"),
        },
        "customer": customer,
        "customer_error": customer_error,
        "conversation": {
            "id": conversation.id,
            "channel": conversation.channel,
            "status": conversation.status.value,
            "caller": conversation.caller,
            "email": conversation.email,
            "language": conversation.language,
            "created_at": conversation.created_at.isoformat(),
        },
        "transcript": transcript(turns),
        "email": None if emails is None else {"to": conversation.email, "messages": email_thread(emails)},
    }
