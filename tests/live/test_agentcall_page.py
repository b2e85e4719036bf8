"""agentcall.js in Debian's chromium (Playwright): an agent logged in to the console accepts a held
phone call in the browser. The caller is a Twilio Media Streams peer sending a 440 Hz tone; the
agent's fake microphone plays a 600 Hz tone; the bot's summary is FakeSpeech's 300 Hz tone."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.auth_helpers import browser_login
from tests.conftest import SESSION_LOOP
from tests.live.media import held_call, power_at, wait_for
from tests.web.test_call_page import LOOPBACK_ONLY
from tests.web.test_widget import CHROMIUM, CHROMIUM_ARGS
from voicebot.auth.roles import Role
from voicebot.pipeline.agent_bridge import BridgeState

TIMEOUT_MS = 30_000  # hang guards only
CALLER_HZ, AGENT_HZ = 440.0, 600.0
pytestmark = [
    SESSION_LOOP,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"Debian's chromium is not installed at {CHROMIUM}"),
]

# samples what the <audio> element plays for `ms` and returns the loudest 50 ms RMS (0..1)
MEASURE = """async (ms) => {
  const audio = document.getElementById("agent-audio");
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  context.createMediaStreamSource(audio.srcObject).connect(analyser);
  const data = new Float32Array(analyser.fftSize);
  let loudest = 0;
  for (let t = 0; t < ms; t += 50) {
    await new Promise((r) => setTimeout(r, 50));
    analyser.getFloatTimeDomainData(data);
    loudest = Math.max(loudest, Math.sqrt(data.reduce((s, x) => s + x * x, 0) / data.length));
  }
  await context.close();
  return loudest;
}"""


def tone_wav(path: Path, hz: float, secs: float = 20.0, rate: int = 48000) -> Path:
    t = np.arange(int(secs * rate)) / rate
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes((np.sin(2 * np.pi * hz * t) * 0.4 * 32767).astype(np.int16).tobytes())
    return path


async def test_an_agent_accepts_a_call_in_the_browser(desk_server: Any, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    url, runtime, _ = desk_server
    args = [
        *CHROMIUM_ARGS,
        *LOOPBACK_ONLY,
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={tone_wav(tmp_path / 'agent.wav', AGENT_HZ)}",
    ]
    caller, call, handoff_id = await held_call(url, runtime)
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=args, headless=True)
            try:
                page = await browser.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                username = await browser_login(page, url, runtime, Role.AGENT, next_path="/live")
                await page.add_script_tag(url="/static/agentcall.js")
                await page.evaluate(
                    "() => { const a = document.createElement('audio'); a.id = 'agent-audio';"
                    " document.body.appendChild(a); }"
                )
                accepted = await page.evaluate(
                    "(id) => window.agentCall.accept(id, document.getElementById('agent-audio'))",
                    handoff_id,
                )
                assert accepted == {"conversationId": call.conversation_id}
                assert (await runtime.handoffs.get(handoff_id)).taken_by == username
                # the summary plays to the agent, then the caller's voice does
                loudest = await page.evaluate(MEASURE, 1500)
                assert loudest > 0.05, loudest
                await wait_for(lambda: call.bridge.state is BridgeState.BRIDGED)
                caller.hz = CALLER_HZ
                before = len(caller.peer.received)
                assert await page.evaluate(MEASURE, 1500) > 0.05
                # and the caller hears the agent's microphone
                await wait_for(lambda: len(caller.heard_since(before)) > 8000)
                assert power_at(caller.heard_since(before), AGENT_HZ, 8000) > 0.2

                # a second accept is refused with a reason the page can show
                refused = await page.evaluate(
                    "(id) => window.agentCall.accept(id, null).then(() => 'accepted', (e) => e.message)",
                    handoff_id,
                )
                assert "already on a call" in refused

                await page.evaluate("() => window.agentCall.hangUp()")
                assert await page.evaluate("window.agentCall.state") == "ended"
                await asyncio.wait_for(caller.peer.closed.wait(), 10)
                assert errors == []
            finally:
                await browser.close()
    finally:
        await caller.stop()
