"""Campaign calls through a Twilio-compatible REST API (tests/outbound/fake_carrier.py on 127.0.0.1):
the call is created over REST, status callbacks and the answered call's webhook come back signed,
and the answered call's audio over the Media Streams WebSocket. voicebot's webhooks, media socket,
VAD, script and campaign engine are real; speech is the fake at the speech seam."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import websockets
from pydantic import ValidationError

from tests.conftest import SESSION_LOOP, serving
from tests.fakes.speech import FakeSpeech
from tests.inbound.conftest import voice_server  # noqa: F401 - fixture
from tests.inbound.twilio_client import TwilioPeer, utterance
from tests.outbound.campaign_driver import APPOINTMENT_CSV, campaign, run_campaign
from tests.outbound.fake_carrier import Callee, FakeTwilio
from voicebot.app import create_app
from voicebot.config import DEMO_TENANT, Settings, VoiceConfig, load_tenant
from voicebot.inbound.twilio import outbound_calls, twilio_signature
from voicebot.knowledge.embeddings import Embedder
from voicebot.outbound.campaign_config import CampaignDefinition
from voicebot.outbound.schedule import Outcome
from voicebot.outbound.twilio_dialer import TwilioDialer, refused
from voicebot.runtime import Runtime
from voicebot.storage.records import CampaignAttemptRecord

pytestmark = SESSION_LOOP

ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "test-auth-token"
ANA = "+38640111001"  # the one contact of APPOINTMENT_CSV
CONFIRMED = "Thank you, your appointment is confirmed. Goodbye!"


async def says_yes(peer: TwilioPeer) -> None:
    await peer.wait_media(5)
    await peer.wait_quiet()  # the opening was spoken
    await peer.send_audio(utterance())  # any speech: FakeSTT hears its script
    await peer.send_silence(1.0)


Dialled = tuple[list[CampaignAttemptRecord], Any, FakeTwilio, FakeSpeech]


@pytest_asyncio.fixture(loop_scope="session")
async def dial(
    voice_server: Callable[..., Any],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Callable[..., Any]]:
    """``await dial(definition, callees, speech=...)``: run the one-contact APPOINTMENT_CSV campaign
    through the fake carrier until it completes; returns (attempts, contact, carrier, speech)."""
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    async with AsyncExitStack() as stack:

        async def run(
            definition: CampaignDefinition,
            callees: dict[str, Callee],
            *,
            speech: FakeSpeech | None = None,
            api_base: str | None = None,
            timeout_s: float = 60.0,
        ) -> Dialled:
            speech = speech or FakeSpeech()
            carrier = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, callees)
            stack.push_async_callback(carrier.close)
            carrier_url = await stack.enter_async_context(serving(carrier.app))
            url, runtime, app = await voice_server(
                speech=speech, twilio_api_base=carrier_url, silence_prompt_secs=3.0
            )
            http = app.state.carrier_http = httpx.AsyncClient(timeout=10)
            stack.push_async_callback(http.aclose)
            dialer = TwilioDialer(
                runtime,
                outbound_calls(app),
                http,
                public_url=url,
                api_base=api_base or carrier_url,
                answer_wait_s=1.0,
            )
            attempts, contact = await run_campaign(
                runtime, dialer, definition, APPOINTMENT_CSV, timeout_s=timeout_s
            )
            await carrier.idle()  # the final status callbacks were taken (checked by the carrier)
            assert len(outbound_calls(app)) == 0  # every placed call left the registry
            return attempts, contact, carrier, speech

        yield run


async def test_a_person_confirms(dial: Callable[..., Any]) -> None:
    speech = FakeSpeech(["Yes I'll be there"])
    attempts, contact, carrier, _ = await dial(
        campaign("appointment-confirmation"), {ANA: Callee(answered_by="human", talk=says_yes)}, speech=speech
    )
    (attempt,) = attempts
    assert attempt.outcome == "confirmed" and contact.outcome == "confirmed", attempt.detail
    (call,) = carrier.calls
    assert attempt.call_id == call.sid and attempt.answered_at is not None
    assert attempt.result == {"decision": "confirm"}
    assert {"role": "customer", "text": "Yes I'll be there"} in attempt.transcript
    assert attempt.transcript[-1] == {"role": "bot", "text": CONFIRMED}
    assert speech.spoken[0].startswith("Hello Ana, this is the automated assistant")
    # the REST request as Twilio documents it
    form = call.form
    assert form["To"] == [ANA] and form["From"] == ["+38615550100"]
    assert form["Url"][0].rsplit("/", 2)[-2] == "outbound"
    assert form["StatusCallback"] == [form["Url"][0] + "/status"]
    assert (form["Timeout"], form["MachineDetection"], form["AsyncAmd"]) == (
        ["4"],
        ["DetectMessageEnd"],
        ["false"],
    )
    token = form["Url"][0].rsplit("/", 1)[-1]
    assert call.twiml and f'<Parameter name="outbound" value="{token}"/>' in call.twiml
    assert call.peer is not None and len(call.peer.bot_audio()) > 8000  # the bot talked on the stream
    assert {"Status": "completed"} in call.updates  # we hung up after the goodbye


@pytest.mark.parametrize(
    ("status", "outcome"), [("busy", "busy"), ("no-answer", "no_answer"), ("failed", "failed")]
)
async def test_a_final_status_before_an_answer(dial: Callable[..., Any], status: str, outcome: str) -> None:
    attempts, contact, carrier, _ = await dial(
        campaign("appointment-confirmation"), {ANA: Callee(status=status)}
    )
    (attempt,) = attempts
    assert attempt.outcome == outcome == contact.outcome, attempt.detail
    assert attempt.detail == f"twilio {status}" and attempt.answered_at is None
    assert attempt.call_id == carrier.calls[0].sid


async def test_ringing_too_long_is_cancelled(dial: Callable[..., Any]) -> None:
    attempts, _, carrier, _ = await dial(
        campaign("appointment-confirmation", ring_timeout=1), {ANA: Callee()}
    )
    (attempt,) = attempts
    assert attempt.outcome == "no_answer" and "ring timeout" in (attempt.detail or "")
    assert carrier.calls[0].updates == [{"Status": "canceled"}]


async def test_an_answering_machine_gets_the_voicemail_message(dial: Callable[..., Any]) -> None:
    speech = FakeSpeech()
    attempts, _, carrier, _ = await dial(
        campaign("appointment-confirmation"), {ANA: Callee(answered_by="machine_end_beep")}, speech=speech
    )
    (attempt,) = attempts
    assert attempt.outcome == "voicemail" and "machine_end_beep" in (attempt.detail or ""), attempt.detail
    assert speech.spoken == [attempt.transcript[0]["text"]]
    assert speech.spoken[0].startswith("Hello Ana, we called about your appointment")
    (call,) = carrier.calls
    assert call.peer is not None and len(call.peer.bot_audio()) > 800  # the message went down the stream
    assert {"Status": "completed"} in call.updates and attempt.answered_at is not None


@pytest.mark.parametrize(("answered_by", "outcome"), [("machine_start", "voicemail"), ("fax", "invalid")])
async def test_hung_up_at_once_on_a_machine_or_fax(
    dial: Callable[..., Any], answered_by: str, outcome: str
) -> None:
    definition = campaign("appointment-confirmation", voicemail={"action": "hang_up"})
    attempts, _, carrier, speech = await dial(definition, {ANA: Callee(answered_by=answered_by)})
    (attempt,) = attempts
    assert attempt.outcome == outcome, attempt.detail
    (call,) = carrier.calls
    assert call.twiml is not None and "<Hangup/>" in call.twiml and call.peer is None
    assert speech.spoken == [] and attempt.transcript in (None, [])


async def test_an_invalid_number(dial: Callable[..., Any]) -> None:
    attempts, contact, carrier, _ = await dial(campaign("appointment-confirmation"), {})
    (attempt,) = attempts
    assert attempt.outcome == "invalid" == contact.outcome
    assert "21211" in (attempt.detail or "") and carrier.calls == []


async def test_an_unreachable_carrier_fails_the_attempt(dial: Callable[..., Any]) -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    attempts, _, carrier, _ = await dial(
        campaign("appointment-confirmation"),
        {ANA: Callee(status="busy")},
        api_base=f"http://127.0.0.1:{port}",
    )
    (attempt,) = attempts
    assert attempt.outcome == "failed" and "twilio unreachable" in (attempt.detail or "")
    assert carrier.calls == []


@pytest.mark.parametrize(
    ("status", "code", "outcome"),
    [
        (400, 21211, Outcome.INVALID),
        (400, 21210, Outcome.FAILED),
        (401, 20003, Outcome.FAILED),
        (503, None, Outcome.FAILED),
    ],
)
async def test_refusals(status: int, code: int | None, outcome: Outcome) -> None:
    report = refused(httpx.Response(status, json={"code": code, "message": "no"}))
    assert report.outcome is outcome and f"HTTP {status}" in (report.detail or "")


async def test_the_twilio_dialer_needs_the_public_url() -> None:
    with pytest.raises(ValidationError, match="public_url is required"):
        VoiceConfig(campaign_dialer="twilio")
    with pytest.raises(ValidationError, match="http"):
        VoiceConfig(campaign_dialer="twilio", public_url="bot.example.com")
    assert VoiceConfig(campaign_dialer="twilio", public_url="https://bot.example.com/").public_url == (
        "https://bot.example.com"
    )


async def test_serve_dials_campaigns_with_the_configured_dialer(
    real_embedder: Embedder, runtime_data_dir: Path, tmp_path: Path
) -> None:
    settings = Settings(
        tenant_config=DEMO_TENANT,
        data_dir=runtime_data_dir,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'wiring.db'}",
    )
    tenant = load_tenant(DEMO_TENANT)
    tenant.voice = VoiceConfig(campaign_dialer="twilio", public_url="https://bot.example.com")
    app = create_app(settings, Runtime(settings, tenant=tenant, embedder=real_embedder, speech=FakeSpeech()))
    async with serving(app, lifespan="on"):
        dialer = app.state.campaigns.runner.dialer
        assert isinstance(dialer, TwilioDialer) and dialer.calls is outbound_calls(app)
        assert dialer.public_url == "https://bot.example.com" and dialer.http is app.state.carrier_http


class _Waiting:
    """An outbound call that never ends (only for the webhook checks)."""

    def answer(self, params: dict[str, str]) -> bool:
        return True

    def status(self, params: dict[str, str]) -> None:
        pass

    async def attach(self, websocket: Any, start: Any) -> None:
        pass


async def test_webhooks_refuse_bad_signatures_and_unknown_tokens(
    voice_server: Callable[..., Any],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    url, _, app = await voice_server()
    token = outbound_calls(app).add(_Waiting())
    params = {"CallSid": "CA1", "CallStatus": "ringing", "AnsweredBy": "human"}

    async def post(path: str, *, secret: str | None = AUTH_TOKEN) -> httpx.Response:
        headers = (
            {} if secret is None else {"X-Twilio-Signature": twilio_signature(secret, url + path, params)}
        )
        async with httpx.AsyncClient() as client:
            return await client.post(url + path, data=params, headers=headers)

    for path in (f"/v1/twilio/outbound/{token}", f"/v1/twilio/outbound/{token}/status"):
        assert (await post(path)).status_code in (200, 204)
        assert (await post(path, secret="wrong")).status_code == 403
        assert (await post(path, secret=None)).status_code == 403
        unknown = path.replace(token, "not-a-call")
        assert (await post(unknown)).status_code == 404
    answer = await post(f"/v1/twilio/outbound/{token}")
    assert f'<Parameter name="outbound" value="{token}"/>' in answer.text
    assert '<Stream url="ws://127.0.0.1:' in answer.text
    # a media stream for a call that is not ours is closed
    ws_url = url.replace("http://", "ws://") + "/v1/media/twilio"
    headers = {"X-Twilio-Signature": twilio_signature(AUTH_TOKEN, ws_url, {})}
    peer = await TwilioPeer.connect(
        ws_url, call_sid="CA9", parameters={"outbound": "not-a-call"}, additional_headers=headers
    )
    await asyncio.wait_for(peer.closed.wait(), 10)
    assert peer.ws.close_code == 1008
    await peer.close()
    # Twilio still calls back once the call is over: the final status is taken, a late answer hung up
    outbound_calls(app).discard(token)
    assert (await post(f"/v1/twilio/outbound/{token}/status")).status_code == 204
    assert "<Hangup/>" in (await post(f"/v1/twilio/outbound/{token}")).text
    with pytest.raises(websockets.InvalidStatus):  # unsigned upgrade: refused before accept
        await websockets.connect(ws_url)
