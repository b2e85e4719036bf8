"""DialogueManager scenarios: the reply follows the customer's language; the tenant's brand tone."""

from __future__ import annotations

from tests.dialogue.conftest import ConversationFactory, ManagerFactory
from voicebot.config import Formality, PhraseRule, Tenant
from voicebot.dialogue.types import Action


async def test_reply_follows_the_language_of_each_message(conversation: ConversationFactory) -> None:
    chat = conversation()
    en = await chat.say("What are your opening hours?")
    assert (en.action, en.language) == (Action.ANSWER, "en")
    assert all(not c.source.startswith("sl/") for c in en.citations)
    sl = await chat.say("Kako vrnem izdelek?")
    assert (sl.action, sl.language) == (Action.ANSWER, "sl")
    back = await chat.say("hello")
    assert back.language == "en" and back.text == "Hello! How can I help you today?"


async def test_short_ambiguous_messages_keep_the_conversation_language(
    conversation: ConversationFactory,
) -> None:
    chat = conversation()
    await chat.say("Kako vrnem izdelek?")
    for text in ("ok", "OK", "hmm"):
        reply = await chat.say(text)
        assert reply.language == "sl", text
    assert chat.state.language == "sl"

    chat = conversation()
    await chat.say("How do I return an item?")
    reply = await chat.say("ok")
    assert reply.language == "en"


async def test_prompts_follow_the_language_mid_action(conversation: ConversationFactory) -> None:
    chat = conversation()
    asked = await chat.say("Where is my order?")
    assert asked.language == "en" and "phone number" in asked.text
    again = await chat.say("Kje je moje naročilo?")
    assert again.language == "sl" and "telefonsko številko" in again.text


async def test_phrase_rules_apply_to_every_reply(
    make_manager: ManagerFactory, conversation: ConversationFactory, demo_tenant: Tenant
) -> None:
    tenant = demo_tenant.model_copy(deep=True)
    tenant.tone.phrase_rules += [
        PhraseRule(language="en", replace="colleague", with_="team member"),
        PhraseRule(language="*", replace="Hello", with_="Hi there"),
        PhraseRule(language="sl", replace="sodelavcem", with_="svetovalcem"),
    ]
    chat = conversation(manager=make_manager(tenant))
    greeting = await chat.say("hello")
    assert greeting.text.startswith("Hi there!")
    handed = await chat.say("I want to talk to a human")
    assert "team member" in handed.text and "colleague" not in handed.text
    assert handed.handoff is not None and handed.handoff.transcript[-1].text == handed.text

    sl_chat = conversation(manager=make_manager(tenant))
    sl = await sl_chat.say("Želim govoriti s človekom")
    assert "svetovalcem" in sl.text and "sodelavcem" not in sl.text


async def test_sign_off_on_goodbye_ends_the_conversation(conversation: ConversationFactory) -> None:
    for bye, thanks, sign_off in (
        ("goodbye", "Thank you for contacting us.", "Have a nice day!"),
        ("nasvidenje", "Hvala, ker ste nas kontaktirali.", "Lep dan vam želim!"),
    ):
        chat = conversation()
        reply = await chat.say(bye)
        assert reply.action is Action.END
        assert reply.text == f"{thanks} {sign_off}"
        assert chat.state.ended
        again = await chat.say("hello")  # a message after goodbye reopens the conversation
        assert again.action is Action.ANSWER and not chat.state.ended
        assert sign_off not in again.text


async def test_informal_tenant_uses_informal_slovenian(
    make_manager: ManagerFactory, conversation: ConversationFactory, demo_tenant: Tenant
) -> None:
    informal = demo_tenant.model_copy(deep=True)
    informal.tone.formality = Formality.INFORMAL
    formal_chat = conversation()
    informal_chat = conversation(manager=make_manager(informal))

    formal = await formal_chat.say("živjo")
    casual = await informal_chat.say("živjo")
    assert formal.text == "Pozdravljeni! Kako vam lahko pomagam?"
    assert casual.text == "Živjo! Kako ti lahko pomagam?"

    asked = await informal_chat.say("Kje je moje naročilo?")
    assert "povej" in asked.text and "povejte" not in asked.text
    english = await informal_chat.say("Where is my order?")
    assert "please first tell me" in english.text  # English has one form


def test_phrase_rules_match_whole_words_and_replace_literally(demo_tenant: Tenant) -> None:
    from voicebot.dialogue.tone import ToneRules

    tenant = demo_tenant.model_copy(deep=True)
    tenant.tone.phrase_rules.append(PhraseRule(language="en", replace="folder", with_=r"C:\new\1"))
    tone = ToneRules(tenant)
    assert tone.apply("Cheaper than cheap.", "en") == "Cheaper than affordable."
    assert tone.apply("Open the folder.", "en") == r"Open the C:\new\1."


def test_slovenian_triggers_match_case_endings(demo_tenant: Tenant) -> None:
    from voicebot.dialogue.triggers import Triggers

    triggers = Triggers(demo_tenant)
    for text, topic in (("Razmišljam o samomoru", "self_harm"), ("Govoril bom z odvetnikom", "legal")):
        match = triggers.match(text)
        assert match is not None and match.topic == topic, text
    assert triggers.match("Delam v agenturi") is None  # a longer word is not the phrase
    assert triggers.match("suede shoes") is None  # English phrases take no endings
