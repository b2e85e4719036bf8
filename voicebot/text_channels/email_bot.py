"""The e-mail bot's decision: one parsed message in, ``reply`` | ``draft`` | ``ignore`` out.

It runs on the same ChatService/DialogueManager as chat and voice (channel ``email``, the sender's
address as the identity the CRM matches). A message is

* ignored when it is noise that must never be answered (auto-replies, bounces, mailing lists,
  no-reply senders: ``ParsedEmail.noise``), or empty;
* split into its requests (each question, else the whole text), each sent to the dialogue as one
  turn of the thread's conversation, and the answers joined into one reply;
* sent as a reply only when every request got a confident answer (``answer`` at or above the tenant's
  threshold, or a ``clarify`` asking for something) and nothing in the policy calls for a person;
  otherwise stored as a draft with the reasons: ``low_confidence``, ``handoff:<reason>``,
  ``attachment_needs_human``, ``message_truncated``, ``recipient_not_on_file`` (personal data goes
  only to the address on file for the matched customer, never to another address a message asks
  for, Reply-To included), ``unverified_sender`` (the receiving server's Authentication-Results say
  the From is forged, and the answer is about a customer), ``too_many_requests``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from voicebot.config import EmailConfig
from voicebot.dialogue.types import Action, Channel, Reply
from voicebot.text_channels.email_message import ParsedEmail

__all__ = ["MAX_REQUESTS", "EmailBot", "EmailDecision", "EmailPolicy", "split_requests"]

MAX_REQUESTS = 5  # more separate requests than this in one message: a person reads it
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-ZČŠŽ0-9\"'(])")
_GREETING = re.compile(
    r"^(hi|hello|hey|dear|good (morning|afternoon|evening)|pozdravljeni|spoštovani|živjo|dober dan)\b[^\n]*$",
    re.IGNORECASE,
)
_CLOSING = re.compile(
    r"^(thanks|thank you|best regards|kind regards|regards|cheers|lp|lep pozdrav|hvala|"
    r"s spoštovanjem|best|sincerely)\b",
    re.IGNORECASE,
)
_NAME_LINE = re.compile(r"^[A-ZČŠŽ][\w.'-]*(\s+[A-ZČŠŽ][\w.'-]*){0,2}$")
# intents whose answers carry customer data: only ever sent to the address on file
PERSONAL_INTENTS = frozenset(
    {"order_status", "change_delivery", "book_appointment", "confirm_appointment", "cancel_appointment",
     "reschedule_appointment", "payment_status"}
)  # fmt: skip


@dataclass(frozen=True)
class EmailPolicy:
    auto_reply: bool = True  # False: every answer is a draft (approval mode)
    attachments_need_human: bool = True

    @classmethod
    def from_config(cls, config: EmailConfig) -> EmailPolicy:
        return cls(auto_reply=config.auto_reply, attachments_need_human=config.attachments_need_human)


@dataclass
class EmailDecision:
    action: str  # reply | draft | ignore
    intent: str | None
    reasons: list[str]
    reply_text: str
    customer: dict[str, Any] | None
    conversation_id: str | None = None
    to_address: str | None = None
    answers: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "intent": self.intent,
            "action": self.action,
            "reasons": self.reasons,
            "reply_text": self.reply_text,
            "customer": self.customer,
            "conversation_id": self.conversation_id,
            "to": self.to_address,
            "answers": self.answers,
            # slots found in the message (order numbers, dates, amounts...), over all its requests
            "fields": {k: v for a in self.answers for k, v in (a.get("fields") or {}).items()},
        }


def _body_lines(text: str) -> list[str]:
    """The message without its salutation and closing lines (they are not requests)."""
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    while lines and _GREETING.match(lines[0]):
        # "Hello Ana," is a salutation; "Hello, where is my order?" is a request after one
        head, sep, rest = lines[0].partition(",")
        if sep and rest.strip() and len(head) <= 40:
            lines[0] = rest.strip()
            break
        lines.pop(0)
    for i, line in enumerate(lines):
        # a closing is a short line of its own ("Thanks,", "Best regards"), not "thanks for ...?"
        if _CLOSING.match(line) and len(line) <= 40 and "?" not in line and "." not in line.rstrip("."):
            lines = lines[:i]
            break
    if len(lines) > 1 and _NAME_LINE.match(lines[-1]):
        lines.pop()  # a bare name under the message is its signature
    return lines


def split_requests(text: str) -> list[str]:
    """Each question of a message as one request, with the statements before it as context;
    a message without questions is one request."""
    body = " ".join(_body_lines(text))
    if not body:
        return []
    sentences = [s.strip() for s in _SENTENCE.split(body) if s.strip()]
    requests: list[str] = []
    context: list[str] = []
    for sentence in sentences:
        if sentence.endswith("?"):
            requests.append(" ".join([*context, sentence]))
            context = []
        else:
            context.append(sentence)
    if context:
        if requests:
            requests[-1] = requests[-1] + " " + " ".join(context)
        else:
            requests.append(" ".join(context))
    return requests


_AUTH_RESULT = re.compile(r"\b(dmarc|spf|dkim)\s*=\s*([a-z]+)", re.IGNORECASE)


def sender_failed_authentication(parsed: ParsedEmail) -> bool:
    """True when the receiving server's Authentication-Results (RFC 8601) say the From is forged:
    DMARC failed, or SPF failed with no passing DKIM signature."""
    header = parsed.headers.get("Authentication-Results")
    if not header:
        return False
    results: dict[str, set[str]] = {}
    for method, result in _AUTH_RESULT.findall(header):
        results.setdefault(method.lower(), set()).add(result.lower())
    if "fail" in results.get("dmarc", set()):
        return True
    return bool(results.get("spf", set()) & {"fail", "softfail"}) and "pass" not in results.get("dkim", set())


class EmailBot:
    def __init__(self, runtime: Any, policy: EmailPolicy | None = None) -> None:
        self.runtime = runtime
        self.policy = policy or EmailPolicy()

    async def decide(self, parsed: ParsedEmail, *, conversation_id: str | None = None) -> EmailDecision:
        if parsed.noise:
            return EmailDecision("ignore", None, [f"noise:{parsed.noise}"], "", None)
        sender = parsed.from_address
        if not sender:
            return EmailDecision("ignore", None, ["no_sender"], "", None)
        requests = split_requests(parsed.text or parsed.subject or "")
        if not requests:
            return EmailDecision("draft", None, ["empty_message"], "", None, to_address=sender)
        chat = self.runtime.chat
        if conversation_id is None:
            started = await chat.start(channel=Channel.EMAIL, email=sender)
            conversation_id = started.conversation.id
        reasons: list[str] = []
        if len(requests) > MAX_REQUESTS:
            reasons.append("too_many_requests")
            requests = requests[:MAX_REQUESTS]
        replies: list[Reply] = []
        for request in requests:
            replies.append(await chat.send(conversation_id, request))
        threshold = self.runtime.tenant.threshold
        for reply in replies:
            if reply.action is Action.HANDOFF:
                reason = f"handoff:{reply.handoff.reason if reply.handoff else reply.reason or 'policy'}"
                if reason not in reasons:
                    reasons.append(reason)
            elif (
                reply.action is Action.ANSWER
                and reply.confidence < threshold
                and "low_confidence" not in reasons
            ):
                reasons.append("low_confidence")
        if parsed.attachments and self.policy.attachments_need_human:
            reasons.append("attachment_needs_human")
        if parsed.truncated:
            reasons.append("message_truncated")
        customer = await self._customer(conversation_id)
        to_address = parsed.reply_to or sender  # where compose_reply sends the answer
        personal = any(r.intent in PERSONAL_INTENTS and r.action is Action.ANSWER for r in replies)
        on_file = (customer or {}).get("email")
        if personal and (not on_file or on_file.lower() != to_address.lower()):
            reasons.append("recipient_not_on_file")
        if (personal or customer is not None) and sender_failed_authentication(parsed):
            reasons.append("unverified_sender")
        if not self.policy.auto_reply:
            reasons.append("approval_required")
        text = self._compose(replies)
        intent = next((r.intent for r in replies if r.intent), None)
        answers = [
            {"request": q, "text": r.text, "action": r.action.value, "confidence": round(r.confidence, 4),
             "intent": r.intent, "fields": r.fields}
            for q, r in zip(requests, replies, strict=True)
        ]  # fmt: skip
        action = "draft" if reasons else "reply"
        return EmailDecision(action, intent, reasons, text, customer, conversation_id, to_address, answers)

    async def _customer(self, conversation_id: str) -> dict[str, Any] | None:
        record = await self.runtime.conversations.get(conversation_id)
        customer_id = (record.state or {}).get("customer_id") or record.customer_id
        if not customer_id:
            return None
        customer = await self.runtime.crm.get_customer(customer_id)
        if customer is None:
            return None
        return {"id": customer.id, "name": customer.name, "email": customer.email}

    @staticmethod
    def _compose(replies: list[Reply]) -> str:
        seen: list[str] = []
        for reply in replies:
            if reply.text and reply.text not in seen:
                seen.append(reply.text)
        return "\n\n".join(seen)
