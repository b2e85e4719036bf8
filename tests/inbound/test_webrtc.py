"""POST /v1/webrtc/offer with an aiortc client peer, against the real app on 127.0.0.1.

The Runtime is real (demo tenant, SQLite, real embeddings); speech is the FakeSpeech of
tests/fakes (scripted STT, tone TTS), so these tests need no speech models. Both peers keep ICE on
loopback: the server by its IcePolicy, the client by the same confinement.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack

from tests.conftest import SESSION_LOOP, serving
from tests.fakes.speech import FakeSpeech
from voicebot.app import create_app
from voicebot.config import DEMO_TENANT, Settings
from voicebot.inbound.webrtc import WebRTCCalls
from voicebot.knowledge.embeddings import Embedder
from voicebot.pipeline.webrtc_transport import IcePolicy, confine_peer_connection, sdp_candidate_addresses
from voicebot.runtime import Runtime

pytestmark = [SESSION_LOOP, pytest.mark.slow]

LOOPBACK = IcePolicy()


@dataclass
class Server:
    url: str
    calls: WebRTCCalls
    speech: FakeSpeech


@pytest_asyncio.fixture(loop_scope="session")
async def server(real_embedder: Embedder, runtime_data_dir: Path, tmp_path: Path) -> AsyncIterator[Server]:
    settings = Settings(
        tenant_config=DEMO_TENANT,
        data_dir=runtime_data_dir,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'webrtc.db'}",
    )
    speech = FakeSpeech(["What is your returns policy?"])
    app = create_app(settings, Runtime(settings, embedder=real_embedder, speech=speech))
    async with serving(app, lifespan="on") as url:
        yield Server(url, app.state.webrtc_calls, speech)
    assert len(app.state.webrtc_calls) == 0  # the lifespan ended every call


async def client_offer() -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(AudioStreamTrack())  # 20 ms frames of silence
    confine_peer_connection(pc, LOOPBACK)
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


async def wait_for(condition: object, timeout: float = 20.0) -> None:
    async def poll() -> None:
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def test_offer_answers_on_loopback_and_runs_the_call(server: Server) -> None:
    pc, offer = await client_offer()
    received = []
    try:
        assert sdp_candidate_addresses(offer) and set(sdp_candidate_addresses(offer)) == {"127.0.0.1"}
        async with httpx.AsyncClient(base_url=server.url) as client:
            response = await client.post("/v1/webrtc/offer", json={"sdp": offer, "type": "offer"})
            assert response.status_code == 200, response.text
            answer = response.json()
            assert answer["type"] == "answer" and answer["pc_id"] and answer["conversation_id"]
            assert set(sdp_candidate_addresses(answer["sdp"])) == {"127.0.0.1"}
            assert "stun" not in answer["sdp"].lower().replace("ice-", "")

            @pc.on("track")
            def on_track(track: object) -> None:
                received.append(track)

            await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
            await wait_for(lambda: pc.connectionState == "connected")
            agent = pc.getTransceivers()[0].sender.transport.transport._connection
            assert {p.remote_addr[0] for p in agent._nominated.values()} == {"127.0.0.1"}
            assert len(server.calls) == 1

            # the bot greets: its tone arrives as non-silent Opus audio
            await wait_for(lambda: bool(received))
            loud = 0
            for _ in range(200):
                frame = await asyncio.wait_for(received[0].recv(), 5)  # type: ignore[attr-defined]
                if max(abs(int(x)) for x in frame.to_ndarray().ravel()[::8]) > 1000:
                    loud += 1
                    if loud >= 5:
                        break
            assert loud >= 5, "no bot audio arrived"
            await wait_for(lambda: server.speech.spoken != [])

            conversation = (await client.get(f"/v1/conversations/{answer['conversation_id']}")).json()
            assert conversation["channel"] == "voice"

            call_url = "/v1/webrtc/calls/" + quote(answer["pc_id"], safe="")
            hung_up = await client.delete(call_url)
            assert hung_up.status_code == 204
            assert len(server.calls) == 0
            assert (await client.delete(call_url)).status_code == 404
    finally:
        await pc.close()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", "type": "offer"},
            "SDP offer could not be used",
        ),
        ({"sdp": "hello", "type": "offer"}, "no audio"),
        ({"sdp": "v=0\r\n", "type": "answer"}, "type"),
        ({"type": "offer"}, "sdp"),
    ],
)
async def test_bad_offers_are_refused_clearly(server: Server, body: dict[str, str], expected: str) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.post("/v1/webrtc/offer", json=body)
    assert response.status_code == 422, response.text
    assert expected in response.json()["error"]["message"]
    assert len(server.calls) == 0


async def test_full_is_503_and_shutdown_ends_live_calls(server: Server) -> None:
    server.calls.max_calls = 1
    first, first_offer = await client_offer()
    second, second_offer = await client_offer()
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            ok = await client.post("/v1/webrtc/offer", json={"sdp": first_offer, "type": "offer"})
            assert ok.status_code == 200, ok.text
            full = await client.post("/v1/webrtc/offer", json={"sdp": second_offer, "type": "offer"})
            assert full.status_code == 503
            error = full.json()["error"]
            assert "busy" in error["message"] and error["retryable"] is True
            await first.setRemoteDescription(RTCSessionDescription(ok.json()["sdp"], "answer"))
            await wait_for(lambda: first.connectionState == "connected")
        assert len(server.calls) == 1  # left live: the fixture's shutdown must end it
    finally:
        await first.close()
        await second.close()
