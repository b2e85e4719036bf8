"""A whole call over the Twilio Media Streams WebSocket, in process, with fake STT/TTS."""

from __future__ import annotations

import asyncio

import pytest
import websockets

from tests.conftest import SESSION_LOOP
from tests.fakes.speech import FakeSpeech
from tests.inbound.twilio_client import TwilioPeer, utterance

pytestmark = SESSION_LOOP


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/v1/media/twilio"


async def test_greeting_then_a_turn_gets_a_reply(voice_server) -> None:
    speech = FakeSpeech(["where is my order A1001?"])
    url, runtime, _ = await voice_server(speech=speech)
    peer = await TwilioPeer.connect(ws_url(url))
    await peer.wait_media(5)
    assert speech.spoken[0].startswith("Hello, and welcome to Demo Shop")
    await peer.wait_quiet()
    await peer.send_audio(utterance())
    await peer.send_silence(1.0)
    for _ in range(100):
        if len(speech.spoken) >= 2:
            break
        await asyncio.sleep(0.05)
    assert len(speech.spoken) >= 2, speech.spoken
    assert "postcode" in speech.spoken[1]  # order status needs verification first
    await peer.wait_quiet()
    await peer.close()
    convs = await runtime.conversations.list(runtime.tenant.id, channel="voice")
    assert len(convs) == 1 and convs[0].caller == "+38640111222"
    turns = await runtime.conversations.turns(convs[0].id)
    assert [t.role for t in turns][:2] == ["customer", "bot"]
    assert turns[0].text == "where is my order A1001?"


async def wait_for(predicate, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_barge_in_sends_clear(voice_server) -> None:
    speech = FakeSpeech(["hello"], secs_per_char=0.1, max_secs=8.0)  # a long greeting
    url, _, _ = await voice_server(speech=speech)
    peer = await TwilioPeer.connect(ws_url(url))
    await peer.wait_media(5)
    await peer.send_audio(utterance("opening_hours"))
    await wait_for(lambda: bool(peer.clears))
    await peer.close()


async def test_dtmf_digits_reach_the_dialogue(voice_server) -> None:
    speech = FakeSpeech()
    url, runtime, _ = await voice_server(speech=speech)
    peer = await TwilioPeer.connect(ws_url(url))
    await peer.wait_media(3)
    for digit in "1001#":
        await peer.send_dtmf(digit)
    await wait_for(lambda: len(speech.spoken) >= 2)
    await peer.close()
    convs = await runtime.conversations.list(runtime.tenant.id, channel="voice")
    turns = await runtime.conversations.turns(convs[0].id)
    assert turns[0].text == "1001"


async def test_dtmf_menu_key_speaks_for_the_caller(voice_server) -> None:
    speech = FakeSpeech()
    menu = {"1": {"en": "What are your opening hours?"}, "2": {"en": "I want to talk to a person"}}
    prompt = {"en": "Press 1 for opening hours, 2 for a person."}
    url, runtime, _ = await voice_server(speech=speech, dtmf_menu=menu, dtmf_menu_prompt=prompt)
    peer = await TwilioPeer.connect(ws_url(url))
    await peer.wait_media(3)
    await wait_for(lambda: prompt["en"] in speech.spoken)
    assert speech.spoken.index(prompt["en"]) == 1  # right after the greeting
    for digit in "2#":
        await peer.send_dtmf(digit)
    await wait_for(lambda: len(speech.spoken) >= 3)
    await peer.close()
    convs = await runtime.conversations.list(runtime.tenant.id, channel="voice")
    turns = await runtime.conversations.turns(convs[0].id)
    assert turns[0].text == "I want to talk to a person"
    assert turns[1].action == "handoff"


async def test_silence_prompt_then_hang_up(voice_server) -> None:
    speech = FakeSpeech()
    url, _, _ = await voice_server(speech=speech, silence_prompt_secs=0.5, silence_prompts=1)
    peer = await TwilioPeer.connect(ws_url(url))
    await asyncio.wait_for(peer.closed.wait(), 15)
    assert speech.spoken[1] == "Are you still there? How can I help you?"
    assert "end the call" in speech.spoken[2]


async def test_end_action_hangs_up(voice_server) -> None:
    speech = FakeSpeech(["no thanks, that's all, goodbye"])
    url, runtime, _ = await voice_server(speech=speech)
    peer = await TwilioPeer.connect(ws_url(url))
    await peer.wait_media(3)
    await peer.wait_quiet()
    await peer.send_audio(utterance("opening_hours"))
    await peer.send_silence(0.5)
    await asyncio.wait_for(peer.closed.wait(), 15)
    convs = await runtime.conversations.list(runtime.tenant.id, channel="voice")
    assert convs[0].status.value == "ended"


async def test_latency_is_recorded(voice_server) -> None:
    speech = FakeSpeech(["what are your opening hours?"])
    url, runtime, _ = await voice_server(speech=speech)
    peer = await TwilioPeer.connect(ws_url(url))
    await peer.wait_media(3)
    await peer.wait_quiet()
    await peer.send_audio(utterance("opening_hours"))
    await peer.send_silence(1.5)
    await peer.close()
    convs = await runtime.conversations.list(runtime.tenant.id, channel="voice")
    await asyncio.sleep(0.2)
    rows = await runtime.audit.for_conversation(convs[0].id, action="voice.turn_latency")
    assert rows, "no latency stored"
    parts = rows[0].details
    assert parts["v2v_ms"] >= parts["vad_wait_ms"] == 250.0
    # pre-roll: the segment STT received starts before the VAD start (about 1 s of audio kept)
    segment_secs = len(speech.segments[0]) / 2 / 8000
    assert segment_secs > 1.59 + 0.3, segment_secs


async def test_calls_over_the_limit_are_refused_with_a_reason(voice_server) -> None:
    url, runtime, _ = await voice_server(speech=FakeSpeech([]), max_calls=1)
    first = await TwilioPeer.connect(ws_url(url))
    await first.wait_media(5)
    assert runtime.call_admission.active == 1
    async with websockets.connect(ws_url(url)) as second:
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(second.recv(), 5)
        assert second.close_code == 1013
        assert second.close_reason is not None and "busy" in second.close_reason
    await first.close()
    await wait_for(lambda: runtime.call_admission.active == 0)
    third = await TwilioPeer.connect(ws_url(url), call_sid="CA3")
    await third.wait_media(5)  # a freed line takes the next call
    await third.close()
