"""The review page (/review) in Debian's chromium (Playwright), against the real app with its lifespan.

A supervisor logs in, filters the conversations, opens a call and finds its recording in an audio
player, marks a bot answer wrong with a note, finds the unanswered questions grouped in the gaps
tab, adds an answer from a group, and the bot answers that question at once.
"""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.auth_helpers import browser_login, token_headers
from tests.conftest import SESSION_LOOP, serving
from tests.review.seed import Exchange, seed
from tests.web.test_drafts_page import browser_page
from tests.web.test_widget import CHROMIUM
from voicebot.app import create_app
from voicebot.auth.roles import Role
from voicebot.config import DEMO_TENANT, Settings
from voicebot.knowledge.embeddings import Embedder
from voicebot.live.recordings import recording_path
from voicebot.runtime import Runtime

SCREENSHOT = Path("/tmp/review.png")
SCREENSHOT_CONVERSATION = Path("/tmp/review-conversation.png")
TIMEOUT_MS = 30_000  # hang guards only; nothing here asserts on speed
ANSWER = "Yes: our service centre repairs drones of every brand we sell; bring it in with the receipt."

pytestmark = [
    SESSION_LOOP,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"Debian's chromium is not installed at {CHROMIUM}"),
]


@dataclass
class Server:
    url: str
    runtime: Runtime
    client: httpx.AsyncClient
    ids: dict[str, str]


@pytest_asyncio.fixture(loop_scope="session")
async def server(real_embedder: Embedder, runtime_data_dir: Path, tmp_path: Path) -> AsyncIterator[Server]:
    settings = Settings(
        tenant_config=DEMO_TENANT,
        data_dir=runtime_data_dir,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'review.db'}",
    )
    app = create_app(settings, Runtime(settings, embedder=real_embedder))
    async with serving(app, lifespan="on") as url:
        runtime: Runtime = app.state.runtime
        now = runtime.clock()
        ids = {
            "returns": await seed(
                runtime,
                [Exchange("How do I return a jacket?", "Within 14 days.", intent="returns", confidence=0.91)],
                at=now - timedelta(hours=3),
            ),
            "call": await seed(
                runtime,
                [
                    Exchange(
                        "Do you repair drones?",
                        "Could you say more?",
                        "clarify",
                        None,
                        0.24,
                        "below_threshold",
                    )
                ],
                channel="voice",
                at=now - timedelta(hours=2),
                caller="+38640111222",
            ),
            "chat": await seed(
                runtime,
                [
                    Exchange(
                        "Can you fix my drone?",
                        "A colleague will help.",
                        "handoff",
                        None,
                        0.11,
                        "low_confidence",
                    )
                ],
                at=now - timedelta(hours=1),
            ),
        }
        path = recording_path(settings, runtime.tenant.id, ids["call"])
        path.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(path), "wb") as wav:  # one second of a quiet tone-ish pattern
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(16000)
            wav.writeframes(bytes([0, 8, 0, 16, 0, 8, 0, 0]) * 4000)
        async with httpx.AsyncClient(base_url=url, headers=await token_headers(runtime)) as client:
            yield Server(url, runtime, client, ids)


async def ask(client: httpx.AsyncClient, text: str) -> dict[str, Any]:
    started = await client.post("/v1/conversations", json={"language": "en"})
    reply = await client.post(f"/v1/conversations/{started.json()['id']}/messages", json={"text": text})
    body: dict[str, Any] = reply.json()
    return body


async def test_supervisor_reviews_marks_and_fills_a_gap(server: Server) -> None:
    from playwright.async_api import expect

    errors: list[str] = []
    async with browser_page(errors, accept_dialogs=True) as page:
        await browser_login(page, server.url, server.runtime, Role.SUPERVISOR, next_path="/review")
        conversations = page.get_by_test_id("rv-list").get_by_role("button")
        await expect(conversations).to_have_count(3)
        await expect(conversations.first).to_contain_text("Can you fix my drone?")  # newest first

        # filter: the voice calls only; the call has its recording in a player
        await page.get_by_test_id("rv-channel").select_option("voice")
        await page.get_by_test_id("rv-search").click()
        await expect(conversations).to_have_count(1)
        await conversations.first.click()
        await expect(page.get_by_test_id("rv-title")).to_contain_text(server.ids["call"])
        await expect(page.get_by_test_id("rv-turns")).to_contain_text("Do you repair drones?")
        await expect(page.get_by_test_id("rv-recording")).to_be_visible()
        await page.wait_for_function(
            "document.querySelector('[data-testid=rv-audio]').readyState >= 1", timeout=TIMEOUT_MS
        )
        duration = await page.evaluate("document.querySelector('[data-testid=rv-audio]').duration")
        assert duration == pytest.approx(1.0, abs=0.05)

        # text search, then mark the bot's answer wrong with a note
        await page.get_by_test_id("rv-channel").select_option("")
        await page.get_by_test_id("rv-q").fill("JACKET")
        await page.get_by_test_id("rv-search").click()
        await expect(conversations).to_have_count(1)
        await conversations.first.click()
        bot_turn = page.locator(".rv-turn-bot")
        await expect(bot_turn).to_contain_text("confidence 91 %")
        await expect(page.get_by_test_id("rv-recording")).to_be_hidden()
        await bot_turn.get_by_test_id("rv-note").fill("It is 30 days since the policy change")
        await bot_turn.get_by_test_id("rv-mark-wrong").click()
        await expect(bot_turn.get_by_test_id("rv-marks")).to_contain_text(
            "wrong — It is 30 days since the policy change"
        )
        await expect(conversations.first).to_contain_text("1 marked wrong")
        await page.screenshot(path=str(SCREENSHOT_CONVERSATION), full_page=True)
        listed = await server.client.get("/v1/review/conversations", params={"marked": "wrong"})
        assert [c["id"] for c in listed.json()["conversations"]] == [server.ids["returns"]]

        # the gaps: both drone questions in one group, the answer marked wrong in another
        await page.get_by_test_id("rv-tab-gaps").click()
        groups = page.get_by_test_id("rv-group")
        await expect(groups).to_have_count(2)
        drones = groups.filter(has_text="Can you fix my drone?")
        await expect(drones).to_contain_text("Do you repair drones?")
        await expect(drones).to_contain_text("2 times")
        await expect(drones.get_by_test_id("rv-group-state")).to_have_text("no answer yet")
        await expect(groups.filter(has_text="How do I return a jacket?")).to_contain_text(
            "It is 30 days since the policy change"
        )

        # "Add answer": the knowledge editor opens with the group's questions
        before = await ask(server.client, "Do you repair drones?")
        assert before["action"] == "clarify"
        await drones.get_by_test_id("rv-add-answer").click()
        await expect(page.get_by_test_id("rv-kb-editor")).to_be_visible()
        questions = await page.get_by_test_id("rv-kb-questions").input_value()
        assert set(questions.split("\n")) == {"Do you repair drones?", "Can you fix my drone?"}
        await page.get_by_test_id("rv-kb-text").fill(ANSWER)
        await page.get_by_test_id("rv-kb-save").click()
        await expect(page.get_by_test_id("rv-kb-confirm")).to_contain_text("The bot answers from it now")
        await expect(page.get_by_test_id("rv-kb-list")).to_contain_text("added here")

        after = await ask(server.client, "Do you repair drones?")
        assert after["action"] == "answer" and after["text"] == ANSWER

        await page.get_by_test_id("rv-tab-gaps").click()
        await expect(drones.get_by_test_id("rv-group-state")).to_have_text("answered now")
        await page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert errors == []


async def test_an_agent_is_refused(server: Server) -> None:
    from playwright.async_api import expect

    errors: list[str] = []
    async with browser_page(errors, accept_dialogs=True) as page:
        await browser_login(page, server.url, server.runtime, Role.AGENT, next_path="/review")
        await expect(page.get_by_test_id("ui-refused")).to_contain_text("may not open this page")
        await expect(page.get_by_role("link", name="Review")).to_have_count(0)
    assert errors == []
