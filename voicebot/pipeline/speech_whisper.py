"""One faster-whisper model per process, shared by every call, with batching and a short window.

faster-whisper's ``transcribe`` pads every segment to 30 s (3000 mel frames) for the encoder, so a
2 s question costs a full 30 s encoder pass. CTranslate2's Whisper encoder accepts fewer frames:
``WhisperTranscriber`` pads each utterance only to the next window in ``WINDOWS`` (10, 15, 20 or
30 s) and runs the encoder and the greedy decoder itself (``model.encode`` + ``model.model.generate``).
Measured on 10 Piper utterances (1.4-2.9 s) through an 8 kHz mu-law channel, 2 threads, int8:
tiny.en 30 s window 0.93 s / 10 s window 0.14 s; base 0.95 s / 0.34 s; the same words either way.
Below 10 s tiny.en starts repeating itself, so 10 s is the floor. Utterances longer than 30 s, and
automatic language detection, take faster-whisper's own ``transcribe`` path.

One worker thread owns the model: requests queue up, and what queued while a batch ran goes into
the next batch (one encoder/decoder call for several calls' utterances), so concurrent calls never
oversubscribe the cores.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial

import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer

from voicebot.pipeline.speech_audio import WHISPER_RATE

log = logging.getLogger(__name__)

FRAMES_PER_SECOND = 100  # mel frames (hop 160 at 16 kHz)
WINDOWS = (1000, 1500, 2000, 3000)  # encoder input lengths tried, in mel frames
MAX_BATCH = 4


@dataclass(frozen=True, slots=True)
class Transcript:
    """The result of one utterance."""

    text: str
    no_speech_prob: float
    avg_logprob: float
    audio_seconds: float
    compute_seconds: float  # wall time in the model (the batch's, shared by its members)
    queue_seconds: float  # time spent waiting for the model
    window_frames: int  # encoder input length; 0 = faster-whisper's full transcribe path
    batch_size: int
    language: str | None


def window_for(num_frames: int) -> int | None:
    """The shortest encoder window holding ``num_frames`` (plus 0.5 s of margin), or None (> 30 s)."""
    for window in WINDOWS:
        if num_frames + 50 <= window:
            return window
    return None


@dataclass(slots=True)
class _Request:
    audio: np.ndarray
    language: str | None
    future: Future[Transcript]
    queued_at: float


class WhisperTranscriber:
    """Owns the model's worker thread. ``submit()`` is thread-safe; ``close()`` stops the thread."""

    def __init__(self, model: WhisperModel, *, short_window: bool = True, max_batch: int = MAX_BATCH):
        self.model = model
        self.short_window = short_window
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._tokenizers: dict[str | None, Tokenizer] = {}

    def submit(self, audio: np.ndarray, language: str | None = "en") -> Future[Transcript]:
        """Queue float32 16 kHz mono audio; the future resolves to its Transcript."""
        if not self.model.model.is_multilingual:
            language = "en"
        future: Future[Transcript] = Future()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="whisper", daemon=True)
                self._thread.start()
        self._queue.put(_Request(audio.astype(np.float32, copy=False), language, future, time.perf_counter()))
        return future

    def transcribe(self, audio: np.ndarray, language: str | None = "en") -> Transcript:
        """Blocking convenience: submit and wait."""
        return self.submit(audio, language).result()

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    # -- the worker thread

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # finish this batch, then stop
                    break
                batch.append(item)
            self._process(batch)

    def _process(self, batch: list[_Request]) -> None:
        short: dict[tuple[int, str], list[_Request]] = {}
        for request in batch:
            if not request.future.set_running_or_notify_cancel():
                continue  # the caller gave up (call ended, barge-in)
            window = window_for(len(request.audio) // 160 + 1) if self.short_window else None
            if window is None or request.language is None:
                self._settle([request], self._full_path)
            else:
                short.setdefault((window, request.language), []).append(request)
        for (window, language), group in short.items():
            self._settle(group, partial(self._short_path, window=window, language=language))

    @staticmethod
    def _settle(group: list[_Request], run: Callable[[list[_Request]], list[Transcript]]) -> None:
        try:
            results = run(group)
        except Exception as exc:  # the model failed: every caller in the batch hears about it
            log.exception("whisper transcription failed")
            for request in group:
                request.future.set_exception(exc)
            return
        for request, result in zip(group, results, strict=True):
            request.future.set_result(result)

    def _tokenizer(self, language: str) -> Tokenizer:
        if language not in self._tokenizers:
            self._tokenizers[language] = Tokenizer(
                self.model.hf_tokenizer,
                self.model.model.is_multilingual,
                task="transcribe",
                language=language,
            )
        return self._tokenizers[language]

    def _short_path(self, group: list[_Request], window: int, language: str) -> list[Transcript]:
        started = time.perf_counter()
        features = []
        for request in group:
            mel = self.model.feature_extractor(request.audio)[:, :window]
            features.append(np.pad(mel, ((0, 0), (0, window - mel.shape[-1]))))
        encoded = self.model.encode(np.stack(features))
        tokenizer = self._tokenizer(language)
        prompt = self.model.get_prompt(tokenizer, [], without_timestamps=True)
        longest = max(len(r.audio) for r in group) / WHISPER_RATE
        results = self.model.model.generate(
            encoded,
            [prompt] * len(group),
            beam_size=1,
            # about 3 tokens a second is speech; a generous cap stops a hallucination loop early
            max_length=min(self.model.max_length, len(prompt) + 20 + int(8 * longest)),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=[-1],
        )
        elapsed = time.perf_counter() - started
        out = []
        for request, result in zip(group, results, strict=True):
            tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
            out.append(
                Transcript(
                    text=tokenizer.decode(tokens).strip(),
                    no_speech_prob=float(result.no_speech_prob),
                    avg_logprob=float(result.scores[0]),  # CTranslate2 scores are length-normalised
                    audio_seconds=len(request.audio) / WHISPER_RATE,
                    compute_seconds=elapsed,
                    queue_seconds=started - request.queued_at,
                    window_frames=window,
                    batch_size=len(group),
                    language=language,
                )
            )
        return out

    def _full_path(self, group: list[_Request]) -> list[Transcript]:
        (request,) = group
        started = time.perf_counter()
        segments, info = self.model.transcribe(
            request.audio,
            language=request.language,
            beam_size=1,
            without_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        parts = list(segments)
        elapsed = time.perf_counter() - started
        return [
            Transcript(
                text=" ".join(s.text.strip() for s in parts).strip(),
                no_speech_prob=min((s.no_speech_prob for s in parts), default=1.0),
                avg_logprob=max((s.avg_logprob for s in parts), default=-10.0),
                audio_seconds=len(request.audio) / WHISPER_RATE,
                compute_seconds=elapsed,
                queue_seconds=started - request.queued_at,
                window_frames=0,
                batch_size=1,
                language=info.language,
            )
        ]
