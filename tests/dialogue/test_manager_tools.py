"""DialogueManager scenarios: every tool against the demo CRM, in English and Slovenian."""

from __future__ import annotations

from datetime import timedelta

from tests.dialogue.conftest import ANA_PHONE, JOHN_PHONE, MARKO_PHONE, NOW, Conversation, ConversationFactory
from tests.fakes.crm import InMemoryCRM
from voicebot.crm.base import AppointmentStatus
from voicebot.dialogue.types import Action, Channel


async def verified(conversation: ConversationFactory, caller: str, opening: str) -> Conversation:
    """A voice conversation whose first message asked for an action and got the verification question."""
    chat = conversation(channel=Channel.VOICE, caller=caller)
    first = await chat.say(opening)
    assert first.reason == "verification_required", first.text
    return chat


# ----------------------------------------------------------------- change of delivery details


async def test_change_delivery_asks_for_the_address_then_updates(
    conversation: ConversationFactory, crm: InMemoryCRM
) -> None:
    chat = await verified(conversation, JOHN_PHONE, "I need to change the delivery address for order A1002")
    asked = await chat.say("SW1A 1AA")
    assert asked.action is Action.CLARIFY and asked.reason == "address"
    assert "new delivery address for order A1002" in asked.text

    done = await chat.say("10 Downing Street, London SW1A 2AA")
    assert done.action is Action.ANSWER and done.intent == "change_delivery"
    assert "10 Downing Street, London SW1A 2AA" in done.text
    assert crm.orders["A1002"].delivery_address == "10 Downing Street, London SW1A 2AA"
    assert chat.state.pending_intent is None and "address" not in chat.state.fields


async def test_change_delivery_in_slovenian_for_the_only_order(
    conversation: ConversationFactory, crm: InMemoryCRM
) -> None:
    chat = await verified(conversation, MARKO_PHONE, "Spremeniti moram naslov za dostavo")
    asked = await chat.say("2000")
    assert asked.language == "sl"
    assert "naročila A1004" in asked.text  # Marko has one order: no need to ask which
    done = await chat.say("Gosposka ulica 10, 2000 Maribor")
    assert done.action is Action.ANSWER
    assert done.text.startswith("Urejeno: naročilo A1004")
    assert crm.orders["A1004"].delivery_address == "Gosposka ulica 10, 2000 Maribor"


async def test_change_delivery_of_a_shipped_order_is_refused_politely(
    conversation: ConversationFactory, crm: InMemoryCRM
) -> None:
    chat = await verified(conversation, ANA_PHONE, "Please change the delivery address of A1001")
    reply = await chat.say("1000")
    assert reply.action is Action.ANSWER
    assert "already shipped" in reply.text and "can no longer be changed" in reply.text
    assert crm.orders["A1001"].delivery_address == "Slovenska cesta 1, 1000 Ljubljana"
    assert "update_delivery_address" not in crm.calls


async def test_a_different_question_is_not_taken_as_the_new_address(
    conversation: ConversationFactory, crm: InMemoryCRM
) -> None:
    chat = await verified(conversation, JOHN_PHONE, "I need to change the delivery address for order A1002")
    await chat.say("SW1A 1AA")
    reply = await chat.say("Where is my order A1003? It's been 10 days")
    assert reply.intent == "order_status"
    assert crm.orders["A1002"].delivery_address == "221B Baker Street, London NW1 6XE"
    assert "address" not in chat.state.fields


# ----------------------------------------------------------------- appointments


async def test_book_asks_for_a_time_refuses_out_of_hours_then_books(
    conversation: ConversationFactory, crm: InMemoryCRM
) -> None:
    chat = await verified(conversation, JOHN_PHONE, "I'd like to book an appointment")
    asked = await chat.say("SW1A 1AA")
    assert asked.reason == "datetime"
    assert "8:00 to 17:00" in asked.text

    weekend = await chat.say("Saturday at 10")
    assert weekend.action is Action.CLARIFY and weekend.reason == "datetime"
    assert "Saturday 28 November 2026 at 10:00 is outside our appointment hours" in weekend.text

    evening = await chat.say("Thursday at 20:00")
    assert evening.reason == "datetime" and "outside" in evening.text

    booked = await chat.say("Thursday at 10:00")
    assert booked.action is Action.ANSWER and booked.intent == "book_appointment"
    assert booked.text == "Your appointment is booked for Thursday 26 November 2026 at 10:00."
    new = [a for a in crm.appointments.values() if a.customer_id == "C002"]
    assert len(new) == 1 and new[0].starts_at == NOW + timedelta(days=2, hours=1)
    assert "datetime" not in chat.state.fields


async def test_book_in_slovenian(conversation: ConversationFactory, crm: InMemoryCRM) -> None:
    chat = await verified(conversation, ANA_PHONE, "Rad bi se naročil na termin")
    asked = await chat.say("1000")
    assert asked.language == "sl" and "od 8. do 17. ure" in asked.text
    booked = await chat.say("v četrtek ob 10h")
    assert booked.text == "Vaš termin je rezerviran za četrtek, 26. 11. 2026 ob 10:00."
    assert sum(a.customer_id == "C001" for a in crm.appointments.values()) == 2


async def test_past_time_is_offered_again(conversation: ConversationFactory) -> None:
    chat = await verified(conversation, JOHN_PHONE, "I'd like to book an appointment")
    await chat.say("SW1A 1AA")
    reply = await chat.say("today at 8:00")  # NOW is 09:00
    assert reply.action is Action.CLARIFY and reply.reason == "datetime"


async def test_confirm_appointment(conversation: ConversationFactory, crm: InMemoryCRM) -> None:
    chat = await verified(conversation, ANA_PHONE, "I'm calling to confirm my appointment")
    reply = await chat.say("1000")
    assert reply.action is Action.ANSWER and reply.intent == "confirm_appointment"
    assert reply.text == "Thank you, your appointment on Wednesday 25 November 2026 at 10:00 is confirmed."
    assert crm.appointments["AP1001"].status is AppointmentStatus.CONFIRMED


async def test_confirm_without_an_appointment(conversation: ConversationFactory) -> None:
    chat = await verified(conversation, JOHN_PHONE, "I want to confirm my booking for tomorrow")
    reply = await chat.say("SW1A 1AA")
    assert reply.action is Action.ANSWER
    assert "don't see an upcoming appointment" in reply.text


async def test_cancel_asks_yes_or_no_and_no_keeps_it(
    conversation: ConversationFactory, crm: InMemoryCRM
) -> None:
    chat = await verified(conversation, ANA_PHONE, "I need to cancel my appointment")
    asked = await chat.say("1000")
    assert asked.action is Action.CLARIFY and asked.reason == "confirm_cancel"
    assert "Shall I cancel your appointment on Wednesday 25 November 2026 at 10:00?" in asked.text

    kept = await chat.say("no")
    assert kept.action is Action.ANSWER
    assert "left your appointment" in kept.text
    assert crm.appointments["AP1001"].status is AppointmentStatus.BOOKED
    assert "confirm_cancel" not in chat.state.fields and chat.state.pending_intent is None


async def test_cancel_yes_cancels(conversation: ConversationFactory, crm: InMemoryCRM) -> None:
    chat = await verified(conversation, ANA_PHONE, "I need to cancel my appointment")
    await chat.say("1000")
    done = await chat.say("yes")
    assert done.action is Action.ANSWER and "is cancelled" in done.text
    assert crm.appointments["AP1001"].status is AppointmentStatus.CANCELLED


async def test_cancel_in_slovenian(conversation: ConversationFactory, crm: InMemoryCRM) -> None:
    chat = await verified(conversation, ANA_PHONE, "Moram odpovedati termin")
    asked = await chat.say("1000")
    assert "Prosim, odgovorite z da ali ne" in asked.text
    done = await chat.say("da")
    assert done.text == "Vaš termin sreda, 25. 11. 2026 ob 10:00 je preklican."
    assert crm.appointments["AP1001"].status is AppointmentStatus.CANCELLED


async def test_reschedule(conversation: ConversationFactory, crm: InMemoryCRM) -> None:
    chat = await verified(conversation, ANA_PHONE, "I need to reschedule my appointment")
    asked = await chat.say("1000")
    assert asked.reason == "datetime"
    moved = await chat.say("Friday at 11:00")
    assert moved.action is Action.ANSWER and moved.intent == "reschedule_appointment"
    assert moved.text == (
        "Your appointment has been moved from Wednesday 25 November 2026 at 10:00 "
        "to Friday 27 November 2026 at 11:00."
    )
    assert crm.appointments["AP1001"].status is AppointmentStatus.RESCHEDULED
    live = [
        a
        for a in crm.appointments.values()
        if a.customer_id == "C001" and a.status is AppointmentStatus.BOOKED
    ]
    assert [a.starts_at for a in live] == [NOW + timedelta(days=3, hours=2)]


# ----------------------------------------------------------------- payments and returns


async def test_payment_status_lists_overdue_invoices(conversation: ConversationFactory) -> None:
    chat = await verified(conversation, JOHN_PHONE, "Has my payment been received?")
    reply = await chat.say("born 2 July 1990")
    assert reply.action is Action.ANSWER and reply.intent == "payment_status"
    assert reply.text == "Invoice INV-2002 for 75.50 GBP is overdue, due on 14 November 2026."
    assert chat.audit.actions()[-1] == "disclose:payment_status"


async def test_payment_status_open_invoice_in_slovenian(conversation: ConversationFactory) -> None:
    chat = await verified(conversation, ANA_PHONE, "Ali ste prejeli moje plačilo?")
    reply = await chat.say("1000")
    assert reply.language == "sl"
    assert reply.text == "Račun INV-1001 v znesku 59.90 EUR je odprt, z rokom plačila 8. 12. 2026."


async def test_returns_policy_comes_from_the_kb_with_citations(conversation: ConversationFactory) -> None:
    chat = conversation()
    for question, language in (
        ("How do I return an item?", "en"),
        ("Kako vrnem izdelek?", "sl"),
    ):
        reply = await chat.say(question)
        assert reply.action is Action.ANSWER, reply.text
        assert reply.reason == "knowledge"
        assert reply.language == language
        assert reply.citations
        assert reply.text == reply.citations[0].text  # extractive: the approved passage itself
        assert all(c.score >= 0.55 for c in reply.citations)
        assert all("draft" not in c.source for c in reply.citations)
        assert not chat.state.verified  # general policy needs no verification
    en, sl = chat.replies
    assert "return" in en.text.lower()
    assert "vr" in sl.text.lower()  # vrnitev / vračilo
    assert all(c.source.startswith("sl/") or "pogosta" in c.source for c in sl.citations)
