"""DeskService: what an agent does with a handoff, and what everyone else hears of it.

Every action is one repository transaction, then an audit row (the agent's user name as actor),
then events: ``handoff.taken`` / ``handoff.closed`` and ``conversation.turn`` (role ``agent``) on
the live bus for the console's views, and the customer's chat notices (voicebot.desk.notices).

    take        waiting -> taken by this agent (ConflictError when another agent has it)
    take_over   a chat or e-mail the bot still handles: handoff "taken_over", taken in one step
    reply       chat: an agent turn, pushed to the customer's widget; e-mail: a threaded reply
                through the tenant's mailer; voice: refused (the agent talks on the call)
    hand_back   the bot answers again (conversation active)
    close       done (conversation resolved)

Replying, handing back and closing need the handoff to be the agent's own (taken by them);
handing back or closing a handoff nobody has taken yet is allowed (e.g. the customer left).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from voicebot.config import EmailConfig
from voicebot.crm.base import CRMAdapter
from voicebot.desk import notices
from voicebot.desk.context import find_customer, handoff_view, queue_entry
from voicebot.desk.email_reply import queue_reply
from voicebot.dialogue.types import DialogueState
from voicebot.errors import ConflictError, InputError, ProviderError
from voicebot.live.bus import LiveBus
from voicebot.storage import AuditRepository, ConversationRepository, HandoffRecord, HandoffStatus
from voicebot.storage.email import EmailRepository
from voicebot.storage.handoffs import HandoffRepository
from voicebot.text_channels.chat import validate_text

log = logging.getLogger(__name__)

MAX_CHAT_CHARS = 4000
MAX_EMAIL_CHARS = 20000
TAKEN_OVER_CHANNELS = frozenset({"chat", "email"})  # a call is taken over by transfer (live board)


@dataclass(frozen=True, slots=True)
class Agent:
    username: str  # the audit actor
    name: str  # what the customer reads ("Ana has joined")


class DeskService:
    def __init__(
        self,
        *,
        tenant_id: str,
        tenant_name: str,
        conversations: ConversationRepository,
        handoffs: HandoffRepository,
        audit: AuditRepository,
        live: LiveBus,
        crm: CRMAdapter,
        clock: Callable[[], datetime],
        email_repo: EmailRepository,
        email_config: EmailConfig | None = None,
        send_email: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self._tenant_name = tenant_name
        self._conversations = conversations
        self._handoffs = handoffs
        self._audit = audit
        self._live = live
        self._crm = crm
        self._clock = clock
        self._email_repo = email_repo
        self._email_config = email_config
        self._send_email = send_email

    @classmethod
    def for_runtime(cls, runtime: Any, email_service: Any = None) -> DeskService:
        """The desk of a started Runtime; ``email_service`` (a running EmailService) sends agents'
        e-mail replies at once, otherwise its sender picks them up from the queue."""
        email = runtime.tenant.email
        return cls(
            tenant_id=runtime.tenant.id,
            tenant_name=runtime.tenant.name,
            conversations=runtime.conversations,
            handoffs=runtime.handoffs,
            audit=runtime.audit,
            live=runtime.live,
            crm=runtime.crm,
            clock=runtime.clock,
            email_repo=email_service.repo if email_service is not None else EmailRepository(runtime.db),
            email_config=email if email.enabled else None,
            send_email=email_service.send_due if email_service is not None else None,
        )

    # --- reading --------------------------------------------------------------------------------

    async def queue(self) -> dict[str, Any]:
        """Waiting handoffs oldest first (with their place), and those agents have now."""
        now = self._clock()
        waiting = await self._handoffs.list(self.tenant_id, HandoffStatus.WAITING)
        taken = await self._handoffs.list(self.tenant_id, HandoffStatus.TAKEN)
        return {
            "waiting": [queue_entry(h, now, i + 1) for i, h in enumerate(waiting)],
            "taken": [queue_entry(h, now) for h in taken],
            "at": now.isoformat(),
        }

    async def detail(self, handoff_id: str) -> dict[str, Any]:
        handoff = await self._own_tenant(handoff_id)
        conversation = await self._conversations.get(handoff.conversation_id)
        turns = await self._conversations.turns(handoff.conversation_id)
        position = await self._handoffs.queue_position(handoff)
        customer, customer_error = await find_customer(self._crm, conversation, handoff)
        emails = None
        if handoff.channel == "email":
            emails = await self._email_repo.messages(
                self.tenant_id, conversation_id=conversation.id, limit=50
            )
        return handoff_view(
            handoff,
            conversation,
            turns,
            now=self._clock(),
            position=position,
            customer=customer,
            customer_error=customer_error,
            emails=emails,
        )

    # --- acting ---------------------------------------------------------------------------------

    async def take(self, handoff_id: str, agent: Agent) -> HandoffRecord:
        before = await self._own_tenant(handoff_id)
        now = self._clock()
        handoff = await self._handoffs.take(handoff_id, agent.username, now)
        if before.status is HandoffStatus.TAKEN:  # the same agent again: nothing happened
            return handoff
        await self._joined(handoff, agent, now, action="desk.take")
        return handoff

    async def take_over(self, conversation_id: str, agent: Agent) -> HandoffRecord:
        conversation = await self._conversations.get(conversation_id)
        if conversation.tenant_id != self.tenant_id:
            raise ConflictError("this conversation belongs to another tenant")
        if conversation.channel not in TAKEN_OVER_CHANNELS:
            raise ConflictError(
                f"a {conversation.channel} conversation cannot be taken over here; transfer the call instead"
            )
        before = await self._handoffs.active_for(conversation_id)
        state = DialogueState.from_dict(conversation.state)
        context = {
            "intent": state.last_intent,
            "fields": dict(state.fields),
            "customer": None,
            "transcript": [line.to_dict() for line in state.transcript],
            "language": state.language or conversation.language,
        }
        now = self._clock()
        summary = f"Taken over from the bot by {agent.name}."
        handoff = await self._handoffs.take_over(
            conversation_id, agent.username, now, summary=summary, context=context
        )
        if before is not None and before.status is HandoffStatus.TAKEN:
            return handoff  # already this agent's (take_over raised for anyone else)
        await self._joined(handoff, agent, now, action="desk.take_over" if before is None else "desk.take")
        return handoff

    async def reply(self, handoff_id: str, agent: Agent, text: Any) -> dict[str, Any]:
        handoff = await self._owned_by(handoff_id, agent, "reply")
        now = self._clock()
        if handoff.channel == "chat":
            body = self._text(text, MAX_CHAT_CHARS)
            turn = await self._conversations.add_agent_turn(handoff.conversation_id, body, now)
            await self._record(agent, "desk.reply", handoff, now, {"chars": len(body)})
            self._publish_turn(handoff, agent, body, now)
            notices.push(
                self._live,
                handoff.conversation_id,
                {"type": "agent", "text": body, "agent": agent.name, "at": now.isoformat()},
            )
            return {
                "channel": "chat",
                "turn": {"role": "agent", "text": body, "at": turn.created_at.isoformat()},
            }
        if handoff.channel == "email":
            return await self._email_reply(handoff, agent, self._text(text, MAX_EMAIL_CHARS), now)
        raise ConflictError("a voice customer is answered on the call: accept the call to talk to them")

    async def hand_back(self, handoff_id: str, agent: Agent) -> HandoffRecord:
        before = await self._owned_by(handoff_id, agent, "hand back", waiting_ok=True)
        now = self._clock()
        handoff = await self._handoffs.hand_back(handoff_id, now)
        await self._finished(before, handoff, agent, now, "handed_back")
        return handoff

    async def close(self, handoff_id: str, agent: Agent) -> HandoffRecord:
        before = await self._owned_by(handoff_id, agent, "close", waiting_ok=True)
        now = self._clock()
        handoff = await self._handoffs.close(handoff_id, now)
        await self._finished(before, handoff, agent, now, "resolved")
        return handoff

    # --- the parts ------------------------------------------------------------------------------

    async def _own_tenant(self, handoff_id: str) -> HandoffRecord:
        handoff = await self._handoffs.get(handoff_id)
        if handoff.tenant_id != self.tenant_id:
            raise ConflictError("this handoff belongs to another tenant")
        return handoff

    async def _owned_by(
        self, handoff_id: str, agent: Agent, what: str, *, waiting_ok: bool = False
    ) -> HandoffRecord:
        handoff = await self._own_tenant(handoff_id)
        if handoff.status is HandoffStatus.CLOSED:
            raise ConflictError(f"handoff {handoff_id} is closed")
        if handoff.status is HandoffStatus.WAITING:
            if not waiting_ok:
                raise ConflictError(f"take the conversation before you {what}")
        elif handoff.taken_by != agent.username:
            raise ConflictError(f"{handoff.taken_by} has this conversation; only they can {what}")
        return handoff

    @staticmethod
    def _text(text: Any, limit: int) -> str:
        body = validate_text(text, limit).strip()
        if not body:
            raise InputError("the reply is empty")
        return body

    async def _joined(self, handoff: HandoffRecord, agent: Agent, now: datetime, *, action: str) -> None:
        await self._record(agent, action, handoff, now, {"reason": handoff.reason})
        at = now.isoformat()
        self._live.publish(
            "handoff.taken",
            {
                "handoff_id": handoff.id,
                "conversation_id": handoff.conversation_id,
                "channel": handoff.channel,
                "reason": handoff.reason,
                "agent": agent.username,
                "agent_name": agent.name,
                "at": at,
            },
        )
        if handoff.channel in notices.PUSHED_CHANNELS:
            text = f"{agent.name} has joined the conversation."
            notices.notice(self._live, handoff.conversation_id, "joined", text, now, agent=agent.name)
        await notices.announce_queue(self._live, self._handoffs, self.tenant_id, now)
        log.info("handoff %s taken by %s (%s)", handoff.id, agent.username, action)

    async def _finished(
        self, before: HandoffRecord, handoff: HandoffRecord, agent: Agent, now: datetime, outcome: str
    ) -> None:
        action = "desk.hand_back" if outcome == "handed_back" else "desk.close"
        await self._record(agent, action, handoff, now, {"was": before.status.value})
        self._live.publish(
            "handoff.closed",
            {
                "handoff_id": handoff.id,
                "conversation_id": handoff.conversation_id,
                "channel": handoff.channel,
                "outcome": outcome,
                "agent": agent.username,
                "at": now.isoformat(),
            },
        )
        if handoff.channel in notices.PUSHED_CHANNELS:
            if outcome == "handed_back":
                kind, text = "handed_back", "You are chatting with the virtual assistant again."
            else:
                kind, text = "closed", f"{agent.name} has closed the conversation. Write again any time."
            notices.notice(self._live, handoff.conversation_id, kind, text, now, agent=agent.name)
        if before.status is HandoffStatus.WAITING:
            await notices.announce_queue(self._live, self._handoffs, self.tenant_id, now)
        log.info("handoff %s %s by %s", handoff.id, outcome, agent.username)

    async def _email_reply(
        self, handoff: HandoffRecord, agent: Agent, body: str, now: datetime
    ) -> dict[str, Any]:
        config = self._email_config
        if config is None:
            raise ConflictError("the e-mail channel is not enabled for this tenant; no reply can be sent")
        queued = await queue_reply(
            self._handoffs, config, handoff, body, from_name=config.display_name or self._tenant_name, now=now
        )
        details = {"to": queued.to_address, "subject": queued.subject, "outbound_id": queued.outbound_id}
        await self._record(agent, "desk.email_reply", handoff, now, details)
        self._publish_turn(handoff, agent, body, now)
        if self._send_email is not None:
            try:
                await self._send_email()  # at once; a failure stays queued and is retried by the sender
            except ProviderError as exc:
                log.warning(
                    "desk: the e-mail reply %s waits for a retry: %s", queued.outbound_id, exc.message
                )
        status = (await self._email_repo.message(queued.outbound_id)).status
        return {
            "channel": "email",
            "turn": {"role": "agent", "text": body, "at": queued.turn.created_at.isoformat()},
            "email": {"id": queued.outbound_id, "to": queued.to_address, "subject": queued.subject,
                      "status": status},
        }  # fmt: skip

    async def _record(
        self, agent: Agent, action: str, handoff: HandoffRecord, now: datetime, details: dict[str, Any]
    ) -> None:
        conversation = await self._conversations.get(handoff.conversation_id)
        await self._audit.record(
            tenant_id=self.tenant_id,
            actor=agent.username,
            action=action,
            now=now,
            customer_id=conversation.customer_id,
            conversation_id=handoff.conversation_id,
            details={"handoff_id": handoff.id, "channel": handoff.channel, **details},
        )

    def _publish_turn(self, handoff: HandoffRecord, agent: Agent, text: str, now: datetime) -> None:
        self._live.publish(
            "conversation.turn",
            {
                "conversation_id": handoff.conversation_id,
                "channel": handoff.channel,
                "role": "agent",
                "text": text,
                "intent": None,
                "confidence": None,
                "action": None,
                "agent": agent.name,
                "at": now.isoformat(),
            },
        )
