"""Handoff transfer over the Twilio REST API (Calls update with TwiML <Dial>), through the Media
Streams WebSocket with fake STT/TTS; the REST client is an httpx.MockTransport injected as
``app.state.carrier_http``."""

from __future__ import annotations

import asyncio
import base64
import time
from urllib.parse import parse_qs

import httpx
import pytest

from tests.conftest import SESSION_LOOP
from tests.fakes.speech import FakeSpeech
from tests.inbound.twilio_client import TwilioPeer, utterance
from voicebot.inbound.twilio import twilio_signature

pytestmark = SESSION_LOOP

ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "test-auth-token"
CALL_SID = "CA0000000000000000000000000000beef"
COMPLAINTS_LINE = "+38640555111"  # by intent
HUMAN_LINE = "+38640555666"  # by handoff reason
DEFAULT_LINE = "+38640999000"
TRANSFER = {"complaint": COMPLAINTS_LINE, "human_requested": HUMAN_LINE, "default": DEFAULT_LINE}


class CarrierApi:
    """Twilio's REST API as an httpx.MockTransport: records each request and when it came."""

    def __init__(self) -> None:
        self.requests: list[tuple[float, httpx.Request]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((time.monotonic(), request))
        return httpx.Response(200, json={"sid": CALL_SID, "status": "in-progress"})

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handler))


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/v1/media/twilio"


async def wait_for(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def ask_for_a_human(peer: TwilioPeer, speech: FakeSpeech) -> float:
    """Greeting, then the caller's turn; returns when the turn's audio was sent."""
    await peer.wait_media(5)
    await peer.wait_quiet()
    await peer.send_audio(utterance())  # the audio does not matter: FakeSTT follows its script
    sent = time.monotonic()
    await peer.send_silence(0.5)
    await wait_for(lambda: len(speech.spoken) >= 2)
    return sent


@pytest.mark.parametrize(
    ("said", "line"),
    [
        ("I'm very unhappy with your service", COMPLAINTS_LINE),  # intent complaint
        ("I want to talk to a human", HUMAN_LINE),  # no intent; reason human_requested
    ],
)
async def test_handoff_redirects_the_call_after_the_message(
    voice_server, monkeypatch: pytest.MonkeyPatch, said: str, line: str
) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    speech = FakeSpeech([said])
    url, runtime, app = await voice_server(speech=speech, transfer=TRANSFER)
    api = CarrierApi()
    app.state.carrier_http = api.client()
    try:
        signature = twilio_signature(AUTH_TOKEN, ws_url(url), {})
        peer = await TwilioPeer.connect(
            ws_url(url), call_sid=CALL_SID, additional_headers={"X-Twilio-Signature": signature}
        )
        sent = await ask_for_a_human(peer, speech)
        await wait_for(lambda: bool(api.requests))
        await asyncio.wait_for(peer.closed.wait(), 10)  # the media stream ends with the transfer
    finally:
        await app.state.carrier_http.aclose()

    assert len(api.requests) == 1, [r.content for _, r in api.requests]  # no hang-up after a transfer
    at, request = api.requests[0]
    assert request.method == "POST"
    assert (
        str(request.url) == f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{CALL_SID}.json"
    )
    expected_auth = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert request.headers["authorization"] == expected_auth
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = parse_qs(request.content.decode())
    assert form == {"Twiml": [f"<Response><Dial>{line}</Dial></Response>"]}

    # the handoff message was spoken in full before the call was redirected
    message = speech.spoken[1]
    tone_secs = min(speech.max_secs, len(message) * speech.secs_per_char)
    media = [e for e in peer.received if e.get("event") == "media"]
    heard = sum(
        len(base64.b64decode(e["media"]["payload"]))  # mu-law: one byte a sample
        for e, t in zip(media, peer.media_times, strict=True)
        if sent < t <= at
    )
    assert heard >= (tone_secs - 0.05) * 8000, (heard / 8000, tone_secs)

    convs = await runtime.conversations.list(runtime.tenant.id, channel="voice")
    turns = await runtime.conversations.turns(convs[0].id)
    assert turns[0].text == said and turns[1].text == message


async def test_without_credentials_nothing_is_sent(voice_server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWILIO_ACCOUNT_SID", raising=False)
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    speech = FakeSpeech(["I want to talk to a human"])
    url, _, app = await voice_server(speech=speech, transfer=TRANSFER)
    api = CarrierApi()
    app.state.carrier_http = api.client()
    try:
        peer = await TwilioPeer.connect(ws_url(url), call_sid=CALL_SID)
        await ask_for_a_human(peer, speech)
        await peer.wait_quiet()
        await asyncio.sleep(0.3)
        assert not peer.closed.is_set()  # the handoff was spoken; the call goes on
        await peer.close()
        await asyncio.sleep(0.2)
    finally:
        await app.state.carrier_http.aclose()
    assert api.requests == []


async def test_our_hang_up_completes_the_call(voice_server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    speech = FakeSpeech(["no thanks, that's all, goodbye"])
    url, _, app = await voice_server(speech=speech)
    api = CarrierApi()
    app.state.carrier_http = api.client()
    try:
        signature = twilio_signature(AUTH_TOKEN, ws_url(url), {})
        peer = await TwilioPeer.connect(
            ws_url(url), call_sid=CALL_SID, additional_headers={"X-Twilio-Signature": signature}
        )
        await ask_for_a_human(peer, speech)
        await asyncio.wait_for(peer.closed.wait(), 15)
        await wait_for(lambda: bool(api.requests))
    finally:
        await app.state.carrier_http.aclose()
    assert [parse_qs(r.content.decode()) for _, r in api.requests] == [{"Status": ["completed"]}]
