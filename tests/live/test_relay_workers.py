"""Agent and whisper legs from another worker process: the call runs in one app (Runtime A), the
browsers' requests are served by a second app (Runtime B) on the same database and the same live-bus
directory, as two workers of `voicebot serve` are. B terminates the WebRTC peers and relays their
audio over the bus to A. Tones tell who hears whom: caller 440 Hz, agent 600 Hz, whisperer 800 Hz,
the bot's speech (the handoff summary) 300 Hz."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import numpy as np
import pytest
import pytest_asyncio
from aiortc import RTCSessionDescription

from tests.auth_helpers import token_headers
from tests.conftest import SESSION_LOOP, serving
from tests.fakes.speech import FakeSpeech
from tests.inbound.conftest import FAST_VOICE
from tests.live.media import held_call, power_at, wait_for
from tests.live.test_agent_bridge import AGENT_HZ, BOT_HZ, CALLER_HZ, WHISPER_HZ, BrowserLeg
from voicebot.app import create_app
from voicebot.auth.roles import Role
from voicebot.config import DEMO_TENANT, Settings, VoiceConfig, load_tenant
from voicebot.dialogue.types import Channel
from voicebot.knowledge.embeddings import Embedder
from voicebot.live.calls import call_directory
from voicebot.pipeline.agent_bridge import BridgeState
from voicebot.pipeline.agent_leg import browser_relays
from voicebot.runtime import Runtime

pytestmark = [SESSION_LOOP, pytest.mark.slow]

Worker = tuple[str, Runtime]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def two_workers(
    real_embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Worker, Worker]]:
    """(A: runs the calls, B: serves the browsers), one database, one bus directory."""
    tmp_path = tmp_path_factory.mktemp("relay")
    folder = tmp_path / f"db-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    settings = Settings(
        tenant_config=DEMO_TENANT,
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{folder / 'voicebot.db'}",
    )
    async with AsyncExitStack() as stack:
        workers = []
        for _ in range(2):
            tenant = load_tenant(DEMO_TENANT)
            tenant.voice = VoiceConfig(**{**FAST_VOICE, "transfer": {"default": "desk"}})
            speech = FakeSpeech(["I want to talk to a human"] * 4, max_secs=1.0)
            runtime = Runtime(settings, tenant=tenant, embedder=real_embedder, speech=speech)
            await runtime.start()
            stack.push_async_callback(runtime.stop)
            url = await stack.enter_async_context(serving(create_app(settings, runtime)))
            workers.append((url, runtime))
        yield workers[0], workers[1]


async def test_an_agent_on_another_worker_takes_the_call_and_a_supervisor_whispers(two_workers: Any) -> None:
    (url_a, runtime_a), (url_b, runtime_b) = two_workers
    agent_headers = await token_headers(runtime_a, Role.AGENT, username="agent-bo")
    supervisor_headers = await token_headers(runtime_a, Role.SUPERVISOR, username="sup-su")
    caller, call, handoff_id = await held_call(url_a, runtime_a)
    assert call_directory(runtime_b).get(call.conversation_id) is None  # B does not run the call
    bridge = call.bridge
    agent, agent_offer = await BrowserLeg.offer(AGENT_HZ)
    agent.follow(lambda: bridge.state)
    whisperer, whisper_offer = await BrowserLeg.offer(WHISPER_HZ, send_only=True)
    whisper_path = f"/v1/live/calls/{call.conversation_id}/whisper"
    path = f"/v1/desk/handoffs/{handoff_id}/call"
    try:
        async with httpx.AsyncClient(base_url=url_b) as client:
            # the call's worker refuses a whisper with nobody to whisper to, with its reason
            early = await client.post(
                whisper_path, json={"sdp": whisper_offer, "type": "offer"}, headers=supervisor_headers
            )
            assert early.status_code == 409 and "no agent" in early.json()["error"]["message"]
            assert (await runtime_a.handoffs.get(handoff_id)).taken_by is None

            answer = await client.post(
                path, json={"sdp": agent_offer, "type": "offer"}, headers=agent_headers
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["conversation_id"] == call.conversation_id
            assert (await runtime_a.handoffs.get(handoff_id)).taken_by == "agent-bo"
            assert len(browser_relays(runtime_b.live)) == 1  # B terminates the agent's peer
            await agent.pc.setRemoteDescription(RTCSessionDescription(answer.json()["sdp"], "answer"))
            again = await client.post(path, json={"sdp": agent_offer, "type": "offer"}, headers=agent_headers)
            assert again.status_code == 409 and "already on this call" in again.json()["error"]["message"]
            assert len(browser_relays(runtime_b.live)) == 1  # the refused leg was not kept

            await wait_for(lambda: bridge.state is BridgeState.BRIDGED)
            caller.hz = CALLER_HZ
            bridged_at = len(caller.peer.received)
            await wait_for(lambda: len(agent.audio("bridged")) > 48000 * 2)

            whispered = await client.post(
                whisper_path, json={"sdp": whisper_offer, "type": "offer"}, headers=supervisor_headers
            )
            assert whispered.status_code == 200, whispered.text
            await whisperer.pc.setRemoteDescription(RTCSessionDescription(whispered.json()["sdp"], "answer"))
            await wait_for(lambda: whisperer.pc.connectionState == "connected")
            await asyncio.sleep(0.5)  # the whisper's first frames cross the bus
            heard_before_whisper = len(agent.heard)
            caller_before_whisper = len(caller.peer.received)
            await asyncio.sleep(1.5)  # let the whisper play for a while
            during_whisper = np.concatenate([s for _, s in agent.heard[heard_before_whisper:]])
            caller_during_whisper = caller.heard_since(caller_before_whisper)
            assert len(browser_relays(runtime_b.live)) == 2

            # the agent hangs up (its DELETE also served by B): both sides of the relay end
            hung_up = await client.delete(path, headers=agent_headers)
            assert hung_up.status_code == 204
            await asyncio.wait_for(caller.peer.closed.wait(), 10)
            await wait_for(lambda: call_directory(runtime_a).get(call.conversation_id) is None)
            await wait_for(lambda: not browser_relays(runtime_b.live))  # agent's and whisperer's legs
            gone = await client.delete(path, headers=agent_headers)
            assert gone.status_code == 409  # the call has ended
    finally:
        await caller.stop()
        await agent.close()
        await whisperer.close()

    briefing = agent.audio("briefing")
    assert len(briefing) > 4800 and power_at(briefing, BOT_HZ, 48000) > 0.3
    assert power_at(agent.audio("bridged"), CALLER_HZ, 48000) > 0.2
    assert power_at(caller.heard_since(bridged_at), AGENT_HZ, 8000) > 0.2
    assert power_at(during_whisper, WHISPER_HZ, 48000) > 0.1
    assert power_at(caller_during_whisper, WHISPER_HZ, 8000) < 0.01


async def test_the_calls_end_tears_down_the_relayed_agent_leg(two_workers: Any) -> None:
    (url_a, runtime_a), (url_b, runtime_b) = two_workers
    agent_headers = await token_headers(runtime_a, Role.AGENT, username="agent-cy")
    caller, call, handoff_id = await held_call(url_a, runtime_a)
    agent, agent_offer = await BrowserLeg.offer(AGENT_HZ)
    try:
        async with httpx.AsyncClient(base_url=url_b) as client:
            answer = await client.post(
                f"/v1/desk/handoffs/{handoff_id}/call",
                json={"sdp": agent_offer, "type": "offer"},
                headers=agent_headers,
            )
            assert answer.status_code == 200, answer.text
        await agent.pc.setRemoteDescription(RTCSessionDescription(answer.json()["sdp"], "answer"))
        await wait_for(lambda: call.bridge.state is BridgeState.BRIDGED)
        (relay,) = browser_relays(runtime_b.live)
        await caller.stop()
        await caller.peer.close()  # the caller hangs up
        await wait_for(lambda: call_directory(runtime_a).get(call.conversation_id) is None)
        await asyncio.wait_for(relay.ended.wait(), 10)
        assert relay.link.reason == "the call closed the leg"
        await wait_for(lambda: not browser_relays(runtime_b.live))
        await wait_for(lambda: agent.pc.connectionState in ("closed", "failed"), timeout=30)
    finally:
        with contextlib.suppress(Exception):
            await caller.stop()
        await agent.close()


async def test_a_call_in_no_worker_is_refused_with_the_reason(two_workers: Any) -> None:
    (_, runtime_a), (url_b, runtime_b) = two_workers
    supervisor = await token_headers(runtime_a, Role.SUPERVISOR)
    lost = await runtime_a.chat.start(channel=Channel.VOICE, caller="+38640111333")  # no pipeline runs it
    whisperer, offer = await BrowserLeg.offer(WHISPER_HZ, send_only=True)
    try:
        async with httpx.AsyncClient(base_url=url_b) as client:
            far = await client.post(
                f"/v1/live/calls/{lost.conversation.id}/whisper",
                json={"sdp": offer, "type": "offer"},
                headers=supervisor,
            )
    finally:
        await whisperer.close()
    assert far.status_code == 409
    assert "no running server process" in far.json()["error"]["message"]
    assert not browser_relays(runtime_b.live)


async def test_an_agent_whose_take_fails_after_the_call_accepted_leaves_the_call_waiting(
    two_workers: Any,
) -> None:
    (url_a, runtime_a), (url_b, runtime_b) = two_workers
    agent_headers = await token_headers(runtime_a, Role.AGENT, username="agent-di")
    caller, call, handoff_id = await held_call(url_a, runtime_a)
    # another agent took the handoff at the desk meanwhile (e.g. in another browser tab's worker)
    await runtime_a.handoffs.take(handoff_id, "agent-ed", runtime_a.clock())
    states: list[BridgeState] = []
    transition = call.bridge._transition

    def recording_transition(new: BridgeState) -> None:
        states.append(new)
        transition(new)

    call.bridge._transition = recording_transition  # type: ignore[method-assign]
    agent, agent_offer = await BrowserLeg.offer(AGENT_HZ)
    try:
        async with httpx.AsyncClient(base_url=url_b) as client:
            answer = await client.post(
                f"/v1/desk/handoffs/{handoff_id}/call",
                json={"sdp": agent_offer, "type": "offer"},
                headers=agent_headers,
            )
        assert answer.status_code == 409, answer.text
        assert (await runtime_a.handoffs.get(handoff_id)).taken_by == "agent-ed"
        assert not browser_relays(runtime_b.live)
        # the call's worker had accepted the leg; its end puts the call back to waiting
        await wait_for(lambda: states == [BridgeState.BRIEFING, BridgeState.WAITING])
        assert call.bridge.agent is None
        assert call.bridge.hub is not None and call.bridge.hub.legs == 0
    finally:
        await caller.stop()
        await caller.peer.close()
        await agent.close()
    await wait_for(lambda: call_directory(runtime_a).get(call.conversation_id) is None)
