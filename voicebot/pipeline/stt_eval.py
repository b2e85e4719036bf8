"""``voicebot eval stt``: word error rate and real-time factor of the call's speech-to-text path.

Each WAV file (any rate, mixed to mono) goes through what a phone call does to it and through the
same processors a call uses:

1. resample to 8 kHz, G.711 mu-law encode and decode, resample to 16 kHz;
2. 0.5 s of silence before and 1 s after (so the VAD sees a start and an end);
3. pipecat's Silero VAD (``SileroVADAnalyzer``, default VADParams) on 20 ms frames, which produces
   the VADUserStarted/StoppedSpeaking frames a transport would;
4. ``SharedWhisperSTTService`` (with its pre-roll buffer and no-speech filter) in a pipecat pipeline.

WER normalisation (``normalise``): lowercase; common English contractions expanded ("where's" ->
"where is"); digits spoken one by one ("1001" -> "one zero zero one"; callers read order numbers
and codes digit by digit, and Whisper writes them as digits); every other character that is not a
letter, digit or apostrophe becomes a space. References should spell numbers the same way.
WER = (substitutions + deletions + insertions) / reference words, summed over all files.
RTF = STT wall time (segment queued -> transcript) / audio seconds, summed over all files.
"""

from __future__ import annotations

import csv
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from pipecat.frames.frames import Frame

from voicebot.errors import ConfigError
from voicebot.pipeline.speech import SharedWhisperSTTService, SpeechModels
from voicebot.pipeline.speech_audio import WHISPER_RATE, telephone_channel

FRAME_SAMPLES = WHISPER_RATE // 50  # 20 ms
LEAD_SILENCE_S = 0.5
TAIL_SILENCE_S = 1.0

_DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_CONTRACTIONS = {
    "where's": "where is",
    "what's": "what is",
    "it's": "it is",
    "that's": "that is",
    "there's": "there is",
    "i'm": "i am",
    "i'd": "i would",
    "i'll": "i will",
    "i've": "i have",
    "you're": "you are",
    "we're": "we are",
    "don't": "do not",
    "doesn't": "does not",
    "didn't": "did not",
    "can't": "cannot",
    "won't": "will not",
    "isn't": "is not",
    "wasn't": "was not",
    "haven't": "have not",
}


def normalise(text: str) -> list[str]:
    """The words WER compares (see the module docstring)."""
    words: list[str] = []
    for token in re.sub(r"[^a-z0-9']+", " ", text.lower()).split():
        token = token.strip("'")
        token = _CONTRACTIONS.get(token, token)
        for word in re.sub(r"(\d)", r" \1 ", token).split():  # every digit its own word
            words.append(_DIGITS[int(word)] if word.isdigit() else word)
    return words


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edit distance in words, reference word count) after normalisation."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1], len(ref)


@dataclass(frozen=True, slots=True)
class FileResult:
    path: str
    reference: str
    hypothesis: str
    errors: int
    words: int
    audio_seconds: float
    stt_seconds: float

    def to_dict(self) -> dict[str, object]:
        return {"path": self.path, "reference": self.reference, "hypothesis": self.hypothesis}


def read_manifest(manifest: Path) -> list[tuple[Path, str]]:
    """``path,reference`` rows (a header row is optional); paths relative to the CSV's folder."""
    try:
        with manifest.open(newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.reader(handle) if row]
    except FileNotFoundError as exc:
        raise ConfigError("the file does not exist", file=str(manifest)) from exc
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "reference"]:
        rows = rows[1:]
    items = []
    for i, row in enumerate(rows):
        if len(row) < 2:
            raise ConfigError(
                "expected two columns: path,reference", file=str(manifest), field=f"row {i + 1}"
            )
        path = Path(row[0].strip())
        items.append((path if path.is_absolute() else manifest.parent / path, row[1].strip()))
    return items


def phone_audio(path: Path) -> np.ndarray:
    """The file as a caller's audio reaches the STT: int16 16 kHz after an 8 kHz mu-law channel."""
    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return telephone_channel(audio.mean(axis=1), int(rate))


async def transcribe_like_a_call(stt: SharedWhisperSTTService, audio: np.ndarray) -> tuple[str, float]:
    """Run 16 kHz int16 audio through Silero VAD and ``stt`` in a pipecat pipeline.
    Returns (joined transcripts, STT seconds)."""
    from pipecat.frames.frames import TranscriptionFrame
    from pipecat.pipeline.worker import PipelineParams
    from pipecat.tests.utils import run_test

    frames = [frame async for frame in vad_frames(audio)]
    before = stt.stt_seconds_total
    down, _ = await run_test(
        stt,
        frames_to_send=frames,
        pipeline_params=PipelineParams(audio_in_sample_rate=WHISPER_RATE),
    )
    text = " ".join(f.text for f in down if isinstance(f, TranscriptionFrame))
    return text.strip(), stt.stt_seconds_total - before


async def vad_frames(audio: np.ndarray) -> AsyncIterator[Frame]:
    """20 ms InputAudioRawFrames with the VAD's start/stop frames where a transport puts them."""
    from pipecat.audio.vad.silero import SileroVADAnalyzer
    from pipecat.audio.vad.vad_analyzer import VADState
    from pipecat.frames.frames import (
        InputAudioRawFrame,
        VADUserStartedSpeakingFrame,
        VADUserStoppedSpeakingFrame,
    )

    vad = SileroVADAnalyzer(sample_rate=WHISPER_RATE)
    vad.set_sample_rate(WHISPER_RATE)  # what the transport does at start
    padded = np.concatenate(
        [
            np.zeros(int(LEAD_SILENCE_S * WHISPER_RATE), np.int16),
            audio,
            np.zeros(int(TAIL_SILENCE_S * WHISPER_RATE), np.int16),
        ]
    )
    speaking = False
    try:
        for start in range(0, len(padded) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
            chunk = padded[start : start + FRAME_SAMPLES].tobytes()
            yield InputAudioRawFrame(audio=chunk, sample_rate=WHISPER_RATE, num_channels=1)
            state = await vad.analyze_audio(chunk)
            if state == VADState.SPEAKING and not speaking:
                speaking = True
                yield VADUserStartedSpeakingFrame(start_secs=vad.params.start_secs)
            elif state == VADState.QUIET and speaking:
                speaking = False
                yield VADUserStoppedSpeakingFrame(stop_secs=vad.params.stop_secs)
        if speaking:
            yield VADUserStoppedSpeakingFrame(stop_secs=vad.params.stop_secs)
    finally:
        await vad.cleanup()


async def evaluate_stt(manifest: Path, models: SpeechModels) -> AsyncIterator[FileResult]:
    """One FileResult per manifest row, in order (an async generator)."""
    for path, reference in read_manifest(manifest):
        try:
            audio = phone_audio(path)
        except (OSError, RuntimeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}", file=str(manifest)) from exc
        stt = SharedWhisperSTTService(models)
        hypothesis, stt_seconds = await transcribe_like_a_call(stt, audio)
        errors, words = word_errors(reference, hypothesis)
        yield FileResult(
            path=str(path),
            reference=reference,
            hypothesis=hypothesis,
            errors=errors,
            words=words,
            audio_seconds=len(audio) / WHISPER_RATE,
            stt_seconds=stt_seconds,
        )


def summary(results: list[FileResult], wall_seconds: float | None = None) -> dict[str, object]:
    words = sum(r.words for r in results)
    audio = sum(r.audio_seconds for r in results)
    out: dict[str, object] = {
        "wer": round(sum(r.errors for r in results) / words, 4) if words else 0.0,
        "rtf": round(sum(r.stt_seconds for r in results) / audio, 4) if audio else 0.0,
        "files": len(results),
    }
    if wall_seconds is not None:
        out["wall_seconds"] = round(wall_seconds, 2)
    return out


__all__ = ["FileResult", "evaluate_stt", "normalise", "read_manifest", "summary", "word_errors"]
