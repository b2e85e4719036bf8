"""Audio helpers for the speech services: PCM conversion, resampling, G.711 mu-law.

Pure numpy (+ soxr for resampling). The mu-law codec is the ITU-T G.711 table-free formulation
(the one ``audioop.lin2ulaw`` implements; ``audioop`` is deprecated and gone in Python 3.13), so an
evaluation can put audio through exactly what a phone call does to it.
"""

from __future__ import annotations

import numpy as np
import soxr

WHISPER_RATE = 16000

_BIAS = 0x84
_BIAS14 = 0x21
_CLIP14 = 8159
_SEG_END = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])


def pcm16_to_float(pcm: bytes | np.ndarray) -> np.ndarray:
    """16-bit signed PCM (bytes or int16 array) -> float32 in [-1, 1)."""
    samples = np.frombuffer(pcm, dtype=np.int16) if isinstance(pcm, bytes | bytearray) else pcm
    return samples.astype(np.float32) / 32768.0


def float_to_pcm16(audio: np.ndarray) -> np.ndarray:
    """float in [-1, 1] -> int16 (clipped)."""
    return np.clip(np.round(audio * 32767.0), -32768, 32767).astype(np.int16)


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample a mono float32 or int16 signal (soxr, high quality); same dtype back."""
    if from_rate == to_rate or audio.size == 0:
        return audio
    if audio.dtype == np.int16:
        out = soxr.resample(audio.astype(np.float32) / 32768.0, from_rate, to_rate, quality="HQ")
        return float_to_pcm16(out)
    return np.asarray(soxr.resample(audio.astype(np.float32), from_rate, to_rate, quality="HQ"))


def mulaw_encode(pcm: np.ndarray) -> bytes:
    """int16 samples -> G.711 mu-law bytes (bit-exact with ``audioop.lin2ulaw``)."""
    v = pcm.astype(np.int32) >> 2  # 14-bit, arithmetic shift (floors negatives, as audioop does)
    mask = np.where(v < 0, 0x7F, 0xFF)
    v = np.minimum(np.abs(v), _CLIP14) + _BIAS14
    segment = np.searchsorted(_SEG_END, v)  # first segment whose end >= v
    ulaw = np.where(segment >= 8, 0x7F, (segment << 4) | ((v >> (segment + 1)) & 0x0F))
    return ((ulaw ^ mask) & 0xFF).astype(np.uint8).tobytes()


def mulaw_decode(data: bytes) -> np.ndarray:
    """G.711 mu-law bytes -> int16 samples."""
    u = ~np.frombuffer(data, dtype=np.uint8).astype(np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(u & 0x80, -magnitude, magnitude).astype(np.int16)


def telephone_channel(audio: np.ndarray, rate: int, *, out_rate: int = WHISPER_RATE) -> np.ndarray:
    """What a phone call does to audio: resample to 8 kHz, mu-law encode and decode, and back to
    ``out_rate`` (16 kHz for Whisper). Input float32 or int16 mono; output int16."""
    pcm = audio if audio.dtype == np.int16 else float_to_pcm16(audio)
    narrow = resample(pcm, rate, 8000)
    return resample(mulaw_decode(mulaw_encode(narrow)), 8000, out_rate)
