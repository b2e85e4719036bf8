"""The e-mail bot's decision on real dialogue (demo tenant): reply, draft with reasons, or ignore."""

from __future__ import annotations

from typing import Any

import pytest

from voicebot.text_channels.email_bot import EmailBot, EmailPolicy, split_requests
from voicebot.text_channels.email_message import parse_email


def test_split_requests_takes_each_question_with_its_context() -> None:
    text = (
        "Hello,\n\nI ordered a laptop last week. Where is my order A1001?\n"
        "Also, what is your returns policy?\n\nThanks,\nAna"
    )
    assert split_requests(text) == [
        "I ordered a laptop last week. Where is my order A1001?",
        "Also, what is your returns policy?",
    ]
    assert split_requests("Please cancel my appointment.") == ["Please cancel my appointment."]
    assert split_requests("Hi,\n\nthanks for the quick answer. Can I change the address?\n\nAna") == [
        "thanks for the quick answer. Can I change the address?"
    ]
    assert split_requests("Hi,\n\nBest regards,\nAna") == []
    assert split_requests("Hello, what is your returns policy?") == ["what is your returns policy?"]
    assert split_requests("Dear Ana,\nmy parcel is late.") == ["my parcel is late."]


def eml(sender: str, subject: str, body: str, extra: str = "") -> bytes:
    return (
        f"From: {sender}\r\nTo: support@demo-shop.example\r\nSubject: {subject}\r\n"
        f"Message-ID: <{abs(hash(body))}@mail.example>\r\n{extra}"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body
    ).encode()


@pytest.mark.asyncio(loop_scope="session")
async def test_a_confident_kb_question_is_answered(make_runtime: Any) -> None:
    runtime = await make_runtime()
    decision = await EmailBot(runtime).decide(
        parse_email(eml("someone@example.com", "Returns", "Hello,\n\nWhat is your returns policy?\n\nThanks"))
    )
    assert decision.action == "reply", decision.reasons
    assert "return" in decision.reply_text.lower()
    assert decision.to_address == "someone@example.com"


@pytest.mark.asyncio(loop_scope="session")
async def test_noise_is_ignored_and_a_human_request_is_drafted(make_runtime: Any) -> None:
    runtime = await make_runtime()
    bot = EmailBot(runtime)
    auto = parse_email(
        eml("ana.novak@example.com", "Out of office", "I am away.", "Auto-Submitted: auto-replied\r\n")
    )
    ignored = await bot.decide(auto)
    assert ignored.action == "ignore" and ignored.reasons[0].startswith("noise:")
    human = await bot.decide(parse_email(eml("ana.novak@example.com", "Help", "I want to talk to a person.")))
    assert human.action == "draft" and any(r.startswith("handoff:") for r in human.reasons)
    assert human.customer is not None and human.customer["email"] == "ana.novak@example.com"


@pytest.mark.asyncio(loop_scope="session")
async def test_approval_mode_drafts_everything(make_runtime: Any) -> None:
    runtime = await make_runtime()
    decision = await EmailBot(runtime, EmailPolicy(auto_reply=False)).decide(
        parse_email(eml("someone@example.com", "Returns", "What is your returns policy?"))
    )
    assert decision.action == "draft" and "approval_required" in decision.reasons
