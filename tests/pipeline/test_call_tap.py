"""The call tap: caller and bot audio (pipecat frames at their own rates) mixed into 20 ms frames
of 16 kHz PCM16 mono for the listen-in and the recording."""

from __future__ import annotations

import numpy as np
from pipecat.frames.frames import InputAudioRawFrame, OutputAudioRawFrame, TTSAudioRawFrame
from pipecat.tests.utils import run_test

from voicebot.pipeline.call_tap import FRAME_BYTES, TAP_RATE, AudioMixer, CallAudioTap


def tone(hz: float, secs: float, rate: int, amplitude: float = 0.3) -> bytes:
    t = np.arange(int(secs * rate)) / rate
    return (np.sin(2 * np.pi * hz * t) * amplitude * 32767).astype(np.int16).tobytes()


def power_at(pcm: bytes, hz: float, rate: int = TAP_RATE) -> float:
    """The share of the signal's energy within 20 Hz of ``hz``."""
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples)) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    return float(spectrum[np.abs(freqs - hz) < 20].sum() / spectrum.sum())


class Collect:
    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.closed = False

    def write(self, frame: bytes) -> None:
        self.frames.append(frame)

    def close(self) -> None:
        self.closed = True


def test_mixer_sums_sources_clocked_by_the_caller() -> None:
    out: list[bytes] = []
    mixer = AudioMixer(out.append, frame_samples=4)
    mixer.side_audio("bot", np.array([100, 200, 300, 400, 500], np.int16).tobytes())
    assert out == []  # nothing before the caller's clock ticks
    mixer.caller_audio(np.array([1, 2, 3, 4, 5, 6, 7, 8, 9], np.int16).tobytes())
    frames = [np.frombuffer(f, np.int16).tolist() for f in out]
    assert frames == [[101, 202, 303, 404], [505, 6, 7, 8]]
    mixer.flush()
    assert np.frombuffer(out[-1], np.int16).tolist() == [9, 0, 0, 0]


def test_mixer_clips_and_does_not_hold_a_source_when_the_caller_stalls() -> None:
    out: list[bytes] = []
    mixer = AudioMixer(out.append, frame_samples=160, max_ahead_ms=100)  # 100 ms = 5 frames
    loud = np.full(160, 30000, np.int16).tobytes()
    mixer.caller_audio(loud[:0])
    for _ in range(6):
        mixer.side_audio("bot", loud)
    assert out, "the bot's audio waited for a caller frame that never came"
    assert all(len(f) == 320 for f in out)
    mixer.caller_audio(loud)
    assert np.frombuffer(out[-1], np.int16).max() == 32767  # 30000 + 30000, clipped


async def test_tap_turns_8k_caller_and_24k_bot_frames_into_20ms_16k_frames() -> None:
    sink = Collect()
    tap = CallAudioTap([sink])
    caller = tone(440, 1.0, 8000)
    bot = tone(1000, 0.5, 24000)
    frames = [InputAudioRawFrame(caller[i * 320 : (i + 1) * 320], 8000, 1) for i in range(50)]
    frames += [TTSAudioRawFrame(bot[i * 960 : (i + 1) * 960], 24000, 1) for i in range(25)]
    down, _ = await run_test(tap, frames_to_send=frames)

    # every frame passes on untouched
    assert sum(isinstance(f, InputAudioRawFrame) for f in down) == 50
    assert sum(isinstance(f, OutputAudioRawFrame) for f in down) == 25
    assert sink.closed
    assert sink.frames and {len(f) for f in sink.frames} == {FRAME_BYTES}
    # the caller's second (its clock) and the bot's half second (mixed in, or after it: run_test
    # delivers the caller's system frames before the bot's data frames; a live call interleaves
    # them, see the mixer tests), give or take the resamplers' filter delays
    assert 50 <= len(sink.frames) <= 77
    mixed = b"".join(sink.frames)
    assert power_at(mixed, 440) > 0.3 and power_at(mixed, 1000) > 0.15  # both parties are heard
    rms = np.sqrt(np.mean(np.frombuffer(mixed, np.int16).astype(np.float64) ** 2))
    assert rms > 3000


async def test_side_audio_is_heard_and_a_failing_sink_is_dropped() -> None:
    class Broken:
        def write(self, frame: bytes) -> None:
            raise OSError("disk full")

        def close(self) -> None:
            pass

    sink = Collect()
    tap = CallAudioTap([Broken(), sink])
    tap.side_audio("summary", tone(700, 0.2, TAP_RATE), TAP_RATE)
    silence = bytes(640)
    await run_test(tap, frames_to_send=[InputAudioRawFrame(silence, 16000, 1) for _ in range(10)])
    assert len(sink.frames) == 10
    assert power_at(b"".join(sink.frames), 700) > 0.8
