"""voice.smart_turn: pipecat's smart-turn v3 model decides the end of the caller's turn."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import SESSION_LOOP
from tests.fakes.speech import FakeSpeech
from tests.inbound.test_twilio_call import ws_url
from tests.inbound.twilio_client import TwilioPeer, utterance
from voicebot.pipeline import call_turn

pytestmark = SESSION_LOOP


async def test_smart_turn_decides_and_the_turn_gets_a_reply(
    voice_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    verdicts: list[dict[str, Any]] = []
    predict = call_turn.SharedSmartTurnAnalyzer._predict_endpoint

    def spy(self: Any, audio: Any) -> dict[str, Any]:
        result = predict(self, audio)  # the real model
        verdicts.append(result)
        return result

    monkeypatch.setattr(call_turn.SharedSmartTurnAnalyzer, "_predict_endpoint", spy)
    speech = FakeSpeech(["where is my order A1001?"])
    url, runtime, _ = await voice_server(speech=speech, smart_turn=True, smart_turn_stop_secs=1.0)
    peer = await TwilioPeer.connect(ws_url(url))
    await peer.wait_media(5)
    await peer.wait_quiet()
    await peer.send_audio(utterance())
    await peer.send_silence(2.0)  # past smart_turn_stop_secs, whatever the model says
    for _ in range(200):
        if len(speech.spoken) >= 2:
            break
        await asyncio.sleep(0.05)
    assert len(speech.spoken) >= 2, speech.spoken
    assert "postcode" in speech.spoken[1]
    assert verdicts and {"prediction", "probability"} <= verdicts[0].keys()
    await peer.wait_quiet()
    await peer.close()
    convs = await runtime.conversations.list(runtime.tenant.id, channel="voice")
    turns = await runtime.conversations.turns(convs[0].id)
    assert [t.role for t in turns][:2] == ["customer", "bot"]
    assert turns[0].text == "where is my order A1001?"


async def test_the_model_is_loaded_once_per_process() -> None:
    assert call_turn.smart_turn_session() is call_turn.smart_turn_session()
