"""DialogueManager scenarios: the confidence policy, early handoff, the handoff context, failures."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.dialogue.conftest import ANA_PHONE, NOW, ConversationFactory, ManagerFactory
from tests.fakes.crm import InMemoryCRM
from voicebot.config import LowConfidenceAction, Tenant
from voicebot.dialogue.types import Action, Channel, DialogueState, Turn
from voicebot.errors import InputError, ProviderUnavailable

GIBBERISH = ("blorp fizzle wug", "quantum banana telescope", "hmm purple", "flibber jabber doo")


def with_policy(tenant: Tenant, action: LowConfidenceAction, max_failed: int = 2) -> Tenant:
    varied = tenant.model_copy(deep=True)
    varied.confidence.below_threshold = action
    varied.confidence.max_failed_turns = max_failed
    return varied


@pytest.mark.parametrize(
    ("action", "words"),
    [(LowConfidenceAction.ASK_MORE, "tell me a bit more"), (LowConfidenceAction.REPHRASE, "in other words")],
)
async def test_low_confidence_asks_as_configured(
    make_manager: ManagerFactory,
    conversation: ConversationFactory,
    demo_tenant: Tenant,
    action: LowConfidenceAction,
    words: str,
) -> None:
    chat = conversation(manager=make_manager(with_policy(demo_tenant, action, max_failed=5)))
    reply = await chat.say(GIBBERISH[0])
    assert reply.action is Action.CLARIFY
    assert reply.reason == "below_threshold"
    assert words in reply.text
    assert reply.confidence < demo_tenant.threshold
    assert reply.handoff is None and reply.citations == []


async def test_low_confidence_hands_off_at_once_when_configured(
    make_manager: ManagerFactory, conversation: ConversationFactory, demo_tenant: Tenant
) -> None:
    chat = conversation(manager=make_manager(with_policy(demo_tenant, LowConfidenceAction.HANDOFF)))
    reply = await chat.say(GIBBERISH[0])
    assert reply.action is Action.HANDOFF
    assert reply.reason == "low_confidence"
    assert reply.handoff is not None and reply.handoff.reason == "low_confidence"


async def test_max_failed_turns_in_a_row_hand_off(conversation: ConversationFactory) -> None:
    chat = conversation()  # demo: max_failed_turns 2
    first = await chat.say(GIBBERISH[0])
    assert first.action is Action.CLARIFY and chat.state.failed_turns == 1
    second = await chat.say(GIBBERISH[1])
    assert second.action is Action.HANDOFF
    assert second.reason == "failed_turns"
    assert second.handoff is not None
    assert "several turns in a row" in second.handoff.summary
    assert second.handoff.intent is None  # no unconfident guess presented as what the customer wants


async def test_an_answer_resets_the_failed_turns(conversation: ConversationFactory) -> None:
    chat = conversation()
    await chat.say(GIBBERISH[0])
    answered = await chat.say("What are your opening hours?")
    assert answered.action is Action.ANSWER and answered.citations
    assert chat.state.failed_turns == 0
    again = await chat.say(GIBBERISH[1])
    assert again.action is Action.CLARIFY  # 1 failed turn, not 2: the run was broken
    last = await chat.say(GIBBERISH[2])
    assert last.action is Action.HANDOFF and last.reason == "failed_turns"


async def test_an_understood_action_turn_breaks_the_run_too(conversation: ConversationFactory) -> None:
    chat = conversation()
    await chat.say(GIBBERISH[0])
    asked = await chat.say("Where is my order?")  # understood: asks who the customer is
    assert asked.reason == "verification_required"
    assert chat.state.failed_turns == 0
    reply = await chat.say(GIBBERISH[1])
    assert reply.action is Action.CLARIFY, "only one failed turn in a row"


async def test_small_talk_breaks_the_run(conversation: ConversationFactory) -> None:
    chat = conversation()
    await chat.say(GIBBERISH[0])
    await chat.say("hello")
    assert chat.state.failed_turns == 0


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("I want to talk to a human", "en"),
        ("Can I speak to a real person please?", "en"),
        ("Želim govoriti s človekom", "sl"),
        ("Lahko govorim z živo osebo?", "sl"),
    ],
)
async def test_explicit_human_request_hands_off(
    conversation: ConversationFactory, text: str, language: str
) -> None:
    chat = conversation()
    reply = await chat.say(text)
    assert reply.action is Action.HANDOFF
    assert reply.reason == "human_requested"
    assert reply.language == language
    assert reply.handoff is not None and reply.handoff.language == language


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("I will contact my lawyer about this", "legal"),
        ("Poklical bom odvetnika, to bo šlo na sodišče", "legal"),
        ("I want to kill myself", "self_harm"),
        ("Razmišljam o samomoru", "self_harm"),
        ("I want to file a complaint, this is unacceptable", "complaint"),
        ("Želim vložiti pritožbo", "complaint"),
        ("I want to cancel my contract", "cancel_contract"),
        ("Želim prekiniti pogodbo", "cancel_contract"),
    ],
)
async def test_sensitive_topics_hand_off_early(
    conversation: ConversationFactory, text: str, topic: str
) -> None:
    chat = conversation()
    reply = await chat.say(text)
    assert reply.action is Action.HANDOFF
    assert reply.reason == f"sensitive:{topic}"
    assert reply.handoff is not None and reply.handoff.reason == f"sensitive:{topic}"
    assert "sensitive topic" in reply.handoff.summary


async def test_sensitive_intent_without_a_phrase_hands_off(conversation: ConversationFactory) -> None:
    chat = conversation()
    reply = await chat.say("your service is terrible and the technician was rude to me")
    assert reply.action is Action.HANDOFF
    assert reply.reason == "sensitive:complaint"


async def test_handoff_context_is_complete(conversation: ConversationFactory) -> None:
    chat = conversation(channel=Channel.VOICE, caller=ANA_PHONE)
    await chat.say("I need to change the delivery address for order A1001")
    await chat.say("my postcode is 1000")
    reply = await chat.say("This is unacceptable, I want a person")
    assert reply.action is Action.HANDOFF and reply.handoff is not None
    context = reply.handoff
    assert context.reason == "sensitive:complaint"
    assert context.intent == "change_delivery"
    assert context.fields == {"order_id": "A1001"}
    assert context.customer is not None
    assert context.customer["id"] == "C001" and context.customer["verified"] is True
    assert "Ana Novak (identity verified)" in context.summary
    assert "change of delivery details" in context.summary
    assert "sensitive topic (complaint)" in context.summary
    assert "order id A1001" in context.summary
    assert [line.role for line in context.transcript] == ["customer", "bot"] * 3
    assert context.transcript[-1].text == reply.text  # the final bot message is in it
    assert context.transcript[0].text == "I need to change the delivery address for order A1001"
    assert all(line.at == NOW for line in context.transcript)
    assert "postcode" not in context.fields and '1000"' not in context.summary
    assert context.to_dict()["transcript"][-1]["role"] == "bot"


async def test_after_handoff_the_colleague_is_coming(conversation: ConversationFactory) -> None:
    chat = conversation()
    handed = await chat.say("I want to talk to a human")
    assert handed.handoff is not None
    for text, language in (("hello? are you there?", "en"), ("Ali je kdo tam?", "sl")):
        reply = await chat.say(text)
        assert reply.action is Action.HANDOFF
        assert reply.reason == "already_handed_off"
        assert reply.handoff is None  # no second handoff
        assert reply.language == language
    assert "colleague will be with you" in chat.replies[1].text
    assert "Sodelavec bo kmalu" in chat.replies[2].text


async def test_empty_text_asks_for_a_question(conversation: ConversationFactory) -> None:
    chat = conversation()
    for text in ("", "   \n\t "):
        reply = await chat.say(text)
        assert reply.action is Action.CLARIFY
        assert reply.reason == "empty"
        assert reply.confidence == 0.0
    assert chat.state.failed_turns == 0


async def test_turn_without_now_is_refused(manager: object) -> None:
    from voicebot.dialogue.manager import DialogueManager

    assert isinstance(manager, DialogueManager)
    with pytest.raises(InputError):
        await manager.respond(Turn(text="hello", state=DialogueState()))


async def test_the_callers_state_is_not_mutated(conversation: ConversationFactory) -> None:
    chat = conversation()
    await chat.say("hello")
    before = chat.state
    snapshot = before.to_dict()
    await chat.say("What are your opening hours?")
    assert before.to_dict() == snapshot
    restored = DialogueState.from_dict(chat.state.to_dict())
    assert restored.transcript == chat.state.transcript


@pytest.mark.parametrize("when", ["first", "identify", "tool"])
async def test_crm_failure_hands_off_never_raises(
    conversation: ConversationFactory, crm: InMemoryCRM, when: str
) -> None:
    caller = None if when == "identify" else ANA_PHONE
    chat = conversation(channel=Channel.VOICE, caller=caller)
    if when == "first":
        crm.fail_with = ProviderUnavailable("crm down")
        reply = await chat.say("Where is my order?")
    elif when == "identify":
        await chat.say("Where is my order?")
        crm.fail_with = ProviderUnavailable("crm down")
        reply = await chat.say("+38640111222")
    else:
        await chat.say("Where is my order?")
        crm.fail_with = ProviderUnavailable("crm down")
        reply = await chat.say("1000")
    assert reply.action is Action.HANDOFF
    assert reply.reason == "tool_failed"
    assert "can't reach our customer records" in reply.text
    assert reply.handoff is not None and reply.handoff.intent == "order_status"
    assert "customer records could not be reached" in reply.handoff.summary


async def test_human_request_still_works_with_the_crm_down(
    conversation: ConversationFactory, crm: InMemoryCRM
) -> None:
    crm.fail_with = ProviderUnavailable("crm down")
    chat = conversation(channel=Channel.VOICE, caller=ANA_PHONE)
    reply = await chat.say("I want to talk to a human")
    assert reply.action is Action.HANDOFF and reply.reason == "human_requested"


async def test_knowledge_answers_need_no_crm(conversation: ConversationFactory, crm: InMemoryCRM) -> None:
    crm.fail_with = ProviderUnavailable("crm down")
    chat = conversation()
    reply = await chat.say("What are your opening hours?")
    assert reply.action is Action.ANSWER and reply.citations


async def test_greeting_opens_in_the_requested_language(manager: object) -> None:
    from voicebot.dialogue.manager import DialogueManager

    assert isinstance(manager, DialogueManager)
    opening = manager.greet("sl", now=datetime(2026, 11, 24, 9, 0))
    assert opening.text.startswith("Pozdravljeni v trgovini Demo Shop")
    assert opening.state.language == "sl" and opening.state.transcript[0].role == "bot"
    assert manager.greet("de").language == "en"
