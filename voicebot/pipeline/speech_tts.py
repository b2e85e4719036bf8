"""Piper synthesis shared by every call: sentence-by-sentence streaming, resampling, an LRU cache.

``PiperVoice.synthesize`` yields one AudioChunk per sentence (22,050 Hz for the joe voice), so the
first sentence can play while the rest is synthesized. espeak-ng's phonemizer is process-global
state, so phonemizing runs under a lock; the ONNX synthesis of one sentence runs under a second
lock so concurrent calls take turns sentence by sentence instead of oversubscribing the cores.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator

import numpy as np
import soxr
from piper import PiperVoice

_PHONEMIZE_LOCK = threading.Lock()
_SYNTH_LOCK = threading.Lock()


def synthesize_chunks(voice: PiperVoice, text: str, out_rate: int) -> Iterator[bytes]:
    """16-bit mono PCM at ``out_rate``, one chunk per sentence, resampled as a continuous stream."""
    with _PHONEMIZE_LOCK:
        sentences = [p for p in voice.phonemize(text) if p]
    in_rate = voice.config.sample_rate
    stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16") if in_rate != out_rate else None
    for i, phonemes in enumerate(sentences):
        with _SYNTH_LOCK:
            audio = voice.phoneme_ids_to_audio(voice.phonemes_to_ids(phonemes))
        if isinstance(audio, tuple):  # (audio, alignments) for voices patched with alignments
            audio = audio[0]
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        scaled = audio / peak if peak > 1e-8 else np.zeros_like(audio)  # piper's normalize_audio
        pcm = np.clip(np.round(scaled * 32767.0), -32768, 32767).astype(np.int16)
        if stream is not None:
            pcm = stream.resample_chunk(pcm, last=i == len(sentences) - 1)
        if pcm.size:
            yield pcm.tobytes()


class AudioCache:
    """LRU of synthesized audio keyed by (text, sample rate); bounded by total bytes. Thread-safe."""

    def __init__(self, max_bytes: int = 32 << 20, max_text_chars: int = 600):
        self.max_bytes = max_bytes
        self.max_text_chars = max_text_chars
        self._items: OrderedDict[tuple[str, int], tuple[bytes, ...]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(text: str, rate: int) -> tuple[str, int]:
        return (" ".join(text.split()), rate)

    def get(self, text: str, rate: int) -> tuple[bytes, ...] | None:
        with self._lock:
            chunks = self._items.get(self.key(text, rate))
            if chunks is None:
                self.misses += 1
                return None
            self._items.move_to_end(self.key(text, rate))
            self.hits += 1
            return chunks

    def put(self, text: str, rate: int, chunks: tuple[bytes, ...]) -> None:
        size = sum(len(c) for c in chunks)
        if len(text) > self.max_text_chars or size > self.max_bytes:
            return
        with self._lock:
            key = self.key(text, rate)
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= sum(len(c) for c in old)
            self._items[key] = chunks
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= sum(len(c) for c in evicted)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items
