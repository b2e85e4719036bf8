"""DialogueManager: the one decision point every channel (chat, voice, e-mail) calls.

    reply = await manager.respond(Turn(text=..., channel=..., now=..., state=previous_reply.state))

Per turn: detect the language, embed the text once (shared by the intent classifier and the
knowledge base), extract slots, then decide in this order:
  1. early handoff: sensitive topics and explicit requests for a human (phrases or intents);
  2. a pending action that this turn completes (the field we asked for, verification);
  3. a confident action intent -> identity verification -> the tool against customer data;
  4. small talk (greeting, thanks, goodbye -> end);
  5. a confident knowledge-base answer, with its citations (optionally rephrased by the LLM);
  6. otherwise the tenant's low-confidence policy (ask for more, ask to rephrase, or hand off), and
     a handoff after `max_failed_turns` such turns in a row.
The manager does no I/O of its own: customer data comes through the CRM adapter, audit records
through the injected sink, the LLM through LLMClient.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from voicebot.config import LowConfidenceAction, Tenant
from voicebot.crm.base import CRMAdapter, Customer
from voicebot.dialogue import verification
from voicebot.dialogue.handoff import build_handoff
from voicebot.dialogue.llm import LLMClient
from voicebot.dialogue.phrases import Phrasebook
from voicebot.dialogue.tone import ToneRules
from voicebot.dialogue.tools import PERSONAL_DATA_TOOLS, AuditSink, ToolContext, answer_yes_no
from voicebot.dialogue.triggers import Triggers
from voicebot.dialogue.types import Action, Citation, DialogueState, Reply, TranscriptLine, Turn
from voicebot.errors import ConflictError, InputError, NotFoundError, ProviderError

log = logging.getLogger(__name__)

SMALL_TALK = {
    "greeting": "greeting_reply",
    "thanks": "thanks_reply",
    "goodbye": "goodbye_reply",
    "acknowledge": "anything_else",
}
# fields a tool may need across turns; cleared when its action completes
TRANSIENT_FIELDS = ("datetime", "address", "confirm_cancel")
KNOWLEDGE_FACTORS = ("postcode", "birth_date")
MAX_VERIFICATION_ATTEMPTS = 3
SLOT_FILL_CONFIDENCE = 0.99  # a field we asked for and a rule extracted
# what the customer data behind a tool may raise: the conversation goes to a person, never an exception
TOOL_ERRORS = (ProviderError, ConflictError, NotFoundError)


class IntentModel(Protocol):
    def predict(self, text: str, vector: npt.NDArray[np.float32] | None = None) -> Any: ...


class Retriever(Protocol):
    def search(
        self,
        query: str,
        *,
        language: str | None,
        vector: Any = None,
        top_k: int = 3,
        tags: set[str] | None = None,
    ) -> list[Any]: ...


class AsyncEmbedder(Protocol):
    async def embed_one(self, text: str) -> npt.NDArray[np.float32]: ...


class LanguageModel(Protocol):
    def detect(self, text: str) -> tuple[str | None, float]: ...


SlotExtractor = Callable[..., dict[str, Any]]


async def _no_audit(action: str, customer_id: str | None, details: dict[str, Any]) -> None:
    return None


class DialogueManager:
    def __init__(
        self,
        tenant: Tenant,
        *,
        embedder: AsyncEmbedder,
        intents: IntentModel,
        knowledge: Retriever,
        crm: CRMAdapter,
        language: LanguageModel,
        slots: SlotExtractor,
        answer_text: Callable[[Any], str],
        llm: LLMClient | None = None,
        kb_topics: dict[str, set[str]] | None = None,
    ) -> None:
        self.tenant = tenant
        self._kb_topics = kb_topics or {}
        self._embedder = embedder
        self._intents = intents
        self._knowledge = knowledge
        self._crm = crm
        self._language = language
        self._slots = slots
        self._answer_text = answer_text
        self._llm = llm if tenant.llm.enabled else None
        self.phrases = Phrasebook(tenant)
        self.tone = ToneRules(tenant)
        self._triggers = Triggers(tenant)
        self._tz = ZoneInfo(tenant.timezone)
        self._threshold = tenant.threshold

    # ----------------------------------------------------------------- public API

    def greet(self, language: str | None = None, now: datetime | None = None) -> Reply:
        """The opening message of a conversation (tenant greeting)."""
        lang = language if language in self.tenant.languages else self.tenant.languages[0]
        text = self.tone.apply(self.tone.greeting(lang) or self.phrases.text("greeting_reply", lang), lang)
        state = DialogueState(language=lang, transcript=[TranscriptLine("bot", text, now)])
        return Reply(text=text, action=Action.ANSWER, confidence=1.0, intent=None, language=lang, state=state)

    async def respond(self, turn: Turn, audit: AuditSink = _no_audit) -> Reply:
        if turn.now is None:
            raise InputError("Turn.now is required: the dialogue never reads the clock itself")
        state = dataclasses.replace(
            turn.state, fields=dict(turn.state.fields), transcript=list(turn.state.transcript)
        )
        text = " ".join(turn.text.split())
        lang = self._detect_language(text, state)
        state.transcript.append(TranscriptLine("customer", text, turn.now))
        state.turn_count += 1
        ctx = _TurnContext(turn=turn, state=state, text=text, language=lang, audit=audit)

        if state.ended:
            state.ended = False  # a message after goodbye reopens the conversation
        if state.handed_off:
            return self._finish(
                ctx,
                self.phrases.text("already_handed_off", lang),
                Action.HANDOFF,
                1.0,
                state.last_intent,
                reason="already_handed_off",
            )
        if not text:
            return self._finish(
                ctx, self.phrases.text("empty", lang), Action.CLARIFY, 0.0, None, reason="empty"
            )
        try:
            return await self._decide(ctx)
        except TOOL_ERRORS as exc:  # customer records unreachable outside a tool call (identification)
            log.warning("customer data failed: %s", exc)
            return await self._handoff(
                ctx,
                "tool_failed",
                0.0,
                state.pending_intent or state.last_intent,
                text=self.phrases.text("tool_failed", lang),
            )

    # ----------------------------------------------------------------- decision

    async def _decide(self, ctx: _TurnContext) -> Reply:
        state, text, lang = ctx.state, ctx.text, ctx.language
        vector = await self._embedder.embed_one(text)
        prediction = self._intents.predict(text, vector)
        intent, confidence = prediction.intent, float(prediction.confidence)
        confident = intent is not None and confidence >= self._threshold
        ctx.fields = self._slots(text, language=lang, now=ctx.turn.now, timezone=self.tenant.timezone)
        self._take_awaited_free_text(ctx, intent if confident else None)
        state.fields.update({k: v for k, v in ctx.fields.items() if k not in KNOWLEDGE_FACTORS})
        await self._identify(ctx)

        trigger = self._triggers.match(text)
        if trigger is not None:
            reason = "human_requested" if trigger.kind == "human" else f"sensitive:{trigger.topic}"
            return await self._handoff(ctx, reason, 1.0, state.pending_intent or state.last_intent)
        if confident and intent in self.tenant.handoff.intents:
            return await self._handoff(ctx, f"sensitive:{intent}", confidence, intent)
        if confident and intent == "human":
            return await self._handoff(
                ctx, "human_requested", confidence, state.pending_intent or state.last_intent
            )

        if state.pending_intent and self._supplies_awaited(ctx):
            return await self._run_tool(ctx, state.pending_intent, SLOT_FILL_CONFIDENCE)
        if confident and intent in PERSONAL_DATA_TOOLS:
            return await self._run_tool(ctx, intent, confidence)

        hits = self._knowledge.search(text, language=lang, vector=vector, top_k=3)
        best = hits[0] if hits else None
        if confident and intent in SMALL_TALK and (best is None or best.confidence < confidence):
            return self._small_talk(ctx, intent, confidence)
        if best is not None and best.confidence >= self._threshold:
            return await self._answer_from_knowledge(ctx, hits, intent)
        if confident and intent in self._kb_topics:
            topical = self._topic_hits(ctx, vector, intent, confidence)
            if topical:
                return await self._answer_from_knowledge(ctx, topical, intent)
        if self._llm is not None and self.tenant.llm.intent_fallback:
            picked = await self._llm.pick_intent(text, sorted(PERSONAL_DATA_TOOLS))
            if picked is not None:
                return await self._run_tool(ctx, picked, self._threshold)
        # an out-of-scope prediction (intent None) is no confidence in any answer
        guess = confidence if intent is not None else 0.0
        return await self._low_confidence(ctx, intent, max(guess, best.confidence if best else 0.0))

    def _topic_hits(self, ctx: _TurnContext, vector: Any, intent: str, intent_confidence: float) -> list[Any]:
        """KB hits within a confidently recognised topic (the intent's `kb_tags`).

        Two independent signals back such an answer: the classifier's calibrated probability that
        the question is about the topic, and retrieval's confidence that the passage answers it.
        The answer's confidence is their geometric mean, so weak retrieval still pulls it down.
        """
        hits = self._knowledge.search(
            ctx.text, language=ctx.language, vector=vector, top_k=3, tags=self._kb_topics[intent]
        )
        rescored = [
            dataclasses.replace(h, confidence=math.sqrt(intent_confidence * h.confidence)) for h in hits
        ]
        return [h for h in rescored if h.confidence >= self._threshold]

    def _small_talk(self, ctx: _TurnContext, intent: str, confidence: float) -> Reply:
        ctx.state.failed_turns = 0
        text = self.phrases.text(SMALL_TALK[intent], ctx.language)
        if intent == "goodbye":
            ctx.state.ended = True
            return self._finish(ctx, text, Action.END, confidence, intent, sign_off=True)
        return self._finish(ctx, text, Action.ANSWER, confidence, intent)

    async def _answer_from_knowledge(self, ctx: _TurnContext, hits: list[Any], intent: str | None) -> Reply:
        best = hits[0]
        # cite every passage close to the best one; the answer text comes from the best
        cited = [h for h in hits if h.confidence >= max(self._threshold, best.confidence - 0.1)]
        citations: list[Citation] = [h.citation() for h in cited]
        text = self._answer_text(best)
        if self._llm is not None and self.tenant.llm.rephrase_answers:
            rephrased = await self._llm.rephrase(
                text, [c.text for c in citations], ctx.language, self.tenant.tone.formality.value
            )
            text = rephrased or text
        ctx.state.failed_turns = 0
        ctx.state.last_intent = intent
        return self._finish(
            ctx, text, Action.ANSWER, float(best.confidence), intent, citations=citations, reason="knowledge"
        )

    async def _low_confidence(self, ctx: _TurnContext, intent: str | None, confidence: float) -> Reply:
        state = ctx.state
        state.failed_turns += 1
        policy = self.tenant.confidence
        # the human gets what the conversation established, not an unconfident guess
        known = state.pending_intent or state.last_intent
        if policy.below_threshold is LowConfidenceAction.HANDOFF:
            return await self._handoff(ctx, "low_confidence", confidence, known)
        if state.failed_turns >= policy.max_failed_turns:
            return await self._handoff(ctx, "failed_turns", confidence, known)
        if state.pending_intent and state.awaiting:
            return self._finish(
                ctx,
                self._ask_for(state.awaiting, ctx),
                Action.CLARIFY,
                confidence,
                state.pending_intent,
                reason="below_threshold",
            )
        key = "rephrase" if policy.below_threshold is LowConfidenceAction.REPHRASE else "ask_more"
        return self._finish(
            ctx,
            self.phrases.text(key, ctx.language),
            Action.CLARIFY,
            confidence,
            intent,
            reason="below_threshold",
        )

    # ----------------------------------------------------------------- actions on customer data

    async def _run_tool(self, ctx: _TurnContext, intent: str, confidence: float) -> Reply:
        state = ctx.state
        if state.pending_intent != intent:
            for name in TRANSIENT_FIELDS:
                if name not in ctx.fields:
                    state.fields.pop(name, None)
        state.pending_intent = intent
        state.last_intent = intent
        state.failed_turns = 0  # an understood turn breaks a run of failed ones
        if ctx.identify_error is not None:
            raise ctx.identify_error  # respond() hands off: customer records unreachable
        customer = await self._customer(state)
        if customer is None:
            state.verified = False  # nobody identified (or the record is gone): nothing is verified
        if not state.verified:
            gate = await self._verify(ctx, customer, confidence, intent)
            if gate is not None:
                return gate
        assert customer is not None  # verified implies identified
        tool_ctx = ToolContext(
            crm=self._crm,
            customer=customer,
            fields=state.fields,
            text=ctx.text,
            language=ctx.language,
            phrases=self.phrases,
            now=ctx.turn.now or datetime.now(self._tz),
            timezone=self._tz,
            working_hours=self.tenant.working_hours,
            audit=lambda action, cid, details: ctx.audit(action, cid, details),
        )
        try:
            outcome = await PERSONAL_DATA_TOOLS[intent](tool_ctx)
        except TOOL_ERRORS as exc:
            log.warning("tool %s failed: %s", intent, exc)
            return await self._handoff(
                ctx, "tool_failed", confidence, intent, text=self.phrases.text("tool_failed", ctx.language)
            )
        state.failed_turns = 0
        if outcome.awaiting:
            state.awaiting = outcome.awaiting
            return self._finish(
                ctx, outcome.text, Action.CLARIFY, confidence, intent, reason=outcome.awaiting
            )
        state.pending_intent = None
        state.awaiting = None
        for name in TRANSIENT_FIELDS:
            state.fields.pop(name, None)
        return self._finish(ctx, outcome.text, Action.ANSWER, confidence, intent, reason="tool")

    async def _verify(
        self, ctx: _TurnContext, customer: Customer | None, confidence: float, intent: str
    ) -> Reply | None:
        """None when verified now; otherwise the reply that asks for what is missing."""
        state, lang = ctx.state, ctx.language
        if customer is None:
            state.awaiting = "identity"
            gave = "phone" in ctx.fields or "email" in ctx.fields
            key = "not_found_customer" if gave else "identify"
            return self._finish(
                ctx,
                self.phrases.text(key, lang),
                Action.CLARIFY,
                confidence,
                intent,
                reason="verification_required",
            )
        if not verification.has_factor(ctx.fields):
            state.awaiting = "verification"
            return self._finish(
                ctx,
                self.phrases.text("verify", lang),
                Action.CLARIFY,
                confidence,
                intent,
                reason="verification_required",
            )
        matched = verification.check_factor(customer, ctx.fields)
        await ctx.audit("verify:" + ("passed" if matched else "failed"), customer.id, {"intent": intent})
        if matched:
            state.verified = True
            state.awaiting = None
            return None
        state.verification_attempts += 1
        if state.verification_attempts >= MAX_VERIFICATION_ATTEMPTS:
            return await self._handoff(ctx, "verification_failed", confidence, intent)
        state.awaiting = "verification"
        return self._finish(
            ctx,
            self.phrases.text("verify_failed", lang),
            Action.CLARIFY,
            confidence,
            intent,
            reason="verification_failed",
        )

    async def _identify(self, ctx: _TurnContext) -> None:
        """Who the customer is: the channel's caller ID / sender address, or details they give.

        A phone number or e-mail address in the message wins over the channel's: whoever names
        another person's details becomes that person, unverified, and must verify again."""
        state = ctx.state
        given = {"phone", "email"} & ctx.fields.keys()
        if state.customer_id is not None and not given:
            return
        try:
            customer = None
            if given:
                customer = await verification.identify(
                    self._crm, caller=None, sender_email=None, fields=ctx.fields
                )
            if customer is None and state.customer_id is None:
                customer = await verification.identify(
                    self._crm, caller=ctx.turn.caller, sender_email=ctx.turn.sender_email, fields={}
                )
        except ProviderError as exc:  # a tool that needs the customer hands off (see _run_tool)
            log.warning("customer identification failed: %s", exc)
            ctx.identify_error = exc
            return
        if customer is not None and customer.id != state.customer_id:
            # a different person's details: verification starts again for them
            state.verified = False
            state.verification_attempts = 0
            state.customer_id = customer.id

    async def _customer_summary(self, state: DialogueState) -> dict[str, Any] | None:
        try:
            customer = await self._customer(state)
        except ProviderError:
            return {"id": state.customer_id} if state.customer_id else None
        return {**customer.public(), "verified": state.verified} if customer else None

    async def _customer(self, state: DialogueState) -> Customer | None:
        return await self._crm.get_customer(state.customer_id) if state.customer_id else None

    def _take_awaited_free_text(self, ctx: _TurnContext, intent: str | None) -> None:
        """A free-text answer to the question we asked (an address, yes/no).

        `intent` is this turn's confident intent: a message that is clearly about something
        else ("where is my order A1003?") is not taken as the new delivery address."""
        awaiting = ctx.state.awaiting
        other = {*PERSONAL_DATA_TOOLS, *SMALL_TALK, "human", *self.tenant.handoff.intents}
        other.discard("change_delivery")
        if (
            awaiting == "address"
            and intent not in other
            and len(ctx.text) >= 8
            and any(c.isdigit() for c in ctx.text)
        ):
            ctx.fields["address"] = ctx.text.strip(" .")
        elif awaiting == "confirm_cancel" and (decision := answer_yes_no(ctx.text)) is not None:
            ctx.fields["confirm_cancel"] = decision

    def _supplies_awaited(self, ctx: _TurnContext) -> bool:
        awaiting, fields = ctx.state.awaiting, ctx.fields
        if awaiting == "verification":
            return verification.has_factor(fields)
        if awaiting == "identity":
            return "phone" in fields or "email" in fields
        return awaiting is not None and awaiting in fields

    def _ask_for(self, awaiting: str, ctx: _TurnContext) -> str:
        lang = ctx.language
        opening, closing = self.tenant.working_hours
        keys = {
            "verification": "verify",
            "identity": "identify",
            "order_id": "ask_order_id",
            "datetime": "ask_datetime",
        }
        if awaiting == "address":
            return self.phrases.text("ask_address", lang, order_id=ctx.state.fields.get("order_id", ""))
        if awaiting == "confirm_cancel":
            return self.phrases.text("rephrase", lang)
        return self.phrases.text(keys.get(awaiting, "ask_more"), lang, open=opening, close=closing)

    # ----------------------------------------------------------------- reply assembly

    def _detect_language(self, text: str, state: DialogueState) -> str:
        detected, _ = self._language.detect(text) if text else (None, 0.0)
        lang = detected or state.language or self.tenant.languages[0]
        state.language = lang
        return lang

    async def _handoff(
        self, ctx: _TurnContext, reason: str, confidence: float, intent: str | None, text: str | None = None
    ) -> Reply:
        state = ctx.state
        key = "handoff_sensitive" if reason.startswith("sensitive:") else "handoff"
        reply_text = self.tone.apply(text or self.phrases.text(key, ctx.language), ctx.language)
        state.transcript.append(TranscriptLine("bot", reply_text, ctx.turn.now))
        state.handed_off = True
        context = build_handoff(
            reason=reason,
            intent=intent,
            state=state,
            channel=ctx.turn.channel.value,
            customer=await self._customer_summary(state),
            language=ctx.language,
            withhold_last=verification.has_factor(ctx.fields),
        )
        state.transcript.pop()
        return self._finish(
            ctx, reply_text, Action.HANDOFF, confidence, intent, reason=reason, handoff=context, toned=True
        )

    def _finish(
        self,
        ctx: _TurnContext,
        text: str,
        action: Action,
        confidence: float,
        intent: str | None,
        *,
        reason: str | None = None,
        citations: list[Citation] | None = None,
        sign_off: bool = False,
        handoff: Any = None,
        toned: bool = False,
    ) -> Reply:
        final = text if toned else self.tone.apply(text, ctx.language, sign_off=sign_off)
        ctx.state.transcript.append(TranscriptLine("bot", final, ctx.turn.now))
        return Reply(
            text=final,
            action=action,
            confidence=max(0.0, min(1.0, confidence)),
            intent=intent,
            citations=citations or [],
            handoff=handoff,
            language=ctx.language,
            fields={k: v for k, v in ctx.fields.items() if k not in KNOWLEDGE_FACTORS},
            reason=reason,
            state=ctx.state,
        )


@dataclasses.dataclass(slots=True)
class _TurnContext:
    turn: Turn
    state: DialogueState
    text: str
    language: str
    audit: AuditSink
    fields: dict[str, Any] = dataclasses.field(default_factory=dict)
    identify_error: ProviderError | None = None
