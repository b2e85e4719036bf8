"""Answering-machine and beep detection on the first seconds of an answered outbound call.

Pure: no I/O and no clock; time is the number of samples fed. Audio is mono 16-bit little-endian
PCM in chunks of any length (an odd trailing byte waits for the next chunk).

:class:`AnsweringMachineDetector` follows Asterisk's ``AMD()``: 10 ms frames are voiced or silent by
their RMS level; a run of voice at least ``min_word_s`` long starts a word, a silence of
``between_words_silence_s`` ends it. A person answers with a short greeting ("Hello?") and waits;
a machine talks on. Verdicts, first that applies:

- HUMAN: a greeting followed by ``after_greeting_silence_s`` of silence;
- MACHINE: more than ``max_words`` words, or more than ``greeting_s`` of voice in the greeting;
- UNKNOWN: ``initial_silence_s`` without a word (Asterisk says MACHINE here; a silent person
  waiting for us is as likely, so the caller treats UNKNOWN as a person);
- at ``total_analysis_s``: MACHINE if the other side is still talking (voice within the last half
  of ``after_greeting_silence_s``), else UNKNOWN.

The silence threshold is the larger of a fixed level (``silence_threshold_dbfs``, -40 dBFS) and
the tracked noise floor plus ``noise_margin_db``, so line hiss does not read as an endless word.

:class:`BeepDetector` finds the end of a voicemail beep: a steady single tone (300-2500 Hz) whose
spectrum is concentrated in a narrow band (voiced speech spreads its energy over harmonics) at a
frequency stable within ``max_drift`` for at least ``min_tone_s``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

__all__ = ["AmdConfig", "AmdVerdict", "AnsweringMachineDetector", "BeepDetector"]

_FULL_SCALE = 32768.0
_Samples = npt.NDArray[np.float64]


class AmdVerdict(StrEnum):
    HUMAN = "human"
    MACHINE = "machine"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class AmdConfig:
    initial_silence_s: float = 2.5  # silence before any word: UNKNOWN
    greeting_s: float = 1.5  # voice in the greeting beyond this: MACHINE
    after_greeting_silence_s: float = 0.8  # silence after a greeting: HUMAN
    total_analysis_s: float = 5.0  # decide by then at the latest
    min_word_s: float = 0.12  # shorter voice is a click or noise, not a word
    between_words_silence_s: float = 0.05  # silence that ends a word
    max_words: int = 3  # more words than this: MACHINE
    silence_threshold_dbfs: float = -40.0  # frame RMS below this is silence (~328 of 32768)
    noise_margin_db: float = 10.0  # ... and so is anything less than this above the noise floor
    frame_s: float = 0.01


class _Pcm:
    """Turns byte chunks of any length into whole frames of samples."""

    def __init__(self, frame: int, hop: int) -> None:
        self.frame, self.hop = frame, hop
        self._odd = b""
        self._samples: _Samples = np.zeros(0)

    def frames(self, pcm16: bytes) -> npt.NDArray[np.float64]:
        data = self._odd + bytes(pcm16)
        even = len(data) - len(data) % 2
        self._odd = data[even:]
        new = np.frombuffer(data[:even], dtype="<i2").astype(np.float64)
        samples = np.concatenate([self._samples, new])
        count = 0 if len(samples) < self.frame else (len(samples) - self.frame) // self.hop + 1
        if count == 0:
            self._samples = samples
            return np.zeros((0, self.frame))
        starts = np.arange(count) * self.hop
        out = samples[starts[:, None] + np.arange(self.frame)]
        self._samples = samples[count * self.hop :]
        return out


def _dbfs(rms: float) -> float:
    return 20.0 * float(np.log10(max(rms, 1e-3) / _FULL_SCALE))


def level_dbfs(pcm16: bytes) -> float:
    """The RMS level of a chunk of 16-bit PCM, in dBFS (silence: about -90)."""
    samples = np.frombuffer(pcm16[: len(pcm16) - len(pcm16) % 2], dtype="<i2").astype(np.float64)
    return _dbfs(float(np.sqrt(np.mean(samples**2)))) if len(samples) else _dbfs(0.0)


class AnsweringMachineDetector:
    """Person or machine, from the audio after the call was answered; see the module docstring."""

    def __init__(self, sample_rate: int = 8000, config: AmdConfig | None = None) -> None:
        self.config = config or AmdConfig()
        self.sample_rate = sample_rate
        size = max(1, round(sample_rate * self.config.frame_s))
        self._frame_s = size / sample_rate
        self._pcm = _Pcm(size, size)
        self.verdict: AmdVerdict | None = None
        self.reason = ""
        self.greeting_s = 0.0  # voiced seconds in the greeting so far
        self.analysed_s = 0.0
        self.words = 0
        self._floor_dbfs = self.config.silence_threshold_dbfs - self.config.noise_margin_db
        self._in_word = False
        self._voice_run = 0.0  # consecutive voice
        self._silence_run = 0.0  # consecutive silence
        self._greeting_started = False

    def feed(self, pcm16: bytes) -> AmdVerdict | None:
        if self.verdict is not None:
            return self.verdict
        for frame in self._pcm.frames(pcm16):
            self._frame(_dbfs(float(np.sqrt(np.mean(frame * frame)))))
            if self.verdict is not None:
                break
        return self.verdict

    def _frame(self, level: float) -> None:
        cfg = self.config
        # the floor follows quiet frames down at once and creeps up (~0.5 dB/s) under speech
        self._floor_dbfs = min(level, self._floor_dbfs + 0.005)
        voiced = level >= max(cfg.silence_threshold_dbfs, self._floor_dbfs + cfg.noise_margin_db)
        self.analysed_s += self._frame_s
        if voiced:
            self._voice_run += self._frame_s
            self._silence_run = 0.0
            if self._in_word or self._greeting_started:
                self.greeting_s += self._frame_s
            if not self._in_word and self._voice_run >= cfg.min_word_s - 1e-9:
                self._in_word = True
                self.words += 1
                if not self._greeting_started:
                    self._greeting_started = True
                    self.greeting_s = self._voice_run
            if self.words > cfg.max_words:
                return self._decide(AmdVerdict.MACHINE, f"maxwords-{self.words}")
            if self.greeting_s > cfg.greeting_s:
                return self._decide(AmdVerdict.MACHINE, f"longgreeting-{self.greeting_s:.2f}s")
        else:
            self._silence_run += self._frame_s
            if self._silence_run >= cfg.between_words_silence_s - 1e-9:
                self._in_word = False
                self._voice_run = 0.0
            if not self._greeting_started and self.analysed_s >= cfg.initial_silence_s - 1e-9:
                return self._decide(AmdVerdict.UNKNOWN, f"initialsilence-{self.analysed_s:.2f}s")
            if self._greeting_started and self._silence_run >= cfg.after_greeting_silence_s - 1e-9:
                return self._decide(
                    AmdVerdict.HUMAN, f"human-{self.greeting_s:.2f}s-{self._silence_run:.2f}s"
                )
        if self.analysed_s >= cfg.total_analysis_s - 1e-9:
            # a pause shorter than half the after-greeting silence is a machine between phrases
            if self._greeting_started and self._silence_run < cfg.after_greeting_silence_s / 2:
                return self._decide(AmdVerdict.MACHINE, "toolong-talking")
            return self._decide(AmdVerdict.UNKNOWN, "toolong")
        return None

    def _decide(self, verdict: AmdVerdict, reason: str) -> None:
        self.verdict, self.reason = verdict, reason


class BeepDetector:
    """The end of a voicemail beep: the moment to start speaking a message."""

    def __init__(
        self,
        sample_rate: int = 8000,
        *,
        min_tone_s: float = 0.12,
        min_hz: float = 300.0,
        max_hz: float = 2500.0,
        concentration: float = 0.8,  # share of the frame's energy within +-band_hz of the peak
        band_hz: float = 120.0,
        max_drift: float = 0.02,  # (max - min) / mean of the frequency over the tone
        min_level_dbfs: float = -45.0,
    ) -> None:
        self.sample_rate = sample_rate
        self.min_tone_s, self.min_hz, self.max_hz = min_tone_s, min_hz, max_hz
        self.concentration, self.band_hz, self.max_drift = concentration, band_hz, max_drift
        self.min_level_dbfs = min_level_dbfs
        window = max(8, round(sample_rate * 0.02))  # 20 ms windows every 10 ms
        self._hop = max(1, window // 2)
        self._pcm = _Pcm(window, self._hop)
        self._window_s = window / sample_rate
        self._nfft = max(1024, 1 << (window - 1).bit_length())
        self._hann = np.hanning(window)
        self._freqs = np.fft.rfftfreq(self._nfft, 1.0 / sample_rate)
        self._tone: list[float] = []  # per-frame frequencies of the tone in progress
        self.detected = False
        self.frequency_hz: float | None = None  # of the detected beep
        self.duration_s: float | None = None

    def feed(self, pcm16: bytes) -> bool:
        """True once a beep has ended (and on every later call)."""
        if self.detected:
            return True
        frames = self._pcm.frames(pcm16)
        if len(frames) == 0:
            return False
        for freq in self._tone_frequencies(frames):
            if freq is not None and (not self._tone or self._close(freq)):
                self._tone.append(freq)
                continue
            if self._tone_long_enough():
                self.detected = True
                self.frequency_hz = float(np.mean(self._tone))
                self.duration_s = self._tone_s()
                return True
            self._tone = [freq] if freq is not None else []
        return False

    def _tone_s(self) -> float:
        return (len(self._tone) - 1) * self._hop / self.sample_rate + self._window_s

    def _tone_long_enough(self) -> bool:
        if not self._tone or self._tone_s() < self.min_tone_s - 1e-9:
            return False
        return (max(self._tone) - min(self._tone)) / float(np.mean(self._tone)) <= self.max_drift

    def _close(self, freq: float) -> bool:
        reference = self._tone[0]
        return abs(freq - reference) / reference <= self.max_drift

    def _tone_frequencies(self, frames: npt.NDArray[np.float64]) -> list[float | None]:
        """Per frame, the frequency of a single steady tone in it, or None."""
        rms = np.sqrt(np.mean(frames * frames, axis=1))
        spectrum = np.abs(np.fft.rfft(frames * self._hann, n=self._nfft, axis=1)) ** 2
        out: list[float | None] = []
        bin_hz = self.sample_rate / self._nfft
        for level, power in zip(rms, spectrum, strict=True):
            total = float(power.sum())
            if _dbfs(float(level)) < self.min_level_dbfs or total <= 0.0:
                out.append(None)
                continue
            peak = int(np.argmax(power))
            freq = self._freqs[peak] + _parabolic_offset(power, peak) * bin_hz
            lo, hi = np.searchsorted(self._freqs, [freq - self.band_hz, freq + self.band_hz])
            share = float(power[lo:hi].sum()) / total
            ok = self.min_hz <= freq <= self.max_hz and share >= self.concentration
            out.append(float(freq) if ok else None)
        return out


def _parabolic_offset(power: npt.NDArray[np.float64], peak: int) -> float:
    """Sub-bin position of a spectral peak (parabola through log power of three bins)."""
    if peak <= 0 or peak >= len(power) - 1:
        return 0.0
    a, b, c = np.log(power[peak - 1 : peak + 2] + 1e-12)
    denominator = a - 2 * b + c
    return 0.0 if denominator == 0 else float(0.5 * (a - c) / denominator)
