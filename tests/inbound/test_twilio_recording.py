"""Call recording over the Twilio Media Streams WebSocket, with fake STT/TTS: the announcement is
spoken first, and the stereo WAV carries the caller on the left and the bot's tone on the right."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np

from tests.conftest import SESSION_LOOP
from tests.fakes.speech import TONE_HZ, FakeSpeech
from tests.inbound.twilio_client import TwilioPeer, utterance
from voicebot.pipeline.speech_audio import mulaw_decode, mulaw_encode

pytestmark = SESSION_LOOP

RATE = 8000


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/v1/media/twilio"


def band_share(signal: np.ndarray, low: float, high: float) -> float:
    """The share of ``signal``'s energy between ``low`` and ``high`` Hz."""
    spectrum = np.abs(np.fft.rfft(signal.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(signal), 1 / RATE)
    total = float(spectrum.sum())
    return float(spectrum[(freqs >= low) & (freqs <= high)].sum()) / total if total else 0.0


def best_match(haystack: np.ndarray, needle: np.ndarray) -> float:
    """The highest normalized correlation of ``needle`` with a window of ``haystack``."""
    h = haystack.astype(np.float64)
    n = needle.astype(np.float64)
    size = len(h) + len(n)
    corr = np.fft.irfft(np.fft.rfft(h, size) * np.conj(np.fft.rfft(n, size)), size)[: len(h) - len(n) + 1]
    windows = np.sqrt(np.convolve(h * h, np.ones(len(n)), mode="valid"))
    norm = windows * np.sqrt(float((n * n).sum()))
    return float(np.max(np.where(norm > 0, corr / np.maximum(norm, 1e-9), 0.0)))


async def wait_for_file(folder: Path, timeout: float = 15.0) -> Path:
    for _ in range(int(timeout / 0.05)):
        found = sorted(folder.glob("*.wav"))
        if found:
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no recording appeared in {folder}")


async def test_recording_is_announced_and_stereo(voice_server, tmp_path: Path) -> None:
    speech = FakeSpeech(["what are your opening hours?"])
    url, runtime, _ = await voice_server(speech=speech, recording=True)
    peer = await TwilioPeer.connect(ws_url(url))
    await peer.wait_media(5)
    await peer.wait_quiet()
    assert speech.spoken[0] == "This call is recorded for quality purposes."
    assert speech.spoken[1].startswith("Hello, and welcome to Demo Shop")
    caller = utterance("opening_hours")
    await peer.send_audio(caller)
    await peer.send_silence(1.0)
    for _ in range(100):
        if len(speech.spoken) >= 3:
            break
        await asyncio.sleep(0.05)
    assert len(speech.spoken) >= 3, speech.spoken
    await peer.wait_quiet()
    await peer.close()

    path = await wait_for_file(tmp_path / "rec")
    convs = await runtime.conversations.list(runtime.tenant.id, channel="voice")
    assert path.name == f"{convs[0].id}.wav"
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, RATE)
        frames = np.frombuffer(wav.readframes(wav.getnframes()), np.int16)
    left, right = frames[0::2], frames[1::2]
    assert len(left) > 3 * RATE  # announcement + greeting + the caller's question + the reply

    # right: the bot, i.e. FakeTTS's tone and nothing else; it starts with the announcement
    assert np.abs(right).max() > 5000
    assert band_share(right, TONE_HZ - 20, TONE_HZ + 20) > 0.9
    first_bot = int(np.argmax(np.abs(right) > 1000)) / RATE
    assert first_bot < 0.5, f"the bot's audio starts {first_bot:.2f} s into the recording"

    # left: the caller, i.e. the utterance the peer sent (through mu-law, as Twilio carries it)
    heard = mulaw_decode(mulaw_encode(caller))
    assert best_match(left, heard) > 0.95
    assert band_share(left, TONE_HZ - 20, TONE_HZ + 20) < 0.2  # no bot tone leaked in
    # ... and it is where the caller spoke: after the opening, not under it
    start = int(np.argmax(np.abs(left) > 1000)) / RATE
    assert start > first_bot + 1.0
