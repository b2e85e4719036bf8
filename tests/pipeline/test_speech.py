"""voicebot.pipeline.speech: the shared Whisper STT and Piper TTS services, on the REAL models."""

from __future__ import annotations

import asyncio
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from pipecat.frames.frames import (
    InputAudioRawFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.worker import PipelineParams
from pipecat.tests.utils import run_test

from voicebot import modelstore
from voicebot.config import default_models_dir
from voicebot.errors import ModelError
from voicebot.pipeline import speech
from voicebot.pipeline.speech import (
    SharedPiperTTSService,
    SharedWhisperSTTService,
    SpeechModels,
    Transcript,
    is_no_speech,
    load_speech_models,
)
from voicebot.pipeline.speech_audio import mulaw_decode, mulaw_encode, resample, telephone_channel
from voicebot.pipeline.speech_tts import AudioCache
from voicebot.pipeline.speech_whisper import window_for
from voicebot.pipeline.stt_eval import word_errors

LONG_TEXT = (
    "Thank you for calling. Your order shipped yesterday and should arrive on Thursday. "
    "If you need anything else, you can ask me now. Otherwise, have a lovely day."
)


# -- pure parts -----------------------------------------------------------------------------------


def test_speech_models_are_installed_from_the_manifest() -> None:
    report = modelstore.check(default_models_dir())
    for name in ("whisper-base", "whisper-tiny-en", "piper-joe"):
        assert report[name], name
        assert set(report[name].values()) == {modelstore.FileStatus.OK}, report[name]


def test_mulaw_is_bit_exact_with_audioop() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop  # deprecated, present in 3.11/3.12: the reference implementation
    every = np.arange(-32768, 32768, dtype=np.int16)
    assert mulaw_encode(every) == audioop.lin2ulaw(every.tobytes(), 2)
    codes = bytes(range(256))
    assert mulaw_decode(codes).tobytes() == audioop.ulaw2lin(codes, 2)


def test_telephone_channel_keeps_length_and_band() -> None:
    t = np.arange(22050) / 22050
    audio = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = telephone_channel(audio, 22050)
    assert out.dtype == np.int16 and abs(len(out) - 16000) <= 2
    assert 0.4 < np.abs(out).max() / 32768 < 0.6
    assert resample(out, 16000, 16000) is out


def test_window_for_picks_the_shortest_encoder_window() -> None:
    assert window_for(150) == 1000  # 1.5 s -> 10 s window
    assert window_for(950) == 1000
    assert window_for(951) == 1500
    assert window_for(2900) == 3000
    assert window_for(2990) is None  # longer than 30 s with margin: full transcribe path


def test_no_speech_filter_needs_both_signals() -> None:
    def t(text: str, nsp: float, lp: float) -> Transcript:
        return Transcript(text, nsp, lp, 1.0, 0.1, 0.0, 1000, 1, "en")

    rule = {"no_speech_threshold": 0.8, "logprob_threshold": -1.0}
    assert not is_no_speech(t("where is my order", 0.6, -0.2), **rule)  # pipecat's 0.4 dropped this
    assert not is_no_speech(t("where is my order", 0.95, -0.3), **rule)  # confident text survives
    assert is_no_speech(t("you", 0.95, -1.5), **rule)
    assert is_no_speech(t("", 0.1, -0.1), **rule)


def test_audio_cache_is_lru_by_bytes() -> None:
    cache = AudioCache(max_bytes=10)
    cache.put("a", 8000, (b"1234",))
    cache.put("b", 8000, (b"5678",))
    assert cache.get("a", 8000) == (b"1234",)  # a is now the most recent
    cache.put("c", 8000, (b"9999",))  # 12 bytes > 10: evicts b
    assert cache.get("b", 8000) is None
    assert cache.get("a  ", 8000) == (b"1234",)  # whitespace-normalised key
    assert cache.get("a", 16000) is None  # per output rate
    cache.put("huge", 8000, (b"x" * 11,))  # larger than the cache: not stored
    assert cache.get("huge", 8000) is None


def test_unknown_or_missing_model_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="unknown"):
        load_speech_models(tmp_path, stt_model="whisper-large")
    with pytest.raises(ModelError, match="voicebot models install"):
        load_speech_models(tmp_path)


# -- the real models ------------------------------------------------------------------------------


def call_frames(audio16k: np.ndarray, rate: int) -> list[object]:
    """Audio as a call delivers it at ``rate``: 20 ms frames with VAD start/stop around the speech
    (the VAD start 0.3 s into the speech, as a real VAD confirms late; the pre-roll must cover it)."""
    audio = resample(audio16k, 16000, rate)
    step = rate // 50
    silence = np.zeros(rate // 2, np.int16)
    padded = np.concatenate([silence, audio, silence])
    start_at = len(silence) + int(0.3 * rate)
    stop_at = len(silence) + len(audio) + int(0.2 * rate)
    frames: list[object] = []
    for i in range(0, len(padded) - step + 1, step):
        if i <= start_at < i + step:
            frames.append(VADUserStartedSpeakingFrame(start_secs=0.2))
        frames.append(InputAudioRawFrame(padded[i : i + step].tobytes(), rate, 1))
        if i <= stop_at < i + step:
            frames.append(VADUserStoppedSpeakingFrame(stop_secs=0.2))
    return frames


def phone_utterance(models: SpeechModels, text: str) -> np.ndarray:
    pcm = np.frombuffer(b"".join(models.synthesize(text, 22050)), np.int16)
    return telephone_channel(pcm, 22050)


async def transcribe(stt: SharedWhisperSTTService, audio16k: np.ndarray, rate: int) -> str:
    down, _ = await run_test(
        stt,
        frames_to_send=call_frames(audio16k, rate),  # type: ignore[arg-type]
        pipeline_params=PipelineParams(audio_in_sample_rate=rate),
    )
    return " ".join(f.text for f in down if isinstance(f, TranscriptionFrame))


@pytest.mark.slow
async def test_stt_service_transcribes_a_phone_utterance(speech_models: SpeechModels) -> None:
    reference = "where is my order A one zero zero one"
    audio = phone_utterance(speech_models, "Where is my order A1001?")
    stt = SharedWhisperSTTService(speech_models)
    text = await transcribe(stt, audio, 8000)  # the pipeline runs at the phone's 8 kHz
    errors, words = word_errors(reference, text)
    assert errors / words < 0.35, text
    assert stt.last_transcript is not None and stt.last_stt_seconds is not None
    assert stt.last_transcript.window_frames == 1000  # the short encoder window
    # the first word survived: the pre-roll covers the VAD's late start
    assert text.lower().startswith("where"), text


@pytest.mark.slow
async def test_concurrent_calls_share_one_model_and_batch(speech_models: SpeechModels) -> None:
    texts = ["What are your opening hours?", "I would like to speak to a person."]
    audios = [phone_utterance(speech_models, t) for t in texts]
    services = [SharedWhisperSTTService(speech_models) for _ in texts]
    threads_before = {t.name for t in threading.enumerate()}
    results = await asyncio.gather(*(transcribe(s, a, 16000) for s, a in zip(services, audios, strict=True)))
    for text, result in zip(texts, results, strict=True):
        errors, words = word_errors(text, result)
        assert errors / words < 0.35, result
    assert all(s._models.whisper is speech_models.whisper for s in services)
    whisper_threads = [t for t in threading.enumerate() if t.name == "whisper"]
    assert len(whisper_threads) == 1, threads_before
    # the worker batches what queued while it was busy
    futures = [speech_models.transcriber.submit(a.astype(np.float32) / 32768) for a in audios * 2]
    batches = [f.result(timeout=60).batch_size for f in futures]
    assert max(batches) >= 2, batches


@pytest.mark.slow
async def test_tts_streams_at_8k_and_first_chunk_precedes_the_end(speech_models: SpeechModels) -> None:
    tts = SharedPiperTTSService(speech_models, sample_rate=8000, cache=False)
    down, _ = await run_test(tts, frames_to_send=[TTSSpeakFrame(LONG_TEXT)])
    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert len(audio) >= 3  # one chunk per sentence
    assert {f.sample_rate for f in audio} == {8000}
    seconds = sum(len(f.audio) for f in audio) / 2 / 8000
    assert seconds > 5
    assert tts.last_first_chunk_seconds is not None


@pytest.mark.slow
async def test_tts_cache_hit_replays_identical_audio(
    speech_models: SpeechModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "Hello, you are through to the demo shop. How can I help?"
    first = SharedPiperTTSService(speech_models, sample_rate=8000)
    down1, _ = await run_test(first, frames_to_send=[TTSSpeakFrame(text)])
    assert not first.last_from_cache

    def no_synthesis(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("synthesized again")

    monkeypatch.setattr(speech, "synthesize_chunks", no_synthesis)
    second = SharedPiperTTSService(speech_models, sample_rate=8000)  # another call, same process
    down2, _ = await run_test(second, frames_to_send=[TTSSpeakFrame(text)])
    assert second.last_from_cache
    audio1 = b"".join(f.audio for f in down1 if isinstance(f, TTSAudioRawFrame))
    audio2 = b"".join(f.audio for f in down2 if isinstance(f, TTSAudioRawFrame))
    assert audio1 and audio1 == audio2
    assert second.last_first_chunk_seconds is not None


@pytest.mark.slow
def test_presynthesize_fills_the_cache(speech_models: SpeechModels) -> None:
    speech_models.presynthesize(["One moment please."], 8000)
    chunks = speech_models.tts_cache.get("One moment please.", 8000)
    assert chunks and sum(len(c) for c in chunks) > 8000  # > 0.5 s of 16-bit audio
