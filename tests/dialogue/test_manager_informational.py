"""General questions are answered from the knowledge base, not routed to personal-data actions."""

from __future__ import annotations

import pytest

from tests.dialogue.conftest import ConversationFactory
from voicebot.dialogue.types import Action


@pytest.mark.parametrize(
    ("question", "language", "source_prefix"),
    [
        ("How much does delivery cost?", "en", "en/shipping.md"),
        ("What payment methods do you accept?", "en", "en/payment.md"),
        ("Can I pay by card?", "en", "en/payment.md"),
        ("What is your returns policy?", "en", "en/faq.yaml#returns-policy"),
        ("Koliko stane dostava?", "sl", "sl/dostava.md"),
        ("Kako lahko plačam?", "sl", "sl/placilo.md"),
        ("Kakšna so pravila za vračilo?", "sl", "sl/faq.yaml#pravila-vracila"),
    ],
)
async def test_general_question_gets_a_cited_answer_without_identity_checks(
    conversation: ConversationFactory, question: str, language: str, source_prefix: str
) -> None:
    reply = await conversation().say(question)
    assert reply.action is Action.ANSWER, reply.text
    assert reply.reason in ("knowledge",), reply.reason
    assert reply.language == language
    assert reply.citations and reply.citations[0].source.startswith(source_prefix)


@pytest.mark.parametrize(
    "question", ["Did you receive my payment?", "Has my order shipped?", "Ali je moj račun plačan?"]
)
async def test_questions_about_own_data_still_need_verification(
    conversation: ConversationFactory, question: str
) -> None:
    reply = await conversation().say(question)
    assert reply.action is Action.CLARIFY
    assert reply.reason == "verification_required"
    assert not reply.citations
