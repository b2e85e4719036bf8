"""The /call page in Debian's chromium (Playwright): a real WebRTC call to the real app.

The fake microphone plays a question synthesized with the Piper voice; the server runs the real
call pipeline (Silero VAD, shared Whisper, dialogue, Piper) over pipecat's SmallWebRTC (aiortc).
ICE stays on loopback: Chromium with ``--webrtc-ip-handling-policy=default_public_interface_only``
offers no interface addresses (its any-address sockets reach 127.0.0.1 as peer-reflexive
candidates), and the server gathers, offers and accepts only 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import pytest_asyncio

from tests.conftest import SESSION_LOOP, serving
from tests.web.test_widget import CHROMIUM, CHROMIUM_ARGS
from voicebot.app import create_app
from voicebot.config import DEMO_TENANT, Settings, default_models_dir
from voicebot.inbound.webrtc import WebRTCCalls
from voicebot.knowledge.embeddings import Embedder
from voicebot.pipeline.webrtc_transport import sdp_candidate_addresses
from voicebot.runtime import Runtime

QUESTION = "What is your returns policy?"
WAV_RATE = 48000
TIMEOUT_MS = 30_000  # hang guards only
SCREENSHOT = Path("/tmp/call-page.png")
LOOPBACK_ONLY = ["--webrtc-ip-handling-policy=default_public_interface_only"]

MODELS = default_models_dir()
pytestmark = [
    SESSION_LOOP,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"Debian's chromium is not installed at {CHROMIUM}"),
    pytest.mark.skipif(
        not (MODELS / "piper-joe" / "en_US-joe-medium.onnx").exists()
        or not (MODELS / "whisper-base" / "model.bin").exists(),
        reason=f"the speech models (piper-joe, whisper-base) are not installed in {MODELS}: "
        "run `voicebot models install`",
    ),
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
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'call.db'}",
    )
    runtime = Runtime(settings, embedder=real_embedder)
    app = create_app(settings, runtime)
    async with serving(app, lifespan="on") as url:
        if runtime.speech is None:
            pytest.skip("the speech models did not load (see the log)")
        yield Server(url, app.state.webrtc_calls, runtime)
    assert len(app.state.webrtc_calls) == 0


def question_wav(runtime: Runtime, path: Path) -> Path:
    """The question in the Piper voice, 2 s of silence before and 6 s after (Chromium loops it)."""
    speech = np.frombuffer(b"".join(runtime.speech.synthesize(QUESTION, WAV_RATE)), dtype=np.int16)
    silence = np.zeros(WAV_RATE * 2, dtype=np.int16)
    audio = np.concatenate([silence, speech, silence, silence, silence])
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(WAV_RATE)
        wav.writeframes(audio.tobytes())
    return path


async def customer_turns(client: httpx.AsyncClient, conversation_id: str) -> list[str]:
    conversation = (await client.get(f"/v1/conversations/{conversation_id}")).json()
    return [t["text"] for t in conversation.get("turns", []) if t["role"] == "customer"]


async def test_call_page_talks_to_the_bot(server: Server, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=TIMEOUT_MS)
    wav = question_wav(server.runtime, tmp_path / "question.wav")
    args = [
        *CHROMIUM_ARGS,
        *LOOPBACK_ONLY,
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
    ]
    async with async_playwright() as pw, httpx.AsyncClient(base_url=server.url) as client:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=args, headless=True)
        try:
            page = await browser.new_page(viewport={"width": 900, "height": 760})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(server.url + "/call")
            await expect(page.get_by_role("button", name="Hang up")).to_be_disabled()
            await page.get_by_role("button", name="Call").click()
            await page.wait_for_function("window.vbCall.state === 'connected'", timeout=TIMEOUT_MS)
            state: dict[str, Any] = await page.evaluate("window.vbCall")

            # ICE on loopback only: every candidate either side sent, and the pair in use
            offered = sdp_candidate_addresses(state["offerSdp"])
            answered = sdp_candidate_addresses(state["answerSdp"])
            assert answered and set(offered + answered) == {"127.0.0.1"}, (offered, answered)
            peer = server.calls.peer(state["pcId"])
            assert peer is not None and peer.remote_addresses() == {"127.0.0.1"}

            # the bot's audio arrives: a live track whose samples are not silent
            await page.wait_for_function("window.vbCall.loudFrames > 10", timeout=TIMEOUT_MS)
            assert await page.evaluate("window.vbCall.trackState") == "live"

            # the STT heard the question: the stored customer turn, then the page's transcript
            said: list[str] = []
            for _ in range(240):
                said = await customer_turns(client, state["conversationId"])
                if said:
                    break
                await asyncio.sleep(0.25)
            assert said, "no customer turn was stored"
            assert "return" in said[0].lower() and "policy" in said[0].lower(), said
            customer = page.locator("[data-role=customer]").first
            await expect(customer).to_contain_text("return", ignore_case=True)
            await expect(page.locator("[data-role=bot]").first).to_be_visible()
            await page.screenshot(path=str(SCREENSHOT))

            await page.get_by_role("button", name="Hang up").click()
            await expect(page.get_by_test_id("vc-status")).to_have_text("Call ended")
            await expect(page.get_by_role("button", name="Call")).to_be_enabled()
            for _ in range(100):
                if len(server.calls) == 0:
                    break
                await asyncio.sleep(0.05)
            assert len(server.calls) == 0
            assert errors == []
        finally:
            await browser.close()
