"""The dashboard page (/dashboard) in Debian's chromium (Playwright), against the real app with its
lifespan: the tiles show the figures GET /v1/dashboard reports, the charts are drawn by Chart.js,
the channel filter narrows them, a new conversation shows up by itself (live feed), and an agent is
refused."""

from __future__ import annotations

import json
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
from tests.web.test_drafts_page import browser_page
from tests.web.test_widget import CHROMIUM
from voicebot.api.dashboard import CHART_JS
from voicebot.app import create_app
from voicebot.auth.roles import Role
from voicebot.config import DEMO_TENANT, Settings
from voicebot.knowledge.embeddings import Embedder
from voicebot.runtime import Runtime

SCREENSHOT = Path("/tmp/dashboard.png")

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


async def chat(client: httpx.AsyncClient, *messages: str) -> str:
    cid = str((await client.post("/v1/conversations", json={"language": "en"})).json()["id"])
    for text in messages:
        await client.post(f"/v1/conversations/{cid}/messages", json={"text": text})
    return cid


@pytest_asyncio.fixture(loop_scope="session")
async def server(real_embedder: Embedder, runtime_data_dir: Path, tmp_path: Path) -> AsyncIterator[Server]:
    settings = Settings(
        tenant_config=DEMO_TENANT,
        data_dir=runtime_data_dir,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'dashboard.db'}",
    )
    app = create_app(settings, Runtime(settings, embedder=real_embedder))
    async with serving(app, lifespan="on") as url:
        runtime: Runtime = app.state.runtime
        async with httpx.AsyncClient(base_url=url, headers=await token_headers(runtime)) as client:
            rated = await chat(client, "what are your opening hours on Monday?", "thanks, bye")
            await client.post(f"/v1/conversations/{rated}/csat", json={"score": 5})
            await chat(client, "I want to talk to a human")
            await chat(client, "where is my order A1234?")
            # conversations of earlier days (a call among them), for the series and the rollup
            repo = runtime.conversations
            for days, channel in ((2, "voice"), (3, "chat"), (3, "voice")):
                at = runtime.clock() - timedelta(days=days)
                conv = await repo.create(tenant_id=runtime.tenant.id, channel=channel, now=at)
                await repo.record_exchange(
                    conv.id, customer_text="hello", bot_text="Hi!", action="end", intent="greeting",
                    confidence=0.9, citations=[], reason=None, state={}, language="en", customer_id=None,
                    latency_ms=20.0 + days, now=at + timedelta(minutes=2),
                )  # fmt: skip
                await repo.set_csat(conv.id, days, at + timedelta(minutes=3))
            yield Server(url, runtime, client)


async def shown_range(page: Any) -> dict[str, str]:
    since, until = (await page.locator("body").get_attribute("data-loaded")).split("|")
    return {"since": since, "until": until}


async def tile(page: Any, key: str) -> tuple[Any, str]:
    value = page.get_by_test_id(f"db-{key}-value")
    return json.loads(await value.get_attribute("data-value")), await value.inner_text()


async def assert_tiles_match(page: Any, board: dict[str, Any]) -> None:
    expected = {
        "conversations": board["conversations"],
        "first-response": board["first_response_ms"]["p50"],
        "csat": board["csat"]["average"],
        "deflection": board["deflection_rate"],
        "handoff": board["handoff_rate"],
        "fcr": board["first_contact_resolution"]["rate"],
        "bot-handle": board["handle_ms"]["bot_average"],
        "human-handle": board["handle_ms"]["human_average"],
        "voice-latency": board["voice_latency_ms"]["p50"],
    }
    for key, value in expected.items():
        shown, _text = await tile(page, key)
        assert shown == value, key
    assert (await tile(page, "conversations"))[1] == f"{board['conversations']:,}"
    handoff = board["handoff_rate"]
    assert (await tile(page, "handoff"))[1] == ("—" if handoff is None else f"{handoff * 100:.1f} %")
    csat = board["csat"]["average"]
    assert (await tile(page, "csat"))[1] == ("—" if csat is None else f"{csat:.2f} / 5")


@pytest.mark.skipif(
    not (CHART_JS / "chart.umd.js").is_file(), reason="Chart.js is not installed (scripts/setup)"
)
async def test_the_tiles_show_what_the_api_reports(server: Server) -> None:
    from playwright.async_api import expect

    errors: list[str] = []
    async with browser_page(errors, height=1800) as page:
        await browser_login(page, server.url, server.runtime, Role.SUPERVISOR, next_path="/dashboard")
        await expect(page.locator("body[data-loaded]")).to_have_count(1)
        board = (await server.client.get("/v1/dashboard", params=await shown_range(page))).json()
        assert board["conversations"] == 6 and board["handoffs"] == 1 and board["csat"]["responses"] == 4
        await assert_tiles_match(page, board)
        await expect(page.get_by_test_id("db-nochart")).to_be_hidden()
        drawn = await page.evaluate(
            "() => [...document.querySelectorAll('canvas')].map(c => !!window.Chart.getChart(c))"
        )
        assert drawn == [True] * 5
        reasons = await page.evaluate(
            "() => window.Chart.getChart(document.querySelector('[data-testid=db-chart-reasons]')).data"
        )
        assert reasons["labels"] == ["human requested"] and reasons["datasets"][0]["data"] == [1]
        await expect(page.get_by_test_id("db-intents").locator("tr[data-key=greeting]")).to_have_count(1)
        await page.screenshot(path=str(SCREENSHOT), full_page=True)

        # only the calls
        before = await page.locator("body").get_attribute("data-loaded")
        await page.get_by_test_id("db-channel").select_option("voice")
        await expect(page.locator("body")).not_to_have_attribute("data-loaded", before or "")
        params = {**await shown_range(page), "channel": "voice"}
        voice = (await server.client.get("/v1/dashboard", params=params)).json()
        assert voice["conversations"] == 2
        await assert_tiles_match(page, voice)

        # a new chat arrives: the page reloads by itself (live feed), the count goes up
        await page.get_by_test_id("db-channel").select_option("")
        await expect(page.get_by_test_id("db-conversations-value")).to_have_text("6")
        await chat(server.client, "do you offer a warranty on the laptop?")
        await expect(page.get_by_test_id("db-conversations-value")).to_have_text("7")
    assert errors == []


async def test_an_agent_is_refused(server: Server) -> None:
    from playwright.async_api import expect

    errors: list[str] = []
    async with browser_page(errors, height=1800) as page:
        await browser_login(page, server.url, server.runtime, Role.AGENT, next_path="/dashboard")
        await expect(page.get_by_test_id("ui-refused")).to_contain_text("may not open this page")
        await expect(page.get_by_role("link", name="Dashboard")).to_have_count(0)
        refused = await page.evaluate("() => fetch('/v1/dashboard').then(r => r.status)")
        assert refused == 403
    assert errors == []
