"""The handoff desk (/desk) in Debian's chromium (Playwright), against the real app on 127.0.0.1.

An agent logs in at /login; a customer chats in the widget at / (another browser context) until the
bot hands off; the handoff arrives in the desk's queue (live) with its context; the agent takes it
and replies, and the customer's widget shows the reply. An operator (no desk permission) is refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.auth_helpers import browser_login, token_headers
from tests.conftest import SESSION_LOOP, serving
from tests.web.test_widget import CHROMIUM, CHROMIUM_ARGS
from voicebot.app import create_app
from voicebot.auth.roles import Role
from voicebot.config import DEMO_TENANT, Settings
from voicebot.knowledge.embeddings import Embedder
from voicebot.runtime import Runtime

SCREENSHOT = Path("/tmp/desk.png")
TIMEOUT_MS = 30_000  # hang guards only; nothing here asserts on speed

pytestmark = [
    SESSION_LOOP,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"Debian's chromium is not installed at {CHROMIUM}"),
]


@dataclass
class Server:
    url: str
    runtime: Runtime


@pytest_asyncio.fixture(loop_scope="session")
async def server(real_embedder: Embedder, runtime_data_dir: Path, tmp_path: Path) -> AsyncIterator[Server]:
    settings = Settings(
        tenant_config=DEMO_TENANT,
        data_dir=runtime_data_dir,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}",
    )
    app = create_app(settings, Runtime(settings, embedder=real_embedder))
    async with serving(app, lifespan="on") as url:
        yield Server(url, app.state.runtime)


@pytest_asyncio.fixture(loop_scope="session")
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=TIMEOUT_MS)
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


async def say(widget: Any, text: str) -> None:
    await widget.get_by_test_id("vb-input").fill(text)
    await widget.get_by_test_id("vb-send").click()


async def test_an_agent_takes_a_handed_off_chat_and_the_customer_sees_the_reply(
    server: Server, browser: Any
) -> None:
    from playwright.async_api import expect

    errors: list[str] = []
    agent_context = await browser.new_context(viewport={"width": 1280, "height": 1200})
    customer_context = await browser.new_context()
    try:
        desk = await agent_context.new_page()
        desk.on("pageerror", lambda exc: errors.append(f"desk: {exc}"))
        agent = await browser_login(desk, server.url, server.runtime, Role.AGENT, next_path="/desk")
        await expect(desk.get_by_test_id("dk-sync")).to_contain_text("0 waiting")
        await expect(desk.get_by_test_id("dk-empty")).to_be_visible()

        # the customer chats until the bot hands off
        widget = await customer_context.new_page()
        widget.on("pageerror", lambda exc: errors.append(f"widget: {exc}"))
        await widget.goto(server.url + "/")
        await widget.get_by_test_id("vb-open").click()
        bot = widget.locator("[data-role=bot]")
        await expect(bot.first).to_contain_text("Demo Shop")
        await say(widget, "Where is my order A1001?")
        await expect(bot).to_have_count(2)
        await say(widget, "I want to talk to a person")
        await expect(bot.last).to_have_attribute("data-action", "handoff")
        queued = widget.locator("[data-role=system][data-kind=queued]")
        await expect(queued).to_contain_text("You are next in the queue")
        await expect(queued).to_contain_text("no recent waits")

        # it arrives in the desk's queue by the live feed, with its context
        items = desk.get_by_test_id("dk-queue").get_by_test_id("dk-item")
        await expect(items).to_have_count(1)
        await expect(items.first).to_contain_text("#1")
        await expect(items.first).to_contain_text("waiting")
        await items.first.click()
        await expect(desk.get_by_test_id("dk-reason")).to_have_text("The customer asked for a person")
        await expect(desk.get_by_test_id("dk-summary")).not_to_be_empty()
        await expect(desk.get_by_test_id("dk-status")).to_have_text("Waiting")
        transcript = desk.get_by_test_id("dk-transcript")
        await expect(transcript).to_contain_text("Where is my order A1001?")
        await expect(transcript.locator("[data-role=customer]")).to_have_count(2)
        await expect(desk.get_by_test_id("dk-reply-box")).to_be_hidden()

        # the agent takes it: the customer is told, the reply box opens
        await desk.get_by_test_id("dk-take").click()
        await expect(desk.get_by_test_id("dk-confirm")).to_contain_text("You have this conversation now")
        await expect(desk.get_by_test_id("dk-status")).to_have_text("With an agent")
        await expect(desk.get_by_test_id("dk-queue").get_by_test_id("dk-item")).to_have_count(0)
        await expect(desk.get_by_test_id("dk-taken").get_by_test_id("dk-item")).to_contain_text(agent)
        await expect(widget.locator("[data-kind=joined]")).to_have_text(
            f"{agent} has joined the conversation."
        )

        reply = "Hi, I am sorry for the wait. Your order A1001 left our warehouse today."
        await desk.get_by_label("Reply text").fill(reply)
        await desk.get_by_test_id("dk-send").click()
        agent_line = widget.locator("[data-role=agent]")
        await expect(agent_line).to_contain_text(reply)
        await expect(agent_line.locator(".vb-who")).to_have_text(agent)
        await expect(transcript.locator("[data-role=agent]")).to_have_count(1)

        # the customer answers: the bot is silent, the agent sees it live
        await say(widget, "Thank you, that is great!")
        await expect(transcript).to_contain_text("Thank you, that is great!")
        await expect(bot).to_have_count(3)  # no new bot line
        await desk.screenshot(path=str(SCREENSHOT), full_page=True)

        # handed back: the bot answers again
        await desk.get_by_test_id("dk-hand-back").click()
        await expect(desk.get_by_test_id("dk-confirm")).to_contain_text("Handed back to the bot")
        await expect(widget.locator("[data-kind=handed_back]")).to_be_visible()
        await say(widget, "What are your opening hours?")
        await expect(bot).to_have_count(4)
        await expect(bot.last).to_contain_text("Monday")
    finally:
        await agent_context.close()
        await customer_context.close()
    assert errors == []

    headers = await token_headers(server.runtime, Role.AGENT)
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as client:
        queue = (await client.get("/v1/desk/queue")).json()
    assert queue["waiting"] == [] and queue["taken"] == []
    actions = await server.runtime.audit.search(server.runtime.tenant.id, actor=agent, action="desk.")
    assert sorted(a.action for a in actions) == ["desk.hand_back", "desk.reply", "desk.take"]


async def test_an_operator_is_not_allowed_at_the_desk(server: Server, browser: Any) -> None:
    from playwright.async_api import expect

    context = await browser.new_context()
    try:
        page = await context.new_page()
        await browser_login(page, server.url, server.runtime, Role.OPERATOR, next_path="/desk")
        refused = page.get_by_test_id("ui-refused")
        await expect(refused).to_contain_text("Not allowed")
        await expect(refused).to_contain_text("operator")
        await expect(page.get_by_test_id("dk-detail")).to_have_count(0)
        answer = await page.evaluate(
            "fetch('/v1/desk/queue').then(r => r.json().then(b => [r.status, b.error.message]))"
        )
        assert answer[0] == 403 and "'desk' permission" in answer[1]
    finally:
        await context.close()


async def test_a_voice_handoff_is_offered_as_a_call(server: Server, browser: Any) -> None:
    from playwright.async_api import expect

    from voicebot.dialogue.types import Channel

    started = await server.runtime.chat.start(channel=Channel.VOICE, caller="+38640111222")
    await server.runtime.chat.send(started.conversation.id, "I want to talk to a person")
    handoff = await server.runtime.handoffs.active_for(started.conversation.id)
    assert handoff is not None
    errors: list[str] = []
    context = await browser.new_context()
    try:
        page = await context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await browser_login(
            page, server.url, server.runtime, Role.AGENT, next_path=f"/desk?handoff={handoff.id}"
        )
        await expect(page.get_by_test_id("dk-channel")).to_have_text("Call")
        await expect(page.get_by_test_id("dk-accept-call")).to_be_visible()
        await expect(page.get_by_test_id("dk-take")).to_be_hidden()
        await expect(page.get_by_test_id("dk-reply-box")).to_be_hidden()
        await expect(page.get_by_test_id("dk-transcript")).to_contain_text("I want to talk to a person")
        # the call component is loaded for the button (accepting a real call: tests/live, agentcall.js)
        assert await page.evaluate("typeof window.agentCall.accept") == "function"
    finally:
        await context.close()
    assert errors == []
