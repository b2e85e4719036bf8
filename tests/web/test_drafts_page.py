"""The e-mail drafts page (/email/drafts) in Debian's chromium (Playwright), against the real app.

The app runs its real lifespan with the e-mail bot enabled in approval mode (``auto_reply: false``,
so every answer waits as a draft) and sends through a real SMTP sink (aiosmtpd) on 127.0.0.1.
Customer mail goes in through ``EmailService.receive``; an agent reviews it in the browser.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.auth_helpers import browser_login, token_headers
from tests.conftest import SESSION_LOOP, demo_tenant_with, serving
from tests.peers.smtp_sink import SmtpSink
from tests.web.test_widget import CHROMIUM, CHROMIUM_ARGS
from voicebot.app import create_app
from voicebot.auth.roles import Role
from voicebot.config import Settings
from voicebot.knowledge.embeddings import Embedder
from voicebot.runtime import Runtime

SCREENSHOT = Path("/tmp/drafts.png")
TIMEOUT_MS = 30_000  # hang guards only; nothing here asserts on speed
HANG_GUARD_SECS = 60.0
SUPPORT = "support@demo-shop.example"

RETURNS_ID = "<20250303101500.4711@mail.example.com>"
WARRANTY_ID = "<20250303112000.4712@mail.example.com>"
EDITED = (
    "Dear Ana,\n\nyou can return the jacket within 14 days of delivery, no reason needed. "
    "Use the return form in your account.\n\nKind regards,\nMaria from Demo Shop"
)

pytestmark = [
    SESSION_LOOP,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"Debian's chromium is not installed at {CHROMIUM}"),
]


def customer_mail(
    message_id: str, subject: str, body: str, *, attachment: tuple[str, bytes] | None = None
) -> bytes:
    """An RFC 5322 message from Ana Novak (a customer in the demo CRM) to the support address."""
    msg = EmailMessage()
    msg["From"] = "Ana Novak <ana.novak@example.com>"
    msg["To"] = f"Demo Shop Support <{SUPPORT}>"
    msg["Subject"] = subject
    msg["Date"] = "Mon, 03 Mar 2025 10:15:00 +0100"
    msg["Message-ID"] = message_id
    msg["MIME-Version"] = "1.0"
    msg.set_content(body)
    if attachment is not None:
        name, data = attachment
        msg.add_attachment(data, maintype="application", subtype="pdf", filename=name)
    return msg.as_bytes(policy=email.policy.SMTP)


RETURNS_MAIL = customer_mail(
    RETURNS_ID,
    "Returning a jacket",
    "Hello,\n\nI bought a jacket last week and it does not fit. What is your returns policy?\n\n"
    "Thanks,\nAna\n\n-- \nAna Novak\nTrubarjeva 12, Ljubljana\n",
)
WARRANTY_MAIL = customer_mail(
    WARRANTY_ID,
    "Coffee machine warranty",
    "Hi,\n\nHow long is the warranty on the coffee machine I ordered?\n\nBest regards,\nAna\n\n"
    "On Fri, 28 Feb 2025 at 09:00, Demo Shop <support@demo-shop.example> wrote:\n"
    "> Thank you for your order A1001.\n> We will let you know when it ships.\n",
    attachment=("receipt.pdf", b"%PDF-1.4\n" + b"0" * 2039),
)


@dataclass
class Server:
    url: str
    app: Any
    sink: SmtpSink
    client: httpx.AsyncClient


@pytest_asyncio.fixture(loop_scope="session")
async def server(real_embedder: Embedder, runtime_data_dir: Path, tmp_path: Path) -> AsyncIterator[Server]:
    async with SmtpSink() as sink:
        tenant = demo_tenant_with(
            tmp_path,
            email={
                "enabled": True,
                "address": SUPPORT,
                "auto_reply": False,
                "smtp": {"host": "127.0.0.1", "port": sink.port, "security": "none"},
            },
        )
        settings = Settings(
            tenant_config=tenant,
            data_dir=runtime_data_dir,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'drafts.db'}",
        )
        app = create_app(settings, Runtime(settings, embedder=real_embedder))
        async with serving(app, lifespan="on") as url:
            headers = await token_headers(app.state.runtime)
            async with httpx.AsyncClient(base_url=url, headers=headers) as client:
                assert app.state.email is not None, "the e-mail bot did not start"
                yield Server(url, app, sink, client)


async def pending_drafts(server: Server, count: int) -> list[dict[str, Any]]:
    """Wait until the bot has decided the mail taken in: ``count`` pending drafts."""
    drafts: list[dict[str, Any]] = []
    async with asyncio.timeout(HANG_GUARD_SECS):
        while len(drafts) < count:
            response = await server.client.get("/v1/email/drafts", params={"status": "pending"})
            response.raise_for_status()
            drafts = response.json()["drafts"]
            if len(drafts) < count:
                await asyncio.sleep(0.05)
    assert len(drafts) == count, drafts
    return drafts


async def outbound(server: Server) -> list[dict[str, Any]]:
    response = await server.client.get("/v1/email/messages", params={"direction": "out"})
    response.raise_for_status()
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


@asynccontextmanager
async def browser_page(
    errors: list[str], *, height: int = 1400, accept_dialogs: bool = False
) -> AsyncIterator[Any]:
    """A page in Debian's chromium; uncaught page errors go to ``errors``; confirm() dialogs are
    accepted when ``accept_dialogs``."""
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=TIMEOUT_MS)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": height})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            if accept_dialogs:
                page.on("dialog", lambda dialog: dialog.accept())
            yield page
        finally:
            await browser.close()


def plain_body(raw: bytes) -> tuple[email.message.EmailMessage, str]:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, raw[:500]
    return message, part.get_content().replace("\r\n", "\n")


async def test_agent_reviews_edits_approves_and_rejects(server: Server) -> None:
    from playwright.async_api import expect

    await server.app.state.email.receive(RETURNS_MAIL, source="test")
    await server.app.state.email.receive(WARRANTY_MAIL, source="test")
    drafts = await pending_drafts(server, 2)
    by_subject = {d["original"]["subject"]: d for d in drafts}
    returns, warranty = by_subject["Returning a jacket"], by_subject["Coffee machine warranty"]
    assert "approval_required" in returns["reasons"]

    errors: list[str] = []
    async with browser_page(errors) as page:
        await browser_login(page, server.url, server.app.state.runtime, Role.AGENT, next_path="/email/drafts")
        items = page.get_by_role("list", name="Drafts").get_by_role("button")
        await expect(items).to_have_count(2)
        await expect(page.get_by_test_id("dr-sync")).to_contain_text("2 pending drafts")

        # one draft in full: the original, why it was held back, the customer, the answers
        await page.get_by_role("button", name="Returning a jacket").click()
        detail = page.get_by_test_id("dr-detail")
        title = page.get_by_role("heading", level=2).and_(page.locator("#dr-title"))
        await expect(title).to_have_text("Returning a jacket")
        original = page.get_by_test_id("dr-original-text")
        await expect(original).to_contain_text("What is your returns policy?")
        await expect(page.get_by_test_id("dr-headers")).to_contain_text("Ana Novak <ana.novak@example.com>")
        await expect(page.get_by_test_id("dr-reasons")).to_contain_text("needs an agent's approval")
        await expect(page.locator("[data-reason=approval_required]")).to_be_visible()
        await expect(page.get_by_test_id("dr-customer")).to_contain_text("Ana Novak")
        await expect(page.get_by_test_id("dr-answers")).to_contain_text("Confidence")
        signature = page.get_by_test_id("dr-signature")
        await expect(signature.get_by_text("Trubarjeva 12")).to_be_hidden()
        await signature.get_by_text("Signature").click()
        await expect(signature.get_by_text("Trubarjeva 12")).to_be_visible()

        # edit the proposed reply and approve it as a named agent
        textarea = page.get_by_label("Reply text")
        await expect(textarea).to_have_value(returns["proposed_text"])
        await textarea.fill(EDITED)
        await page.get_by_label("Agent name").fill("Maria")
        await page.screenshot(path=str(SCREENSHOT), full_page=True)
        await page.get_by_role("button", name="Approve & send").click()
        confirm = page.get_by_test_id("dr-confirm")
        await expect(confirm).to_contain_text("Approved")
        await expect(confirm).to_contain_text("ana.novak@example.com")
        await expect(detail.get_by_test_id("dr-status")).to_have_text("Approved")
        await expect(items).to_have_count(1)  # it left the pending list
        await expect(items.first).to_contain_text("Coffee machine warranty")

        await server.sink.wait_for(1, HANG_GUARD_SECS)
        assert len(server.sink.messages) == 1
        sent = server.sink.messages[0]
        assert sent.rcpt_tos == ["ana.novak@example.com"]
        message, body = plain_body(sent.data)
        assert body.startswith(EDITED), body
        assert message["In-Reply-To"] == RETURNS_ID
        assert RETURNS_ID in (message["References"] or "")
        approved = (await server.client.get(f"/v1/email/drafts/{returns['id']}")).json()
        assert approved["status"] == "approved"
        assert approved["final_text"] == EDITED and approved["decided_by"] == "Maria"

        # the other one: attachments listed with their size, then rejected with a note
        await page.get_by_role("button", name="Coffee machine warranty").click()
        await expect(title).to_have_text("Coffee machine warranty")
        await expect(page.get_by_test_id("dr-attachments")).to_contain_text("receipt.pdf")
        await expect(page.get_by_test_id("dr-attachments")).to_contain_text("2.0 KB")
        await expect(page.get_by_test_id("dr-reasons")).to_contain_text("attachments a person should look at")
        await expect(page.get_by_test_id("dr-quoted")).to_be_visible()
        await expect(page.get_by_label("Agent name")).to_have_value("Maria")
        await page.get_by_label("Rejection note (optional)").fill("Ana called us; answered by phone.")
        await page.get_by_role("button", name="Reject").click()
        await expect(confirm).to_contain_text("Rejected")
        await expect(detail.get_by_test_id("dr-status")).to_have_text("Rejected")
        await expect(page.get_by_test_id("dr-decision")).to_contain_text("Ana called us; answered by phone.")
        await expect(items).to_have_count(0)
        await expect(page.get_by_test_id("dr-empty")).to_be_visible()

        rejected = (await server.client.get(f"/v1/email/drafts/{warranty['id']}")).json()
        assert rejected["status"] == "rejected" and rejected["decided_by"] == "Maria"
        assert rejected["note"] == "Ana called us; answered by phone."
        assert [m["in_reply_to"] for m in await outbound(server)] == [RETURNS_ID]  # nothing queued
        assert len(server.sink.messages) == 1

        # the approved one under the "approved" filter, with the text as sent
        await page.get_by_label("Show").select_option("approved")
        await expect(items).to_have_count(1)
        await expect(items.first).to_contain_text("Returning a jacket")
        await expect(items.first).to_contain_text("by Maria")
        await items.first.click()
        await expect(page.get_by_test_id("dr-final")).to_contain_text("Maria from Demo Shop")
        await expect(page.get_by_test_id("dr-act")).to_be_hidden()

        # the agent's name is remembered across visits
        await page.reload()
        await expect(page.get_by_label("Agent name")).to_have_value("Maria")
    assert errors == []


async def test_an_api_error_is_shown_and_nothing_is_sent(server: Server) -> None:
    from playwright.async_api import expect

    subject = "<img src=x onerror=\"document.title='owned'\"> Broken kettle"
    raw = customer_mail(
        "<20250304080000.4800@mail.example.com>",
        subject,
        "Hello,\n\nMy kettle stopped working. What is your returns policy?\n\nAna\n",
    )
    await server.app.state.email.receive(raw, source="test")
    (draft,) = await pending_drafts(server, 1)

    errors: list[str] = []
    async with browser_page(errors) as page:
        await browser_login(page, server.url, server.app.state.runtime, Role.AGENT, next_path="/email/drafts")
        await page.get_by_role("button", name="Broken kettle").click()
        await expect(page.get_by_role("heading", name="Broken kettle")).to_have_text(subject)  # as text
        await page.get_by_label("Reply text").fill("")
        await page.get_by_role("button", name="Approve & send").click()
        alert = page.get_by_test_id("dr-error")
        await expect(alert).to_be_visible()
        await expect(alert).to_contain_text("the reply is empty")
        await expect(page.get_by_role("alert").filter(has_text="the reply is empty")).to_be_visible()
        await expect(page.get_by_test_id("dr-confirm")).to_be_hidden()
        await expect(page.get_by_test_id("dr-status")).to_have_text("Pending")
        await expect(page.get_by_role("button", name="Approve & send")).to_be_enabled()
        assert await page.title() != "owned"

    still = (await server.client.get(f"/v1/email/drafts/{draft['id']}")).json()
    assert still["status"] == "pending" and still["final_text"] is None
    assert await outbound(server) == []
    assert server.sink.messages == []
    assert errors == []
