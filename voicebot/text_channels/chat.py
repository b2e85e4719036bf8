"""The chat channel's service: conversations over HTTP, WebSocket, the widget and the terminal.

It owns the conversation lifecycle around the DialogueManager: create (with the tenant greeting),
validate each message, run one turn under a per-conversation lock (two messages of one
conversation never race on its state), persist both turns and any handoff in one transaction,
and record metrics and audit entries.

Human mode: while an agent has the conversation (its handoff is taken, voicebot.desk), the
customer's messages are stored and published but the bot does not answer; ``send`` returns an
empty reply (action ``handoff``, reason ``with_agent``). The bot answers again once the agent hands
the conversation back. While the customer waits for a person, their chat is told its place in the
queue and the likely wait (voicebot.desk.notices), when the handoff happens and on each message.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from voicebot import metrics
from voicebot.desk.notices import announce_wait
from voicebot.dialogue.manager import DialogueManager
from voicebot.dialogue.types import Action, Channel, DialogueState, Reply, Turn
from voicebot.errors import ConflictError, InputError, TooLargeError
from voicebot.live.bus import LiveBus
from voicebot.storage import (
    AuditRepository,
    ConversationRecord,
    ConversationRepository,
    ConversationStatus,
    HandoffRecord,
    HandoffRepository,
    HandoffStatus,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StartedConversation:
    conversation: ConversationRecord
    greeting: Reply


def validate_text(text: Any, max_chars: int) -> str:
    """A message the dialogue can use, or InputError with a reason a person understands."""
    if not isinstance(text, str):
        raise InputError("'text' must be a string")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"the message is not valid Unicode text (at character {exc.start})") from exc
    if "\x00" in text:
        raise InputError("the message contains NUL bytes; send plain text")
    if len(text) > max_chars:
        raise TooLargeError(f"the message is {len(text)} characters long; the limit is {max_chars}")
    printable = sum(1 for c in text if c.isprintable() or c.isspace())
    if text and printable / len(text) < 0.9:
        raise InputError("the message is not readable text (mostly control or binary characters)")
    return text


class ChatService:
    def __init__(
        self,
        manager: DialogueManager,
        conversations: ConversationRepository,
        audit: AuditRepository,
        *,
        clock: Callable[[], datetime],
        max_message_chars: int = 4000,
        live: LiveBus | None = None,
        handoffs: HandoffRepository | None = None,
    ) -> None:
        self._manager = manager
        self._live = live or LiveBus()  # the console's live views (voicebot.live.bus)
        self._conversations = conversations
        # human mode and the wait notices read the handoffs (a repository on the same database)
        self._handoffs = handoffs or HandoffRepository(conversations._db)
        self._audit = audit
        self._clock = clock
        self._max_chars = max_message_chars
        self._tenant_id = manager.tenant.id
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @property
    def tenant_id(self) -> str:
        return self._tenant_id

    async def start(
        self,
        *,
        channel: Channel = Channel.CHAT,
        caller: str | None = None,
        email: str | None = None,
        language: str | None = None,
        conversation_id: str | None = None,
    ) -> StartedConversation:
        if language is not None and language not in self._manager.tenant.languages:
            raise InputError(f"language {language!r} is not one of {self._manager.tenant.languages}")
        now = self._clock()
        record = await self._conversations.create(
            tenant_id=self._tenant_id,
            channel=channel.value,
            now=now,
            caller=caller,
            email=email,
            conversation_id=conversation_id,
        )
        greeting = self._manager.greet(language, now)
        metrics.CONVERSATIONS.labels(channel=channel.value).inc()
        log.info("conversation %s started on %s", record.id, channel.value)
        at = now.isoformat()
        self._live.publish(
            "conversation.started",
            {
                "conversation_id": record.id,
                "channel": channel.value,
                "caller": caller,
                "email": email,
                "at": at,
            },
        )
        self._publish_turn(record.id, channel.value, "bot", greeting, at)
        return StartedConversation(record, greeting)

    async def send(self, conversation_id: str, text: Any, *, caller: str | None = None) -> Reply:
        text = validate_text(text, self._max_chars)
        lock = self._locks.get(conversation_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[conversation_id] = lock
        async with lock:
            return await self._turn(conversation_id, text, caller)

    async def _turn(self, conversation_id: str, text: str, caller: str | None) -> Reply:
        started = time.perf_counter()
        record = await self._conversations.get(conversation_id)
        if record.tenant_id != self._tenant_id:
            raise ConflictError("this conversation belongs to another tenant")
        if record.status == "ended":
            raise ConflictError("this conversation has ended; start a new one")
        now = self._clock()
        waiting: HandoffRecord | None = None
        if record.status == ConversationStatus.HANDOFF:
            open_handoff = await self._handoffs.active_for(conversation_id)
            if open_handoff is not None and open_handoff.status is HandoffStatus.TAKEN:
                return await self._to_agent(record, text, now)
            waiting = open_handoff
        state = DialogueState.from_dict(record.state)
        if not state.transcript:
            state.language = state.language or record.language
        turn = Turn(
            text=text,
            channel=Channel(record.channel),
            conversation_id=conversation_id,
            caller=caller or record.caller,
            sender_email=record.email,
            now=now,
            state=state,
        )

        async def audit(action: str, customer_id: str | None, details: dict[str, Any]) -> None:
            await self._audit.record(
                tenant_id=self._tenant_id,
                actor="bot",
                action=action,
                now=now,
                customer_id=customer_id,
                conversation_id=conversation_id,
                details=details,
            )

        reply = await self._manager.respond(turn, audit)
        latency_ms = (time.perf_counter() - started) * 1000.0
        await self._conversations.record_exchange(
            conversation_id,
            customer_text=text,
            bot_text=reply.text,
            action=reply.action.value,
            intent=reply.intent,
            confidence=reply.confidence,
            citations=[c.to_dict() for c in reply.citations],
            reason=reply.reason,
            state=reply.state.to_dict(),
            language=reply.language,
            customer_id=reply.state.customer_id,
            latency_ms=latency_ms,
            now=now,
            handoff=self._handoff_row(reply),
            channel=record.channel,
        )
        at = now.isoformat()
        self._live.publish(
            "conversation.turn",
            {
                "conversation_id": conversation_id,
                "channel": record.channel,
                "role": "customer",
                "text": text,
                "intent": None,
                "confidence": None,
                "action": None,
                "at": at,
            },
        )
        self._publish_turn(conversation_id, record.channel, "bot", reply, at)
        if reply.action is Action.HANDOFF and record.status != "handoff":
            handoff = reply.handoff
            created = await self._handoffs.active_for(conversation_id)
            self._live.publish(
                "handoff.waiting",
                {
                    "handoff_id": created.id if created is not None else None,
                    "conversation_id": conversation_id,
                    "channel": record.channel,
                    "reason": handoff.reason if handoff else reply.reason,
                    "summary": handoff.summary if handoff else "",
                    "at": at,
                },
            )
            if created is not None:
                await announce_wait(self._live, self._handoffs, created, now, kind="queued")
        elif waiting is not None:  # still waiting: where they are now
            await announce_wait(self._live, self._handoffs, waiting, now, kind="queue")
        metrics.REPLIES.labels(channel=record.channel, action=reply.action.value).inc()
        metrics.REPLY_SECONDS.labels(channel=record.channel).observe(latency_ms / 1000.0)
        if reply.action is Action.HANDOFF and reply.handoff is not None:
            metrics.HANDOFFS.labels(channel=record.channel, reason=reply.handoff.reason).inc()
            log.info("conversation %s handed off: %s", conversation_id, reply.handoff.reason)
        return reply

    async def _to_agent(self, record: ConversationRecord, text: str, now: datetime) -> Reply:
        """Human mode: the message is for the agent; stored and published, not answered."""
        await self._handoffs.add_customer_turn(record.id, text, now)
        self._live.publish(
            "conversation.turn",
            {
                "conversation_id": record.id,
                "channel": record.channel,
                "role": "customer",
                "text": text,
                "intent": None,
                "confidence": None,
                "action": None,
                "at": now.isoformat(),
            },
        )
        state = DialogueState.from_dict(record.state)
        language = state.language or record.language or self._manager.tenant.languages[0]
        return Reply("", Action.HANDOFF, 1.0, None, language=language, reason="with_agent", state=state)

    def _publish_turn(self, conversation_id: str, channel: str, role: str, reply: Reply, at: str) -> None:
        self._live.publish(
            "conversation.turn",
            {
                "conversation_id": conversation_id,
                "channel": channel,
                "role": role,
                "text": reply.text,
                "intent": reply.intent,
                "confidence": reply.confidence,
                "action": reply.action.value,
                "at": at,
            },
        )

    @staticmethod
    def _handoff_row(reply: Reply) -> dict[str, Any] | None:
        if reply.action is not Action.HANDOFF or reply.handoff is None:
            return None
        return reply.handoff.to_dict()

    async def csat(self, conversation_id: str, score: Any) -> ConversationRecord:
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise InputError("'score' must be a whole number from 1 to 5")
        record = await self._conversations.set_csat(conversation_id, score, self._clock())
        metrics.CSAT.labels(channel=record.channel).observe(score)
        return record
