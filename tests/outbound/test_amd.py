from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicebot.outbound.amd import AmdConfig, AmdVerdict, AnsweringMachineDetector, BeepDetector
from voicebot.rtp.g711 import ulaw_decode

RATE = 8000
VOICE = Path(__file__).resolve().parents[1] / "data" / "voice"
_rng = np.random.default_rng(1234)


def silence(seconds: float, level: float = 20.0) -> np.ndarray:
    """A quiet line: low noise (~ -64 dBFS)."""
    return _rng.normal(0.0, level, int(seconds * RATE))


def word(seconds: float, amplitude: float = 6000.0, f0: float = 140.0) -> np.ndarray:
    """A word-like burst: a harmonic vowel plus noise under a smooth attack/decay envelope."""
    t = np.arange(int(seconds * RATE)) / RATE
    f = f0 * (1 + 0.08 * np.sin(2 * np.pi * 3 * t))  # intonation: pitch glides
    phase = 2 * np.pi * np.cumsum(f) / RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.sin(np.pi * np.clip(t / seconds, 0, 1)) ** 0.5
    return amplitude * envelope * (0.7 * voiced + 0.3 * _rng.normal(0, 1, len(t)))


def tone(freq: float, seconds: float, amplitude: float = 8000.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return amplitude * np.sin(2 * np.pi * freq * t)


def pcm(*parts: np.ndarray) -> bytes:
    return np.clip(np.concatenate(parts), -32768, 32767).astype("<i2").tobytes()


def speech(name: str) -> np.ndarray:
    raw = ulaw_decode((VOICE / f"{name}.ulaw").read_bytes())
    return np.frombuffer(raw, dtype="<i2").astype(np.float64)


def detect(audio: bytes, chunk: int | None = 320) -> AnsweringMachineDetector:
    amd = AnsweringMachineDetector(RATE)
    if chunk is None:
        amd.feed(audio)
    else:
        for i in range(0, len(audio), chunk):
            amd.feed(audio[i : i + chunk])
    return amd


# -- answering machine detection --------------------------------------------------------------


def test_short_hello_then_silence_is_human() -> None:
    amd = detect(pcm(silence(0.4), word(0.6), silence(2.0)))
    assert amd.verdict is AmdVerdict.HUMAN
    assert amd.reason.startswith("human")
    assert amd.words == 1
    assert 0.4 < amd.greeting_s < 0.7
    # decided 0.8 s into the silence after the word, not at the end of the audio
    assert amd.analysed_s == pytest.approx(0.4 + 0.6 + 0.8, abs=0.05)


def test_two_short_words_then_silence_is_human() -> None:
    amd = detect(pcm(silence(0.3), word(0.35), silence(0.2), word(0.4), silence(1.5)))
    assert amd.verdict is AmdVerdict.HUMAN
    assert amd.words == 2


def test_long_greeting_is_machine() -> None:
    amd = detect(pcm(silence(0.3), word(2.5), silence(1.0)))
    assert amd.verdict is AmdVerdict.MACHINE
    assert amd.reason.startswith("longgreeting")
    assert amd.analysed_s == pytest.approx(0.3 + 1.5, abs=0.1)


def test_many_words_is_machine() -> None:
    words = [part for _ in range(6) for part in (word(0.2), silence(0.15))]
    amd = detect(pcm(silence(0.2), *words, silence(1.0)))
    assert amd.verdict is AmdVerdict.MACHINE
    assert amd.reason == "maxwords-4"


def test_max_words_is_configurable() -> None:
    words = [part for _ in range(3) for part in (word(0.2), silence(0.15))]
    amd = AnsweringMachineDetector(RATE, AmdConfig(max_words=2))
    assert amd.feed(pcm(*words, silence(1.0))) is AmdVerdict.MACHINE


def test_initial_silence_is_unknown() -> None:
    amd = detect(pcm(silence(3.0)))
    assert amd.verdict is AmdVerdict.UNKNOWN
    assert amd.reason.startswith("initialsilence")
    assert amd.analysed_s == pytest.approx(2.5, abs=0.02)


def test_clicks_shorter_than_a_word_do_not_start_a_greeting() -> None:
    clicks = [part for _ in range(5) for part in (word(0.04), silence(0.4))]
    amd = detect(pcm(*clicks, silence(1.0)))
    assert amd.verdict is AmdVerdict.UNKNOWN
    assert amd.words == 0


def test_still_talking_at_the_analysis_limit_is_machine() -> None:
    config = AmdConfig(greeting_s=10.0, max_words=100, total_analysis_s=3.0)
    amd = AnsweringMachineDetector(RATE, config)
    words = [part for _ in range(20) for part in (word(0.3), silence(0.1))]
    assert amd.feed(pcm(silence(0.2), *words)) is AmdVerdict.MACHINE
    assert amd.reason == "toolong-talking"


def test_analysis_limit_in_silence_is_unknown() -> None:
    config = AmdConfig(greeting_s=10.0, max_words=100, total_analysis_s=2.0, after_greeting_silence_s=2.0)
    amd = AnsweringMachineDetector(RATE, config)
    assert amd.feed(pcm(silence(0.2), word(0.5), silence(3.0))) is AmdVerdict.UNKNOWN
    assert amd.reason == "toolong"


def test_no_verdict_before_enough_audio() -> None:
    amd = AnsweringMachineDetector(RATE)
    assert amd.feed(pcm(silence(0.2), word(0.5), silence(0.3))) is None
    assert amd.verdict is None
    assert amd.feed(pcm(silence(0.6))) is AmdVerdict.HUMAN


def test_verdict_sticks() -> None:
    amd = detect(pcm(silence(0.3), word(0.5), silence(1.0)))
    assert amd.verdict is AmdVerdict.HUMAN
    analysed = amd.analysed_s
    assert amd.feed(pcm(word(3.0))) is AmdVerdict.HUMAN
    assert amd.analysed_s == analysed


def test_quiet_talker_above_threshold_is_heard() -> None:
    amd = detect(pcm(silence(0.3), word(0.6, amplitude=900.0), silence(1.0)))  # ~ -35 dBFS
    assert amd.verdict is AmdVerdict.HUMAN


def test_real_speech_as_a_long_greeting_is_machine() -> None:
    greeting = np.concatenate([speech("where_is_my_order"), speech("opening_hours")])
    amd = detect(pcm(silence(0.3), greeting, silence(1.0)))
    assert amd.verdict is AmdVerdict.MACHINE
    assert amd.analysed_s < 0.3 + len(greeting) / RATE


@pytest.mark.parametrize("chunk", [1, 3, 161, 1001])
def test_odd_sized_chunks_give_the_same_verdict(chunk: int) -> None:
    for audio in (
        pcm(silence(0.3), word(0.6), silence(1.5)),
        pcm(silence(0.2), word(2.0)),
        pcm(silence(3.0)),
    ):
        whole = detect(audio, chunk=None)
        pieces = detect(audio, chunk=chunk)
        assert (pieces.verdict, pieces.reason) == (whole.verdict, whole.reason)
        assert pieces.analysed_s == pytest.approx(whole.analysed_s)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=700), max_size=30))
def test_arbitrary_bytes_never_raise(chunks: list[bytes]) -> None:
    amd = AnsweringMachineDetector(RATE)
    beep = BeepDetector(RATE)
    for chunk in chunks:
        verdict = amd.feed(chunk)
        assert verdict is None or isinstance(verdict, AmdVerdict)
        assert isinstance(beep.feed(chunk), bool)


# -- beep detection --------------------------------------------------------------------------


def feed_beep(audio: bytes, chunk: int = 320) -> tuple[BeepDetector, int | None]:
    """The detector and the byte offset of the chunk at which it reported the beep's end."""
    beep = BeepDetector(RATE)
    for i in range(0, len(audio), chunk):
        if beep.feed(audio[i : i + chunk]):
            return beep, i
    return beep, None


@pytest.mark.parametrize("freq", [1000.0, 440.0, 2000.0])
def test_beep_is_detected_when_it_ends(freq: float) -> None:
    beep, at = feed_beep(pcm(silence(0.5), tone(freq, 0.4), silence(0.5)))
    assert at is not None
    assert beep.frequency_hz == pytest.approx(freq, rel=0.01)
    assert beep.duration_s == pytest.approx(0.4, abs=0.03)
    end_of_tone = int((0.5 + 0.4) * RATE) * 2
    assert end_of_tone - 640 <= at <= end_of_tone + 640  # within about 40 ms of the tone's end


def test_beep_not_reported_while_it_still_sounds() -> None:
    beep, at = feed_beep(pcm(silence(0.3), tone(1000.0, 1.0)))
    assert at is None
    assert beep.feed(pcm(silence(0.1))) is True
    assert beep.feed(b"") is True  # stays reported


def test_beep_after_a_long_greeting() -> None:
    greeting = [part for _ in range(8) for part in (word(0.4), silence(0.12))]
    audio = pcm(silence(0.3), *greeting, silence(0.3), tone(1000.0, 0.5), silence(0.4))
    beep, at = feed_beep(audio)
    assert at is not None
    greeting_end = int((0.3 + 8 * 0.52 + 0.3) * RATE) * 2
    assert at > greeting_end
    assert beep.frequency_hz == pytest.approx(1000.0, rel=0.01)


def test_beep_over_line_noise() -> None:
    beep, at = feed_beep(
        pcm(
            silence(0.3, level=200.0),
            tone(850.0, 0.3, amplitude=5000.0) + silence(0.3, level=200.0),
            silence(0.3, level=200.0),
        )
    )
    assert at is not None
    assert beep.frequency_hz == pytest.approx(850.0, rel=0.01)


def test_too_short_a_tone_is_no_beep() -> None:
    _, at = feed_beep(pcm(silence(0.3), tone(1000.0, 0.06), silence(0.5)))
    assert at is None


@pytest.mark.parametrize("freq", [150.0, 3200.0])
def test_tones_outside_the_band_are_no_beep(freq: float) -> None:
    _, at = feed_beep(pcm(silence(0.3), tone(freq, 0.4), silence(0.5)))
    assert at is None


def test_a_sweeping_tone_is_no_beep() -> None:
    t = np.arange(int(0.5 * RATE)) / RATE
    sweep = 8000 * np.sin(2 * np.pi * (600 * t + 0.5 * 800 * t * t))  # 600 -> 1000 Hz
    _, at = feed_beep(pcm(silence(0.3), sweep, silence(0.5)))
    assert at is None


@pytest.mark.parametrize("f0", [100.0, 140.0, 220.0, 300.0])
def test_harmonic_vowels_are_no_beep(f0: float) -> None:
    t = np.arange(int(0.6 * RATE)) / RATE
    # a sustained vowel: harmonics shaped by two formants (700 Hz and 1200 Hz), steady pitch
    vowel = sum(
        (np.exp(-(((k * f0 - 700) / 150) ** 2)) + 0.5 * np.exp(-(((k * f0 - 1200) / 200) ** 2)) + 0.05)
        * np.sin(2 * np.pi * k * f0 * t)
        for k in range(1, int(3500 / f0))
    )
    audio = pcm(silence(0.3), 6000 * vowel / np.max(np.abs(vowel)), silence(0.5))
    _, at = feed_beep(audio)
    assert at is None


def test_word_bursts_and_real_speech_are_no_beep() -> None:
    greeting = [part for _ in range(6) for part in (word(0.4), silence(0.1))]
    _, at = feed_beep(
        pcm(silence(0.3), *greeting, speech("where_is_my_order"), speech("opening_hours"), silence(0.5))
    )
    assert at is None


def test_beep_in_odd_chunks() -> None:
    audio = pcm(silence(0.3), tone(1000.0, 0.3), silence(0.3))
    for chunk in (1, 7, 333):
        beep, at = feed_beep(audio, chunk=chunk)
        assert at is not None
        assert beep.frequency_hz == pytest.approx(1000.0, rel=0.01)
