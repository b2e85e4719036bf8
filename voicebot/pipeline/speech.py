"""Local speech for calls: one Whisper model and one Piper voice per process, shared by every call.

* ``load_speech_models(models_dir)`` loads both once per worker process (before the first call).
* ``SharedWhisperSTTService`` is a pipecat SegmentedSTTService over the shared model: the VAD's
  segments (with ``pre_roll_secs`` of audio from before the VAD start) are resampled to 16 kHz and
  queued to the model's worker thread (``speech_whisper.WhisperTranscriber``), which batches what
  concurrent calls submit and pads the encoder input to 10-30 s instead of 30 s. The event loop
  never blocks. ``last_transcript`` / ``last_stt_seconds`` give the turn's STT cost.
* ``SharedPiperTTSService`` streams Piper's audio sentence by sentence, resampled to the output
  rate, and keeps an LRU of synthesized audio so fixed texts (greetings, prompts, KB answers) start
  at once. ``SpeechModels.presynthesize`` fills it ahead of the first call.

The no-speech filter drops a segment only when Whisper is confident it heard no speech AND the
decoded text is improbable (``no_speech_prob > no_speech_threshold and avg_logprob <
logprob_threshold``, Whisper's own rule); pipecat's default (drop when no_speech_prob >= 0.4 alone)
dropped most phone questions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faster_whisper import WhisperModel
from pipecat.frames.frames import ErrorFrame, Frame, StartFrame, TranscriptionFrame, TTSAudioRawFrame
from pipecat.services.settings import STTSettings, TTSSettings
from pipecat.services.stt_service import SegmentedSTTService
from pipecat.services.tts_service import TTSService
from pipecat.transcriptions.language import Language
from pipecat.utils.time import time_now_iso8601
from piper import PiperVoice

from voicebot.errors import ModelError
from voicebot.pipeline.speech_audio import WHISPER_RATE, pcm16_to_float, resample
from voicebot.pipeline.speech_tts import AudioCache, synthesize_chunks
from voicebot.pipeline.speech_whisper import Transcript, WhisperTranscriber

__all__ = [
    "STT_MODELS",
    "AudioCache",
    "SharedPiperTTSService",
    "SharedWhisperSTTService",
    "SpeechModels",
    "Transcript",
    "is_no_speech",
    "load_speech_models",
]

log = logging.getLogger(__name__)

STT_MODELS = ("whisper-base", "whisper-tiny-en")
VOICE_MODEL = "piper-joe"
VOICE_FILE = "en_US-joe-medium.onnx"


@dataclass
class SpeechModels:
    """Loaded once per worker process, shared by all calls."""

    whisper: WhisperModel
    whisper_name: str  # "whisper-base" | "whisper-tiny-en"
    voice: PiperVoice
    voice_sample_rate: int  # 22050 for the joe voice
    tts_cache: AudioCache = field(default_factory=AudioCache, repr=False)
    transcriber: WhisperTranscriber = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.transcriber = WhisperTranscriber(self.whisper)

    def synthesize(self, text: str, sample_rate: int) -> Iterator[bytes]:
        """Blocking: 16-bit PCM chunks (one per sentence) at ``sample_rate``; not cached."""
        return synthesize_chunks(self.voice, text, sample_rate)

    def presynthesize(self, texts: Iterable[str], sample_rate: int) -> None:
        """Blocking: synthesize fixed texts into the cache (run in a thread at start-up)."""
        for text in texts:
            if self.tts_cache.get(text, sample_rate) is None:
                self.tts_cache.put(text, sample_rate, tuple(self.synthesize(text, sample_rate)))

    def close(self) -> None:
        """Stop the Whisper worker thread (it restarts on the next request)."""
        self.transcriber.close()


def load_speech_models(
    models_dir: Path, *, stt_model: str = "whisper-base", cpu_threads: int = 2
) -> SpeechModels:
    """Load the Whisper model and the Piper voice from ``models_dir`` (no network)."""
    if stt_model not in STT_MODELS:
        raise ModelError(f"unknown speech-to-text model {stt_model!r}; choose one of {', '.join(STT_MODELS)}")
    whisper_dir = models_dir / stt_model
    voice_path = models_dir / VOICE_MODEL / VOICE_FILE
    for needed in (whisper_dir / "model.bin", voice_path, voice_path.with_name(VOICE_FILE + ".json")):
        if not needed.exists():
            raise ModelError(f"{needed} is missing: run `voicebot models install`")
    started = time.perf_counter()
    whisper = WhisperModel(str(whisper_dir), device="cpu", compute_type="int8", cpu_threads=cpu_threads)
    voice = PiperVoice.load(voice_path, config_path=voice_path.with_name(VOICE_FILE + ".json"))
    log.info("speech models loaded (%s, %s) in %.1f s", stt_model, VOICE_MODEL, time.perf_counter() - started)
    return SpeechModels(whisper, stt_model, voice, voice.config.sample_rate)


def is_no_speech(t: Transcript, *, no_speech_threshold: float, logprob_threshold: float) -> bool:
    """Whisper's rule: silence only if it says so confidently and the text is improbable."""
    if not t.text:
        return True
    return t.no_speech_prob > no_speech_threshold and t.avg_logprob < logprob_threshold


def _language_enum(code: str | None) -> Language | None:
    try:
        return Language(code) if code else None
    except ValueError:
        return None


def _next_chunk(source: Iterator[bytes]) -> bytes | None:
    return next(source, None)


def _base_language(language: Language | str) -> str:
    return str(language.value if isinstance(language, Language) else language).split("-")[0].lower()


class SharedWhisperSTTService(SegmentedSTTService):
    """Segmented STT over the process's shared Whisper model (see the module docstring)."""

    def __init__(
        self,
        models: SpeechModels,
        *,
        language: str | None = "en",
        no_speech_threshold: float = 0.8,
        logprob_threshold: float = -1.0,
        pre_roll_secs: float = 1.0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("ttfs_p99_latency", 0.6)  # VAD stop -> transcript, measured p99 with base
        super().__init__(settings=STTSettings(model=models.whisper_name, language=language), **kwargs)
        self._models = models
        self._no_speech_threshold = no_speech_threshold
        self._logprob_threshold = logprob_threshold
        self._pre_roll_secs = pre_roll_secs
        self.last_transcript: Transcript | None = None
        self.last_stt_seconds: float | None = None  # segment queued -> transcript, wall time
        self.last_dropped: Transcript | None = None  # the last segment the no-speech filter dropped
        self.stt_seconds_total = 0.0  # sum of last_stt_seconds over the service's life
        self.segments = 0

    @property
    def wants_wav_segments(self) -> bool:
        return False

    def can_generate_metrics(self) -> bool:
        return True

    def language_to_service_language(self, language: Language) -> str | None:
        return _base_language(language)

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        # SegmentedSTTService keeps this much audio from before the VAD start (its pre-roll).
        self._audio_buffer_size_1s = int(self.sample_rate * 2 * self._pre_roll_secs) & ~1

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame, None]:
        """Transcribe one segment (16-bit PCM at the service's input rate)."""
        started = time.perf_counter()
        await self.start_processing_metrics()
        samples = resample(pcm16_to_float(audio), self.sample_rate, WHISPER_RATE)
        language = self._settings.language if isinstance(self._settings.language, str) else None
        try:
            transcript = await asyncio.wrap_future(self._models.transcriber.submit(samples, language))
        except Exception as exc:
            await self.stop_processing_metrics()
            yield ErrorFrame(error=f"whisper transcription failed: {exc}")
            return
        await self.stop_processing_metrics()
        self.last_stt_seconds = time.perf_counter() - started
        self.stt_seconds_total += self.last_stt_seconds
        self.segments += 1
        self.last_transcript = transcript
        if is_no_speech(
            transcript,
            no_speech_threshold=self._no_speech_threshold,
            logprob_threshold=self._logprob_threshold,
        ):
            self.last_dropped = transcript
            log.debug("no speech: %r (no_speech_prob %.2f)", transcript.text, transcript.no_speech_prob)
            return
        log.debug(
            "transcript %r: %.2f s audio, %.0f ms (window %d, batch %d)",
            transcript.text,
            transcript.audio_seconds,
            self.last_stt_seconds * 1000,
            transcript.window_frames,
            transcript.batch_size,
        )
        yield TranscriptionFrame(
            transcript.text,
            self._user_id,
            time_now_iso8601(),
            _language_enum(transcript.language),
            result=transcript,
        )


class SharedPiperTTSService(TTSService):
    """Piper TTS over the process's shared voice, streamed per sentence, with an audio cache."""

    def __init__(
        self, models: SpeechModels, *, sample_rate: int | None = None, cache: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(
            push_start_frame=True,
            push_stop_frames=True,
            sample_rate=sample_rate,
            settings=TTSSettings(model=VOICE_MODEL, voice="joe", language="en"),
            **kwargs,
        )
        self._models = models
        self._cache = cache
        self.last_first_chunk_seconds: float | None = None  # run_tts start -> first audio
        self.last_from_cache = False

    def can_generate_metrics(self) -> bool:
        return True

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        rate = self.sample_rate
        started = time.perf_counter()
        await self.start_tts_usage_metrics(text)
        cached = self._models.tts_cache.get(text, rate) if self._cache else None
        self.last_from_cache = cached is not None
        if cached is not None:
            self.last_first_chunk_seconds = time.perf_counter() - started
            await self.stop_ttfb_metrics()
            for cached_chunk in cached:
                yield TTSAudioRawFrame(cached_chunk, rate, 1, context_id=context_id)
            return
        chunks: list[bytes] = []
        source = synthesize_chunks(self._models.voice, text, rate)
        try:
            while True:
                chunk = await asyncio.to_thread(_next_chunk, source)
                if chunk is None:
                    break
                if not chunks:
                    self.last_first_chunk_seconds = time.perf_counter() - started
                    await self.stop_ttfb_metrics()
                chunks.append(chunk)
                yield TTSAudioRawFrame(chunk, rate, 1, context_id=context_id)
        except Exception as exc:
            log.exception("piper synthesis failed")
            yield ErrorFrame(error=f"piper synthesis failed: {exc}")
            return
        finally:
            await self.stop_ttfb_metrics()
        if self._cache and chunks:
            self._models.tts_cache.put(text, rate, tuple(chunks))
