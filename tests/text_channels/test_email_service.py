"""The e-mail service on the real dialogue (demo tenant) and database, with a fake Mailer at the seam:
exactly once, threading, loop guards, drafts approved or rejected, retries."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fakes.mailer import FakeMailer, rejected, unavailable
from voicebot.config import EmailConfig, SmtpOut
from voicebot.errors import ConflictError, InputError
from voicebot.storage.records import DraftStatus, InboundStatus, OutboundStatus
from voicebot.text_channels.email_message import parse_email
from voicebot.text_channels.email_service import CLAIM_LEASE, EmailService

pytestmark = pytest.mark.asyncio(loop_scope="session")

BOT = "support@demo-shop.example"
RETURNS = "What is your returns policy?"


def eml(sender: str, subject: str, body: str, *, msgid: str, extra: str = "") -> bytes:
    return (
        f"From: {sender}\r\nTo: {BOT}\r\nSubject: {subject}\r\nMessage-ID: <{msgid}>\r\n{extra}"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body
    ).encode()


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


async def service_for(
    runtime: Any, clock: Callable[[], datetime] | None = None, **config: Any
) -> EmailService:
    settings = EmailConfig(enabled=True, address=BOT, smtp=SmtpOut(security="none"), **config)
    return EmailService(runtime, settings, mailer=FakeMailer(), clock=clock)


def mailer(service: EmailService) -> FakeMailer:
    assert isinstance(service.mailer, FakeMailer)
    return service.mailer


async def test_a_question_is_answered_once_with_threading(runtime: Any) -> None:
    service = await service_for(runtime)
    raw = eml(
        "someone@example.com", "Returns", "Hello,\n\nWhat is your returns policy?\n\nThanks", msgid="q1@x"
    )
    first = await service.receive(raw, source="test")
    assert first is not None
    assert await service.receive(raw, source="test") is None  # the same Message-ID again
    assert await service.process_pending() == 1
    assert await service.send_due()
    (sent,) = mailer(service).sent
    assert sent.recipients == ["someone@example.com"] and sent.sender == BOT
    reply = sent.message
    assert reply["In-Reply-To"] == "<q1@x>" and "<q1@x>" in reply["References"]
    assert reply["Subject"] == "Re: Returns" and reply["Auto-Submitted"] == "auto-replied"
    assert "return" in sent.body.lower()
    stored = await service.repo.message(first.id)
    assert stored.status == InboundStatus.REPLIED and stored.conversation_id
    (out,) = await service.repo.messages(runtime.tenant.id, direction="out")
    assert out.status == OutboundStatus.SENT and out.answers_id == first.id
    assert not await service.send_due()  # nothing goes twice
    assert len(mailer(service).sent) == 1
    audit = await runtime.audit.for_conversation(stored.conversation_id, action="email.replied")
    assert len(audit) == 1


async def test_a_reply_to_our_reply_continues_the_conversation(runtime: Any) -> None:
    service = await service_for(runtime)
    await service.receive(eml("ana.novak@example.com", "Returns", RETURNS, msgid="t1@x"), source="test")
    await service.process_pending()
    await service.send_due()
    ours = mailer(service).sent[0].message["Message-ID"]
    follow = eml(
        "ana.novak@example.com",
        "Re: Returns",
        "And what are your opening hours?",
        msgid="t2@x",
        extra=f"In-Reply-To: {ours}\r\nReferences: <t1@x> {ours}\r\n",
    )
    stranger = eml(
        "mallory@example.com",
        "Re: Returns",
        "What are your opening hours?",
        msgid="t3@x",
        extra=f"In-Reply-To: {ours}\r\nReferences: <t1@x> {ours}\r\n",
    )
    await service.receive(follow, source="test")
    await service.receive(stranger, source="test")
    await service.process_pending()
    inbound = {m.message_id: m for m in await service.repo.messages(runtime.tenant.id, direction="in")}
    assert inbound["<t2@x>"].conversation_id == inbound["<t1@x>"].conversation_id
    assert inbound["<t3@x>"].conversation_id not in (None, inbound["<t1@x>"].conversation_id)
    conversation = await runtime.conversations.get(inbound["<t1@x>"].conversation_id)
    assert conversation.channel == "email" and conversation.turn_count >= 4


async def test_loop_guards_never_answer(runtime: Any) -> None:
    service = await service_for(runtime, rate_limit_per_hour=3)
    await service.receive(eml(BOT, "Hi", RETURNS, msgid="own@x"), source="test")
    await service.receive(
        eml(
            "robot@example.com",
            "Out of office",
            "I am away until Monday.",
            msgid="ooo@x",
            extra="Auto-Submitted: auto-replied\r\n",
        ),
        source="test",
    )
    for i in range(5):
        await service.receive(eml("flood@example.com", f"Q{i}", RETURNS, msgid=f"f{i}@x"), source="test")
    await service.process_pending()
    await service.send_due()
    reasons = {
        m.message_id: (m.status, m.reasons)
        for m in await service.repo.messages(runtime.tenant.id, direction="in")
    }
    assert reasons["<own@x>"] == (InboundStatus.IGNORED, ("own_address",))
    assert reasons["<ooo@x>"][0] == InboundStatus.IGNORED and reasons["<ooo@x>"][1][0].startswith("noise:")
    flood = [reasons[f"<f{i}@x>"] for i in range(5)]
    assert [s for s, _ in flood].count(InboundStatus.REPLIED) == 3
    assert flood[3] == flood[4] == (InboundStatus.DRAFTED, ("rate_limited",))
    assert len(mailer(service).sent) == 3
    held = [d for d in await service.repo.drafts(runtime.tenant.id) if d.to_address == "flood@example.com"]
    assert len(held) == 2 and all(d.proposed_text == "" for d in held)


async def test_a_draft_is_approved_with_edits_and_sent_threaded(runtime: Any) -> None:
    service = await service_for(runtime, auto_reply=False)
    raw = eml("ana.novak@example.com", "Returns", RETURNS, msgid="d1@x")
    await service.receive(raw, source="test")
    await service.process_pending()
    assert not await service.send_due()
    (draft,) = await service.repo.drafts(runtime.tenant.id)
    assert draft.status == DraftStatus.PENDING and "approval_required" in draft.reasons
    assert draft.to_address == "ana.novak@example.com" and draft.subject == "Re: Returns"
    assert draft.customer is not None and draft.customer["email"] == "ana.novak@example.com"
    with pytest.raises(InputError):
        await service.approve(draft.id, agent="maja", text="   ")
    approved = await service.approve(draft.id, agent="maja", text="Dear Ana, 30 days. Maja")
    assert approved.status == DraftStatus.APPROVED and approved.decided_by == "maja"
    with pytest.raises(ConflictError):
        await service.approve(draft.id, agent="maja")
    with pytest.raises(ConflictError):
        await service.reject(draft.id, agent="maja")
    assert await service.send_due()
    (sent,) = mailer(service).sent
    assert sent.body.startswith("Dear Ana, 30 days. Maja")
    assert sent.message["In-Reply-To"] == "<d1@x>"
    audit = await runtime.audit.for_conversation(draft.conversation_id, action="email.draft_approved")
    assert audit[0].actor == "maja" and audit[0].details["edited"] is True


async def test_a_rejected_draft_sends_nothing(runtime: Any) -> None:
    service = await service_for(runtime)
    await service.receive(
        eml("ana.novak@example.com", "Help", "I want to talk to a person.", msgid="r1@x"), source="test"
    )
    await service.process_pending()
    (draft,) = await service.repo.drafts(runtime.tenant.id)
    assert any(r.startswith("handoff:") for r in draft.reasons)
    rejected_draft = await service.reject(draft.id, agent="maja", note="called her instead")
    assert rejected_draft.status == DraftStatus.REJECTED and rejected_draft.note == "called her instead"
    assert not await service.send_due() and mailer(service).sent == []
    assert await service.repo.drafts(runtime.tenant.id) == []
    assert len(await service.repo.drafts(runtime.tenant.id, DraftStatus.REJECTED)) == 1


async def test_personal_data_goes_only_to_the_address_on_file(runtime: Any) -> None:
    service = await service_for(runtime)
    question = "Where is my order A1001? My postcode is 1000."
    await service.receive(eml("ana.novak@example.com", "Order", question, msgid="p0@x"), source="test")
    await service.receive(
        eml(
            "ana.novak@example.com",
            "Order",
            question,
            msgid="p1@x",
            extra="Reply-To: attacker@evil.example\r\n",
        ),
        source="test",
    )
    forged = (
        "Authentication-Results: mx.demo-shop.example; spf=fail smtp.mailfrom=example.com; dmarc=fail\r\n"
    )
    await service.receive(
        eml("ana.novak@example.com", "Order", question, msgid="p2@x", extra=forged), source="test"
    )
    await service.process_pending()
    await service.send_due()
    (sent,) = mailer(service).sent
    assert sent.recipients == ["ana.novak@example.com"] and "A1001" in sent.body
    drafts = {d.to_address: d for d in await service.repo.drafts(runtime.tenant.id)}
    assert "recipient_not_on_file" in drafts["attacker@evil.example"].reasons
    assert any("A1001" in str(a["fields"]) for a in drafts["attacker@evil.example"].answers)
    assert "unverified_sender" in drafts["ana.novak@example.com"].reasons


async def test_sending_is_retried_then_given_up(runtime: Any) -> None:
    clock = Clock()
    service = await service_for(runtime, clock=clock)
    await service.receive(eml("x@example.com", "Returns", RETURNS, msgid="s1@x"), source="t")
    await service.receive(eml("y@example.com", "Returns", RETURNS, msgid="s2@x"), source="t")
    await service.process_pending()
    mailer(service).fail_with = unavailable()
    assert await service.send_due()
    queued = await service.repo.messages(runtime.tenant.id, direction="out", status="queued")
    assert len(queued) == 2 and all(m.error == "SMTP server down" for m in queued)
    assert not await service.send_due()  # not due yet
    clock.now += timedelta(seconds=31)
    mailer(service).fail_with = rejected()
    assert await service.send_due()
    failed = await service.repo.messages(runtime.tenant.id, direction="out", status="failed")
    assert len(failed) == 2
    mailer(service).fail_with = None
    clock.now += timedelta(hours=2)
    assert not await service.send_due() and mailer(service).sent == []


async def test_a_decision_that_fails_is_retried_then_marked_failed(runtime: Any, monkeypatch: Any) -> None:
    clock = Clock()
    service = await service_for(runtime, clock=clock)
    calls = 0

    async def broken(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        raise RuntimeError("dialogue exploded")

    monkeypatch.setattr(service.bot, "decide", broken)
    record = await service.receive(eml("z@example.com", "Q", RETURNS, msgid="e1@x"), source="t")
    assert record is not None
    for _ in range(3):
        await service.process_pending()
        clock.now += timedelta(minutes=3)
    stored = await service.repo.message(record.id)
    assert (
        calls == 3 and stored.status == InboundStatus.FAILED and "dialogue exploded" in (stored.error or "")
    )


async def test_a_claim_of_a_dead_process_is_taken_again_once(runtime: Any) -> None:
    clock = Clock()
    service = await service_for(runtime, clock=clock)
    record = await service.receive(eml("w@example.com", "Q", RETURNS, msgid="c1@x"), source="t")
    assert record is not None
    dead = await service.repo.claim(runtime.tenant.id, clock(), CLAIM_LEASE)  # the process dies here
    assert dead is not None
    assert await service.process_pending() == 0  # the claim is still alive
    clock.now += CLAIM_LEASE + timedelta(seconds=1)
    assert await service.process_pending() == 1
    with pytest.raises(ConflictError):  # the dead process, were it only slow, cannot finish it too
        await service.decide(dead, parse_email(await service.repo.raw(record.id)))
    await service.send_due()
    assert len(mailer(service).sent) == 1


async def test_workers_answer_in_the_background(runtime: Any) -> None:
    service = await service_for(runtime, workers=2)
    await service.start(mailboxes=False)
    try:
        for i in range(4):
            await service.receive(eml(f"bg{i}@example.com", "Returns", RETURNS, msgid=f"bg{i}@x"), source="t")
        sent = await mailer(service).wait_for(4)
        assert sorted(s.recipients[0] for s in sent) == [f"bg{i}@example.com" for i in range(4)]
    finally:
        await service.stop()
    assert mailer(service).closed


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def test_two_processes_reading_the_same_mail_answer_each_once(make_runtime: Any, backend: str) -> None:
    runtime = await make_runtime(backend)
    first, second = await service_for(runtime, workers=3), await service_for(runtime, workers=3)
    await first.start(mailboxes=False)
    await second.start(mailboxes=False)
    try:
        raws = [eml(f"twice{i}@example.com", "Returns", RETURNS, msgid=f"twice{i}@x") for i in range(12)]
        for raw in raws:  # both "processes" fetch every message, as two workers on one mailbox would
            await asyncio.gather(first.receive(raw, source="imap"), second.receive(raw, source="imap"))

        async def all_sent() -> None:
            while len(mailer(first).sent) + len(mailer(second).sent) < len(raws):
                await asyncio.sleep(0.05)

        await asyncio.wait_for(all_sent(), 60)
        await asyncio.sleep(0.5)  # time for any duplicate to show up
    finally:
        await first.stop()
        await second.stop()
    recipients = [s.recipients[0] for s in mailer(first).sent + mailer(second).sent]
    assert sorted(recipients) == sorted(f"twice{i}@example.com" for i in range(12))
    assert len(await first.repo.messages(runtime.tenant.id, direction="in")) == 12
