"""Per-turn voice latency: end of caller speech -> first bot audio sent, and its parts.

The marks are taken where the frames pass (monotonic clock):

* ``vad_stop``: the VAD declared the end of speech; the caller actually stopped ``vad_stop_secs``
  earlier (the VAD wait), so ``speech_end = vad_stop - vad_stop_secs``;
* ``transcript``: the STT's TranscriptionFrame reached the dialogue processor;
* ``reply``: the dialogue returned the reply text (pushed to TTS);
* ``tts_first``: the first TTS audio chunk left the TTS service (``LatencyTap``);
* ``audio_out``: the output transport started sending bot audio (BotStartedSpeakingFrame).

``voice_to_voice = audio_out - speech_end``; parts: vad_wait, stt, dialogue, tts_first_chunk,
transport (what is left: queueing and the send). Stored per turn as an audit entry
``voice.turn_latency`` of the conversation and observed in Prometheus.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pipecat.frames.frames import Frame, TTSAudioRawFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from voicebot import metrics

LATENCY_ACTION = "voice.turn_latency"


@dataclass(slots=True)
class TurnMarks:
    """The marks of one caller turn (seconds, time.monotonic)."""

    vad_stop_secs: float
    vad_stop: float | None = None
    transcript: float | None = None
    reply: float | None = None
    tts_first: float | None = None
    audio_out: float | None = None
    source: str = "speech"  # "speech" | "dtmf"

    def complete(self) -> bool:
        return None not in (self.vad_stop, self.transcript, self.reply, self.audio_out)

    def to_dict(self) -> dict[str, Any]:
        """Milliseconds: v2v_ms and the parts (None where a mark is missing)."""
        assert self.vad_stop is not None and self.audio_out is not None
        assert self.transcript is not None and self.reply is not None
        speech_end = self.vad_stop - self.vad_stop_secs
        tts_first = self.tts_first if self.tts_first is not None else self.audio_out

        def ms(a: float, b: float) -> float:
            return round(max(0.0, b - a) * 1000.0, 1)

        return {
            "v2v_ms": ms(speech_end, self.audio_out),
            "vad_wait_ms": round(self.vad_stop_secs * 1000.0, 1),
            "stt_ms": ms(self.vad_stop, self.transcript),
            "dialogue_ms": ms(self.transcript, self.reply),
            "tts_first_chunk_ms": ms(self.reply, tts_first),
            "transport_ms": ms(tts_first, self.audio_out),
            "source": self.source,
        }


def observe(channel: str, parts: dict[str, Any]) -> None:
    metrics.VOICE_TO_VOICE.labels(channel=channel).observe(parts["v2v_ms"] / 1000.0)
    for name in ("vad_wait", "stt", "dialogue", "tts_first_chunk", "transport"):
        metrics.VOICE_TURN_PART_SECONDS.labels(part=name).observe(parts[f"{name}_ms"] / 1000.0)


@dataclass(slots=True)
class TurnClock:
    """Shared by the dialogue processor (which owns the turn) and the tap after TTS."""

    current: TurnMarks | None = None
    done: list[dict[str, Any]] = field(default_factory=list)

    def first_tts_audio(self) -> None:
        if self.current is not None and self.current.reply is not None and self.current.tts_first is None:
            self.current.tts_first = time.monotonic()


class LatencyTap(FrameProcessor):
    """Sits right after the TTS service: marks the first audio chunk of the reply being timed."""

    def __init__(self, clock: TurnClock, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._clock = clock

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame) and direction is FrameDirection.DOWNSTREAM:
            self._clock.first_tts_audio()
        await self.push_frame(frame, direction)
