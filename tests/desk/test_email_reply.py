"""An agent answers an e-mail handoff: the reply leaves through the tenant's mailer (a real SMTP
sink on 127.0.0.1), threaded to the customer's newest message, and the bot holds off meanwhile."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from typing import Any

import pytest

from tests.desk.conftest import ANA, BOB
from tests.peers.smtp_sink import SmtpSink
from voicebot.config import EmailConfig, SmtpOut
from voicebot.desk.service import DeskService
from voicebot.errors import ConflictError
from voicebot.storage.records import InboundStatus, OutboundStatus
from voicebot.text_channels.email_service import EmailService
from voicebot.text_channels.email_smtp import SmtpMailer

pytestmark = pytest.mark.asyncio(loop_scope="session")

SUPPORT = "support@demo-shop.example"
HANG_GUARD_SECS = 30.0


def eml(subject: str, body: str, *, msgid: str, extra: str = "") -> bytes:
    return (
        f"From: Ana Novak <ana.novak@example.com>\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{msgid}>\r\n{extra}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    ).encode()


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


async def test_an_agent_answers_an_email_handoff_in_the_thread(runtime: Any) -> None:
    async with SmtpSink() as sink:
        config = EmailConfig(
            enabled=True,
            address=SUPPORT,
            display_name="Demo Shop",
            smtp=SmtpOut(host="127.0.0.1", port=sink.port, security="none"),
        )
        service = EmailService(runtime, config, mailer=SmtpMailer(config.smtp))
        desk = DeskService(
            tenant_id=runtime.tenant.id,
            tenant_name=runtime.tenant.name,
            conversations=runtime.conversations,
            handoffs=runtime.handoffs,
            audit=runtime.audit,
            live=runtime.live,
            crm=runtime.crm,
            clock=runtime.clock,
            email_repo=service.repo,
            email_config=config,
            send_email=service.send_due,
        )
        try:
            await service.receive(eml("Broken kettle", "I want to talk to a person, please.", msgid="k1@x"),
                                  source="test")  # fmt: skip
            await service.process_pending()
            (message,) = await service.repo.messages(runtime.tenant.id, direction="in")
            assert message.conversation_id is not None
            handoff = await runtime.handoffs.active_for(message.conversation_id)
            assert handoff is not None and handoff.channel == "email"

            # the customer writes again while waiting: held for a person, not answered by the bot
            follow = eml("Re: Broken kettle", "It makes a buzzing noise and then stops.", msgid="k2@x",
                         extra="In-Reply-To: <k1@x>\r\nReferences: <k1@x>\r\n")  # fmt: skip
            await service.receive(follow, source="test")
            await service.process_pending()
            held = {m.message_id: m for m in await service.repo.messages(runtime.tenant.id, direction="in")}
            assert held["<k2@x>"].status == InboundStatus.DRAFTED
            assert held["<k2@x>"].conversation_id == message.conversation_id

            detail = await desk.detail(handoff.id)
            assert detail["email"]["to"] == "ana.novak@example.com"
            assert [m["text"].strip() for m in detail["email"]["messages"] if m["direction"] == "in"] == [
                "I want to talk to a person, please.",
                "It makes a buzzing noise and then stops.",
            ]
            assert detail["customer"]["name"] == "Ana Novak"

            await desk.take(handoff.id, ANA)
            with pytest.raises(ConflictError):
                await desk.reply(handoff.id, BOB, "not mine")
            text = "Dear Ana,\n\nsorry about the kettle. We will send you a new one today.\n\nAna, Demo Shop"
            result = await desk.reply(handoff.id, ANA, text)
            assert result["channel"] == "email" and result["email"]["status"] == OutboundStatus.SENT
            assert result["email"]["to"] == "ana.novak@example.com"

            await sink.wait_for(1, HANG_GUARD_SECS)
            (sent,) = sink.messages
            assert sent.rcpt_tos == ["ana.novak@example.com"] and sent.mail_from == SUPPORT
            reply = parsed(sent.data)
            assert reply["In-Reply-To"] == "<k2@x>"  # the newest message of the thread
            assert "<k1@x>" in reply["References"] and "<k2@x>" in reply["References"]
            assert reply["Subject"] == "Re: Broken kettle"
            assert reply["Auto-Submitted"] is None  # a person wrote it
            body = reply.get_body(("plain",))
            assert body is not None
            content = str(body.get_content()).replace("\r\n", "\n")
            assert content.startswith(text) and "> It makes a buzzing noise" in content

            turns = await runtime.conversations.turns(message.conversation_id)
            assert turns[-1].role == "agent" and turns[-1].text == text
            (audit,) = await runtime.audit.for_conversation(
                message.conversation_id, action="desk.email_reply"
            )
            assert audit.actor == "ana" and audit.details["to"] == "ana.novak@example.com"
            (out,) = await service.repo.messages(runtime.tenant.id, direction="out")
            assert out.conversation_id == message.conversation_id and out.status == OutboundStatus.SENT
        finally:
            await service.stop()


async def test_without_the_email_channel_an_email_reply_is_refused(runtime: Any) -> None:
    from voicebot.dialogue.types import Channel

    started = await runtime.chat.start(channel=Channel.EMAIL, email="ana.novak@example.com")
    await runtime.chat.send(started.conversation.id, "I want to talk to a person")
    handoff = await runtime.handoffs.active_for(started.conversation.id)
    assert handoff is not None
    desk = DeskService.for_runtime(runtime)  # the demo tenant has no e-mail channel
    await desk.take(handoff.id, ANA)
    with pytest.raises(ConflictError, match="not enabled"):
        await desk.reply(handoff.id, ANA, "hello")
