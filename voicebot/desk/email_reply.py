"""An agent's answer to an e-mail handoff: a reply to the customer's newest message in the thread,
composed the way the e-mail bot composes its own (threaded by In-Reply-To/References, the original
quoted), queued in the outbound table from which the e-mail channel's sender sends it.

A person wrote it, so it carries no ``Auto-Submitted`` header (RFC 3834 reserves that for
automatic mail; some mail systems hide or ignore auto-replies).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from voicebot.config import EmailConfig
from voicebot.errors import ConflictError
from voicebot.storage.email import MailRecord
from voicebot.storage.handoffs import HandoffRepository
from voicebot.storage.records import HandoffRecord, TurnRecord
from voicebot.text_channels.email_message import compose_reply, parse_email


@dataclass(frozen=True, slots=True)
class QueuedEmail:
    turn: TurnRecord
    outbound_id: str
    to_address: str
    subject: str


async def queue_reply(
    handoffs: HandoffRepository,
    config: EmailConfig,
    handoff: HandoffRecord,
    text: str,
    *,
    from_name: str,
    now: datetime,
) -> QueuedEmail:
    """Compose and queue the reply (with the agent's turn); ConflictError when the conversation has
    no customer e-mail to answer."""
    latest = await handoffs.latest_inbound_email(handoff.conversation_id)
    if latest is None:
        raise ConflictError("this conversation has no customer e-mail to answer")
    inbound_id, raw = latest
    parsed = parse_email(raw)
    to_address = parsed.reply_to or parsed.from_address
    if not to_address:
        raise ConflictError("the customer's e-mail has no address to reply to")
    message = compose_reply(
        parsed, text=text, from_address=config.address, from_name=from_name, domain=config.domain, now=now
    )
    del message["Auto-Submitted"]
    message_id = str(message["Message-ID"])
    mail = MailRecord(
        raw=message.as_bytes(),
        dedupe_key=message_id,
        subject=str(message["Subject"]),
        text=text,
        message_id=message_id,
        in_reply_to=parsed.message_id,
        thread_refs=tuple(str(message.get("References", "")).split()),
        from_address=config.address,
        to_addresses=(to_address,),
    )
    turn, outbound_id = await handoffs.queue_email_reply(
        handoff.id, agent_text=text, mail=mail, answers_id=inbound_id, now=now
    )
    return QueuedEmail(turn, outbound_id, to_address, mail.subject)
