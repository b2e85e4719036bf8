"""Fake STT and TTS at the speech seam (voicebot.pipeline.call.SpeechServices).

* ``FakeSTT`` is a pipecat SegmentedSTTService, exactly like the shared Whisper service: it buffers
  audio around the VAD events (with pipecat's pre-roll) and "transcribes" each segment by taking
  the next scripted transcript. Every segment it received is kept in ``segments`` (16-bit PCM at
  the pipeline rate) so tests can inspect what STT actually hears.
* ``FakeTTS`` is a TTSService that "speaks" a text as a 300 Hz tone of ``secs_per_char`` per
  character (at most ``max_secs``), so tests can tell bot audio from caller audio.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncGenerator, Iterable, Iterator
from datetime import UTC, datetime

import numpy as np
from pipecat.frames.frames import Frame, TranscriptionFrame, TTSAudioRawFrame
from pipecat.services.settings import STTSettings, TTSSettings
from pipecat.services.stt_service import SegmentedSTTService
from pipecat.services.tts_service import TTSService

TONE_HZ = 300.0


def tone(secs: float, sample_rate: int, hz: float = TONE_HZ, amplitude: float = 0.3) -> bytes:
    t = np.arange(int(secs * sample_rate)) / sample_rate
    return (np.sin(2 * np.pi * hz * t) * amplitude * 32767).astype(np.int16).tobytes()


class FakeSTT(SegmentedSTTService):
    def __init__(self, script: deque[str], segments: list[bytes], **kwargs: object) -> None:
        kwargs.setdefault("ttfs_p99_latency", 0.05)
        super().__init__(settings=STTSettings(model=None, language=None), **kwargs)  # type: ignore[arg-type]
        self._script = script
        self.segments = segments

    @property
    def wants_wav_segments(self) -> bool:
        return False

    def can_generate_metrics(self) -> bool:
        return False

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame, None]:
        self.segments.append(audio)
        text = self._script.popleft() if self._script else ""
        yield TranscriptionFrame(text, "caller", datetime.now(UTC).isoformat(), finalized=True)


class FakeTTS(TTSService):
    def __init__(self, spoken: list[str], *, secs_per_char: float, max_secs: float, **kwargs: object) -> None:
        super().__init__(  # type: ignore[misc]
            push_start_frame=True,
            push_stop_frames=True,
            settings=TTSSettings(model=None, voice=None, language=None),
            **kwargs,  # type: ignore[arg-type]
        )
        self.spoken = spoken
        self._secs_per_char = secs_per_char
        self._max_secs = max_secs

    def can_generate_metrics(self) -> bool:
        return False

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame, None]:
        self.spoken.append(text)
        secs = min(self._max_secs, max(0.1, len(text) * self._secs_per_char))
        audio = tone(secs, self.sample_rate)
        chunk = int(self.sample_rate * 0.1) * 2
        for i in range(0, len(audio), chunk):
            yield TTSAudioRawFrame(audio[i : i + chunk], self.sample_rate, 1, context_id=context_id)


class FakeSpeech:
    """Implements SpeechServices; ``script`` feeds the STT, ``spoken`` records what TTS said."""

    def __init__(
        self, script: Iterable[str] = (), *, secs_per_char: float = 0.01, max_secs: float = 1.0
    ) -> None:
        self.script: deque[str] = deque(script)
        self.segments: list[bytes] = []
        self.spoken: list[str] = []
        self.secs_per_char = secs_per_char
        self.max_secs = max_secs

    def stt(self, *, language: str) -> FakeSTT:
        return FakeSTT(self.script, self.segments)

    def tts(self, *, sample_rate: int) -> FakeTTS:
        return FakeTTS(
            self.spoken, secs_per_char=self.secs_per_char, max_secs=self.max_secs, sample_rate=sample_rate
        )

    def synthesize(self, text: str, sample_rate: int) -> Iterator[bytes]:
        """Like SpeechModels.synthesize (used outside a pipeline, e.g. a warm transfer's briefing)."""
        self.spoken.append(text)
        yield tone(min(self.max_secs, max(0.1, len(text) * self.secs_per_char)), sample_rate)
