"""The e-mail bot end to end against real mail servers on 127.0.0.1: the real app (lifespan on) reads a
private Dovecot over IMAP (IDLE, polling, IMAPS) and sends through an aiosmtpd sink with STARTTLS and
AUTH; mail also comes in through the bot's own SMTP listener. From a message delivered to the mailbox
to the reply received (or the draft approved and then received), exactly once across a restart."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from tests.auth_helpers import staff_client
from tests.conftest import SESSION_LOOP, demo_tenant_with, serving
from tests.peers.dovecot import Dovecot, dovecot_available
from tests.peers.smtp_sink import SinkMessage, SmtpSink
from tests.peers.tls import LoopbackTLS
from voicebot.app import create_app
from voicebot.config import Settings
from voicebot.knowledge.embeddings import Embedder
from voicebot.runtime import Runtime

pytestmark = [
    SESSION_LOOP,
    pytest.mark.slow,
    pytest.mark.skipif(not dovecot_available(), reason="dovecot (Debian dovecot-imapd) is not installed"),
]

BOT = "support@demo-shop.example"
TIMEOUT = 60.0  # a hang guard only


def eml(sender: str, subject: str, body: str, *, msgid: str, extra: str = "") -> bytes:
    return (
        f"From: {sender}\r\nTo: {BOT}\r\nSubject: {subject}\r\nMessage-ID: <{msgid}>\r\n"
        f"Date: Tue, 24 Nov 2026 10:00:00 +0100\r\n{extra}"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body
    ).encode()


def parsed(message: SinkMessage) -> EmailMessage:
    out = email.message_from_bytes(message.data, policy=email.policy.default)
    assert isinstance(out, EmailMessage)
    return out


def body(message: SinkMessage) -> str:
    part = parsed(message).get_body(("plain",))
    assert part is not None
    return str(part.get_content())


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    async def loop() -> None:
        while not await check():
            await asyncio.sleep(0.1)

    try:
        await asyncio.wait_for(loop(), TIMEOUT)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


class Setup:
    def __init__(self, tmp_path: Path, embedder: Embedder, data_dir: Path, monkeypatch: Any) -> None:
        self.tmp_path, self.embedder, self.data_dir = tmp_path, embedder, data_dir
        self.database = f"sqlite+aiosqlite:///{tmp_path / 'email.db'}"
        monkeypatch.setenv("VOICEBOT_TEST_IMAP_PASSWORD", "pw")
        monkeypatch.setenv("VOICEBOT_TEST_SMTP_PASSWORD", "smtp-secret")

    @asynccontextmanager
    async def server(self, email_section: dict[str, Any]) -> AsyncIterator[tuple[str, Any]]:
        tenant = demo_tenant_with(self.tmp_path, email=email_section)
        settings = Settings(tenant_config=tenant, data_dir=self.data_dir, database_url=self.database)
        app = create_app(settings, Runtime(settings, embedder=self.embedder))
        async with serving(app, lifespan="on") as url:
            yield url, app


def imap_section(imap: Dovecot, **extra: Any) -> dict[str, Any]:
    section = {
        "host": imap.host,
        "port": imap.port,
        "security": "ssl" if imap.tls else "none",
        "username": imap.user,
        "password_env": "VOICEBOT_TEST_IMAP_PASSWORD",
    }
    if imap.tls is not None:
        section["ca_file"] = str(imap.tls.ca_file)
    return section | extra


def smtp_section(sink: SmtpSink) -> dict[str, Any]:
    section: dict[str, Any] = {"host": sink.host, "port": sink.port, "security": "none"}
    if sink.ca_file is not None:
        section |= {"security": "starttls", "ca_file": str(sink.ca_file)}
    if sink.user is not None:
        section |= {"username": sink.user, "password_env": "VOICEBOT_TEST_SMTP_PASSWORD"}
    return section


@pytest.fixture
def setup(tmp_path: Path, real_embedder: Embedder, runtime_data_dir: Path, monkeypatch: Any) -> Setup:
    return Setup(tmp_path, real_embedder, runtime_data_dir, monkeypatch)


async def test_imap_idle_to_smtp_starttls_reply_threaded_and_continued(setup: Setup, tmp_path: Path) -> None:
    tls = LoopbackTLS(tmp_path / "tls")
    async with (
        Dovecot(tmp_path) as imap,
        SmtpSink(user="bot-out", password="smtp-secret", tls=tls) as sink,
        setup.server(
            {"enabled": True, "address": BOT, "imap": [imap_section(imap)], "smtp": smtp_section(sink)}
        ) as (url, app),
    ):
        await imap.deliver(
            eml(
                "ana.novak@example.com",
                "Returns",
                "Hello,\n\nWhat is your returns policy?\n\nAna",
                msgid="e2e-1@mail.example",
            )
        )
        (reply,) = await sink.wait_for(1, TIMEOUT)
        assert reply.tls and reply.auth_user == "bot-out"
        assert reply.mail_from == BOT and reply.rcpt_tos == ["ana.novak@example.com"]
        headers = parsed(reply)
        assert headers["In-Reply-To"] == "<e2e-1@mail.example>" and headers["Subject"] == "Re: Returns"
        assert "return" in body(reply).lower()
        # the customer answers the bot's reply: the same conversation goes on
        ours = headers["Message-ID"]
        await imap.deliver(
            eml(
                "ana.novak@example.com",
                "Re: Returns",
                "Thanks. What are your opening hours?",
                msgid="e2e-2@mail.example",
                extra=f"In-Reply-To: {ours}\r\nReferences: <e2e-1@mail.example> {ours}\r\n",
            )
        )
        second = (await sink.wait_for(2, TIMEOUT))[1]
        assert parsed(second)["In-Reply-To"] == "<e2e-2@mail.example>"
        assert f"<e2e-1@mail.example> {ours} <e2e-2@mail.example>" in " ".join(
            parsed(second)["References"].split()
        )
        async with await staff_client(url, app) as http:
            messages = (await http.get("/v1/email/messages", params={"direction": "in"})).json()["messages"]
            conversations = {m["conversation_id"] for m in messages}
            assert len(messages) == 2 and len(conversations) == 1
            status = (await http.get("/v1/email/status")).json()
            assert status["mailboxes"][0]["connected"] is True
            assert status["messages"]["out"] == {"sent": 2}
        # an auto-responder answering the bot is recorded and never answered
        await imap.deliver(
            eml(
                "ana.novak@example.com",
                "Automatic reply: Re: Returns",
                "I am out of office.",
                msgid="e2e-3@mail.example",
                extra="Auto-Submitted: auto-replied\r\n",
            )
        )

        async def recorded() -> bool:
            async with await staff_client(url, app) as http:
                found = (await http.get("/v1/email/messages", params={"status": "ignored"})).json()[
                    "messages"
                ]
            return len(found) == 1

        await until(recorded, "the auto-reply to be recorded as ignored")
        assert len(sink.messages) == 2


async def test_exactly_once_across_a_restart_with_polling(setup: Setup, tmp_path: Path) -> None:
    async with Dovecot(tmp_path) as imap, SmtpSink() as sink:
        section = {
            "enabled": True,
            "address": BOT,
            "smtp": smtp_section(sink),
            "imap": [imap_section(imap, idle=False, poll_secs=0.2)],
        }
        for i in range(3):
            await imap.deliver(
                eml(f"c{i}@example.com", "Returns", "What is your returns policy?", msgid=f"r{i}@x")
            )
        async with setup.server(section):
            await sink.wait_for(3, TIMEOUT)
        # while the server is down one more arrives; the first three must not be answered again
        await imap.deliver(eml("c3@example.com", "Returns", "What is your returns policy?", msgid="r3@x"))
        async with setup.server(section) as (url, app):
            await sink.wait_for(4, TIMEOUT)
            async with await staff_client(url, app) as http:

                async def settled() -> bool:
                    status = (await http.get("/v1/email/status")).json()
                    return status["mailboxes"][0]["connected"] is True

                await until(settled, "the mailbox to be read")
                await asyncio.sleep(1.0)  # a few more polls: nothing new may go out
                messages = (await http.get("/v1/email/messages", params={"direction": "in"})).json()[
                    "messages"
                ]
        assert sorted(m.rcpt_tos[0] for m in sink.messages) == [f"c{i}@example.com" for i in range(4)]
        assert len(messages) == 4


async def test_imaps_draft_approved_in_the_api_is_sent(setup: Setup, tmp_path: Path) -> None:
    tls = LoopbackTLS(tmp_path / "tls")
    async with Dovecot(tmp_path, tls=tls) as imap, SmtpSink() as sink:
        section = {
            "enabled": True,
            "address": BOT,
            "auto_reply": False,
            "imap": [imap_section(imap)],
            "smtp": smtp_section(sink),
        }
        async with setup.server(section) as (url, app), await staff_client(url, app) as http:
            await imap.deliver(
                eml("ana.novak@example.com", "Returns", "What is your returns policy?", msgid="d1@x")
            )

            async def drafted() -> bool:
                return len((await http.get("/v1/email/drafts")).json()["drafts"]) == 1

            await until(drafted, "the draft")
            (draft,) = (await http.get("/v1/email/drafts")).json()["drafts"]
            assert "approval_required" in draft["reasons"] and draft["customer"]["name"] == "Ana Novak"
            assert draft["original"]["from"] == "ana.novak@example.com"
            assert sink.messages == []
            response = await http.post(
                f"/v1/email/drafts/{draft['id']}/approve",
                json={"text": "Dear Ana, you have 30 days.", "agent": "maja"},
            )
            assert response.status_code == 200 and response.json()["status"] == "approved"
            (sent,) = await sink.wait_for(1, TIMEOUT)
            assert body(sent).startswith("Dear Ana, you have 30 days.")
            assert parsed(sent)["In-Reply-To"] == "<d1@x>"
            again = await http.post(f"/v1/email/drafts/{draft['id']}/approve", json={})
            assert again.status_code == 409
            missing = await http.post("/v1/email/drafts/nope/reject", json={})
            assert missing.status_code == 404


async def test_the_smtp_listener_takes_mail_for_the_bot_only(setup: Setup, tmp_path: Path) -> None:
    async with SmtpSink() as sink:
        section = {
            "enabled": True,
            "address": BOT,
            "smtp": smtp_section(sink),
            "listener": {"enabled": True, "host": "127.0.0.1", "port": 0},
        }
        async with setup.server(section) as (_url, app):
            port = app.state.email.listener.port
            raw = eml("john.smith@example.com", "Returns", "What is your returns policy?", msgid="l1@x")
            async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False) as client:
                await client.sendmail("john.smith@example.com", [BOT], raw)
                with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
                    await client.sendmail("john.smith@example.com", ["someone@elsewhere.example"], raw)
            (reply,) = await sink.wait_for(1, TIMEOUT)
            assert reply.rcpt_tos == ["john.smith@example.com"]
            assert parsed(reply)["In-Reply-To"] == "<l1@x>"
