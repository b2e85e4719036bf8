"""The chat widget in Debian's chromium (Playwright), against the real server on 127.0.0.1.

The server is the real app with its real lifespan (it starts and stops the Runtime), served by
uvicorn in this event loop on a socket bound to 127.0.0.1 port 0.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from tests.auth_helpers import token_headers
from tests.conftest import SESSION_LOOP, serving
from voicebot.app import create_app
from voicebot.auth.roles import Role
from voicebot.config import DEMO_TENANT, Settings
from voicebot.knowledge.embeddings import Embedder
from voicebot.runtime import Runtime

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path("/tmp/widget.png")
TIMEOUT_MS = 30_000  # a hang guard only; nothing here asserts on speed

pytestmark = [
    SESSION_LOOP,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"Debian's chromium is not installed at {CHROMIUM}"),
]

HEADERS: dict[str, dict[str, str]] = {}  # an agent's API token per server URL


@pytest_asyncio.fixture(loop_scope="session")
async def server(real_embedder: Embedder, runtime_data_dir: Path, tmp_path: Path) -> AsyncIterator[str]:
    settings = Settings(
        tenant_config=DEMO_TENANT,
        data_dir=runtime_data_dir,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'widget.db'}",
    )
    app = create_app(settings, Runtime(settings, embedder=real_embedder))
    async with serving(app, lifespan="on") as url:
        HEADERS[url] = await token_headers(app.state.runtime, Role.AGENT)
        yield url


async def test_widget_conversation(server: str) -> None:
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=TIMEOUT_MS)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = await browser.new_page(viewport={"width": 1100, "height": 760})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(server + "/")

            bot = page.locator("[data-role=bot]")
            panel = page.locator(".vb-panel")
            await expect(panel).to_be_hidden()
            await page.get_by_test_id("vb-open").click()
            await expect(panel).to_be_visible()
            await expect(bot.first).to_contain_text("Hello, and welcome to Demo Shop!")
            cid = await page.evaluate("sessionStorage.getItem('voicebot.conversation')")
            assert cid

            # a knowledge answer shows its source
            await page.get_by_test_id("vb-input").fill("What is your returns policy?")
            await page.get_by_test_id("vb-input").press("Enter")
            await expect(page.locator("[data-role=customer]").last).to_have_text(
                "What is your returns policy?"
            )
            await expect(bot).to_have_count(2)
            await expect(bot.nth(1)).to_have_attribute("data-action", "answer")
            await expect(bot.nth(1).locator(".vb-sources")).to_contain_text("Source:")
            await expect(bot.nth(1).locator(".vb-sources")).to_contain_text("return", ignore_case=True)

            # a reload continues the same conversation, earlier turns shown again
            await page.reload()
            await page.get_by_test_id("vb-open").click()
            customer = page.locator("[data-role=customer]")
            await expect(customer).to_have_count(1)  # the greeting is not a stored turn
            await expect(customer.first).to_have_text("What is your returns policy?")
            await expect(bot).to_have_count(1)
            await expect(bot.first.locator(".vb-sources")).to_contain_text("Source:")
            assert await page.evaluate("sessionStorage.getItem('voicebot.conversation')") == cid
            await page.get_by_test_id("vb-input").fill("How long is the warranty?")
            await page.get_by_test_id("vb-input").press("Enter")
            await expect(bot).to_have_count(2)
            await expect(bot.last).to_contain_text("warranty")

            # goodbye -> CSAT buttons -> a click stores the score
            csat = page.locator(".vb-csat")
            await expect(csat).to_be_hidden()
            await page.get_by_test_id("vb-input").fill("Thanks, goodbye")
            await page.get_by_test_id("vb-input").press("Enter")
            await expect(bot.last).to_have_attribute("data-action", "end")
            await expect(csat).to_be_visible()
            await expect(csat.get_by_role("button")).to_have_count(5)
            await page.screenshot(path=str(SCREENSHOT))
            await csat.get_by_role("button", name="Rate 4 of 5").click()
            await expect(csat).to_contain_text("Thank you for your feedback")

            # a new visitor (fresh session) asks for a person and sees the handoff notice
            other = await browser.new_page()
            other.on("pageerror", lambda exc: errors.append(str(exc)))
            await other.goto(server + "/")
            await other.get_by_test_id("vb-open").click()
            await expect(other.locator("[data-role=bot]").first).to_contain_text("Demo Shop")
            handed_cid = await other.evaluate("sessionStorage.getItem('voicebot.conversation')")
            assert handed_cid and handed_cid != cid
            await other.get_by_test_id("vb-input").fill("I want to talk to a human")
            await other.get_by_test_id("vb-send").click()
            await expect(other.locator("[data-role=bot]").last).to_have_attribute("data-action", "handoff")
            await expect(other.locator("[data-role=system]")).to_contain_text("queue")
            assert errors == []
        finally:
            await browser.close()

    async with httpx.AsyncClient(base_url=server, headers=HEADERS[server]) as client:
        conversation = (await client.get(f"/v1/conversations/{cid}")).json()
        handoffs = (await client.get("/v1/handoffs")).json()["handoffs"]
    assert conversation["csat"] == 4
    said = [t["text"] for t in conversation["turns"] if t["role"] == "customer"]
    assert said == ["What is your returns policy?", "How long is the warranty?", "Thanks, goodbye"]
    assert [h["conversation_id"] for h in handoffs] == [handed_cid]
