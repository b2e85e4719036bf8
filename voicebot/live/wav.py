"""The call recording as a tap sink: the mixed call audio (voice.record_calls) in one WAV file."""

from __future__ import annotations

import logging
import wave
from pathlib import Path

log = logging.getLogger(__name__)


class WavSink:
    """Writes 16-bit mono PCM frames to ``path`` (created with its folder on the first frame)."""

    def __init__(self, path: Path, sample_rate: int) -> None:
        self.path = path
        self.sample_rate = sample_rate
        self.frames = 0
        self._wav: wave.Wave_write | None = None

    def write(self, frame: bytes) -> None:
        if self._wav is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._wav = wave.open(str(self.path), "wb")  # noqa: SIM115 - closed in close()
            self._wav.setnchannels(1)
            self._wav.setsampwidth(2)
            self._wav.setframerate(self.sample_rate)
        self._wav.writeframes(frame)
        self.frames += 1

    def close(self) -> None:
        if self._wav is not None:
            self._wav.close()
            self._wav = None
            log.info("recording written: %s (%d frames)", self.path, self.frames)

    @property
    def written(self) -> Path | None:
        return self.path if self.frames else None
