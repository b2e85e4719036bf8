"""POST /v1/twilio/voice: TwiML, and X-Twilio-Signature when an auth token is configured."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import pytest

from tests.conftest import SESSION_LOOP
from voicebot.app import create_app
from voicebot.inbound.twilio import twilio_signature

pytestmark = SESSION_LOOP

PARAMS = {"CallSid": "CA1", "From": "+38640111222", "To": "+38640000000"}


def client(runtime) -> httpx.AsyncClient:
    app = create_app(runtime.settings, runtime)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://voicebot.test")


async def post(c: httpx.AsyncClient, signature: str | None) -> httpx.Response:
    headers = {"content-type": "application/x-www-form-urlencoded"}
    if signature is not None:
        headers["x-twilio-signature"] = signature
    return await c.post("/v1/twilio/voice", content=urlencode(PARAMS), headers=headers)


async def test_twiml_streams_to_our_websocket(shared_runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    async with client(shared_runtime) as c:
        r = await post(c, None)
    assert r.status_code == 200
    assert '<Stream url="ws://voicebot.test/v1/media/twilio">' in r.text
    assert '<Parameter name="From" value="+38640111222"/>' in r.text


@pytest.mark.parametrize("good", [True, False])
async def test_signature(shared_runtime, monkeypatch: pytest.MonkeyPatch, good: bool) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "secret")
    url = "http://voicebot.test/v1/twilio/voice"
    signature = twilio_signature("secret" if good else "wrong", url, PARAMS)
    async with client(shared_runtime) as c:
        r = await post(c, signature)
        absent = await post(c, None)
    assert r.status_code == (200 if good else 403)
    assert absent.status_code == 403
