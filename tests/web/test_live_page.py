"""The supervisor's live board in Debian's chromium (Playwright), against the real app.

A caller phones in from the /call page (a real WebRTC call over aiortc, the fake microphone
playing a tone; speech is the FakeSpeech seam: scripted STT, tone TTS). A supervisor logs in, sees
the call on /live, presses Listen and receives the call's mixed audio over the listen-in socket: the
page measures it (RMS of the PCM it played). An agent may not open the board.
"""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from tests.auth_helpers import browser_login
from tests.conftest import SESSION_LOOP, serving
from tests.fakes.speech import FakeSpeech
from tests.web.test_call_page import LOOPBACK_ONLY
from tests.web.test_widget import CHROMIUM, CHROMIUM_ARGS
from voicebot.app import create_app
from voicebot.auth.roles import Role
from voicebot.config import DEMO_TENANT, Settings
from voicebot.inbound.webrtc import WebRTCCalls
from voicebot.knowledge.embeddings import Embedder
from voicebot.runtime import Runtime

TIMEOUT_MS = 30_000  # hang guards only
SCREENSHOT = Path("/tmp/live-page.png")
pytestmark = [
    SESSION_LOOP,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"Debian's chromium is not installed at {CHROMIUM}"),
]


@dataclass
class Server:
    url: str
    calls: WebRTCCalls
    runtime: Runtime


@pytest_asyncio.fixture(loop_scope="session")
async def server(real_embedder: Embedder, runtime_data_dir: Path, tmp_path: Path) -> AsyncIterator[Server]:
    settings = Settings(
        tenant_config=DEMO_TENANT,
        data_dir=runtime_data_dir,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'live.db'}",
    )
    runtime = Runtime(settings, embedder=real_embedder, speech=FakeSpeech(max_secs=2.0))
    app = create_app(settings, runtime)
    async with serving(app, lifespan="on") as url:
        yield Server(url, app.state.webrtc_calls, runtime)
    assert len(app.state.webrtc_calls) == 0


def tone_wav(path: Path, hz: float = 520.0, secs: float = 10.0, rate: int = 48000) -> Path:
    t = np.arange(int(secs * rate)) / rate
    audio = (np.sin(2 * np.pi * hz * t) * 0.4 * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(audio.tobytes())
    return path


async def test_a_supervisor_listens_to_a_live_call(server: Server, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=TIMEOUT_MS)
    args = [
        *CHROMIUM_ARGS,
        *LOOPBACK_ONLY,
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={tone_wav(tmp_path / 'caller.wav')}",
    ]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=args, headless=True)
        try:
            errors: list[str] = []
            supervisor = await (await browser.new_context()).new_page()
            supervisor.on("pageerror", lambda exc: errors.append(str(exc)))
            await browser_login(supervisor, server.url, server.runtime, Role.SUPERVISOR, next_path="/live")
            await expect(supervisor.get_by_test_id("lv-sync")).to_contain_text("0 active")

            caller = await (await browser.new_context()).new_page()
            await caller.goto(server.url + "/call")
            await caller.get_by_role("button", name="Call").click()
            await caller.wait_for_function("window.vbCall.state === 'connected'", timeout=TIMEOUT_MS)
            conversation_id = await caller.evaluate("window.vbCall.conversationId")

            # the call arrives on the open board (conversation.started), with the bot's greeting
            card = supervisor.locator(f"[data-testid=lv-card][data-conversation='{conversation_id}']")
            await expect(card).to_be_visible()
            await expect(card.get_by_test_id("lv-turns")).to_contain_text("bot", ignore_case=True)
            await card.get_by_role("button", name="Listen").click()
            await expect(supervisor.get_by_test_id("lv-listen-state")).to_have_text("live")

            # the page receives the call's mixed audio and it is not silence
            await supervisor.wait_for_function(
                "window.listen.stats.frames > 100 && window.listen.stats.rms > 0.05", timeout=TIMEOUT_MS
            )
            stats = await supervisor.evaluate("window.listen.stats")
            assert stats["conversationId"] == conversation_id
            await supervisor.screenshot(path=str(SCREENSHOT))

            # whisper is refused where no agent is on the call, and the page says why
            await supervisor.get_by_test_id("lv-whisper").click()
            await expect(supervisor.get_by_test_id("lv-listen-error")).to_contain_text("no agent")

            # a freshly opened board lists the call from GET /v1/live/active
            fresh = await supervisor.context.new_page()
            await fresh.goto(server.url + "/live")
            fresh_card = fresh.locator(f"[data-testid=lv-card][data-conversation='{conversation_id}']")
            await expect(fresh_card).to_be_visible()
            await fresh.close()

            # the caller hangs up: the card and the listener both learn the call has ended
            await caller.get_by_role("button", name="Hang up").click()
            await expect(card.get_by_test_id("lv-status")).to_have_text("ended")
            await supervisor.wait_for_function("window.listen.stats.state === 'ended'", timeout=TIMEOUT_MS)
            for _ in range(100):
                if len(server.calls) == 0:
                    break
                await asyncio.sleep(0.05)
            assert errors == []
        finally:
            await browser.close()


async def test_an_agent_may_not_open_the_live_board(server: Server) -> None:
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=TIMEOUT_MS)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = await browser.new_page()
            await browser_login(page, server.url, server.runtime, Role.AGENT, next_path="/live")
            await expect(page.get_by_test_id("ui-refused")).to_contain_text("may not open this page")
            closed = await page.evaluate(
                """() => new Promise((resolve) => {
                    const ws = new WebSocket(`ws://${location.host}/v1/live/calls/nope/audio`);
                    ws.onclose = (event) => resolve(event.code);
                })"""
            )
            assert closed in (4403, 1006)  # refused before the handshake completes
        finally:
            await browser.close()
