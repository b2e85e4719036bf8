"""ITU-T G.711 mu-law and A-law for PCM16 little-endian mono, vectorized with numpy.

The tables are built once at import from the reference algorithm (Sun's g711.c, which the stdlib
``audioop`` also used): the encoders quantize 14-bit (mu-law) or 13-bit (A-law) magnitudes exactly as
G.711 specifies, so the output is bit-exact with audioop and any conforming implementation.
Encoding is one table lookup per sample over all 65536 int16 values; decoding one over 256 codes.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["alaw_decode", "alaw_encode", "ulaw_decode", "ulaw_encode"]

_ULAW_SEG_END = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_ALAW_SEG_END = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)


def _all_samples() -> npt.NDArray[np.int32]:
    # Index i of an encode table is the uint16 bit pattern of the int16 sample.
    return np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.int16).astype(np.int32)


def _build_ulaw_encode() -> npt.NDArray[np.uint8]:
    pcm = _all_samples() >> 2  # 14-bit
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(pcm), 8159) + 0x21  # clip, add the bias (0x84 >> 2)
    seg = np.searchsorted(_ULAW_SEG_END, mag, side="left")
    code = (seg << 4) | ((mag >> (seg + 1)) & 0x0F)
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def _build_alaw_encode() -> npt.NDArray[np.uint8]:
    pcm = _all_samples() >> 3  # 13-bit
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    mag = np.where(pcm >= 0, pcm, -pcm - 1)
    seg = np.searchsorted(_ALAW_SEG_END, mag, side="left")
    shift = np.where(seg < 2, 1, seg)
    code = (seg << 4) | ((mag >> shift) & 0x0F)
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def _build_ulaw_decode() -> npt.NDArray[np.int16]:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype("<i2")


def _build_alaw_decode() -> npt.NDArray[np.int16]:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (a & 0x70) >> 4
    t = (a & 0x0F) << 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & 0x80, t, -t).astype("<i2")


_ULAW_ENC = _build_ulaw_encode()
_ALAW_ENC = _build_alaw_encode()
_ULAW_DEC = _build_ulaw_decode()
_ALAW_DEC = _build_alaw_decode()


def _samples(pcm16: bytes) -> npt.NDArray[np.uint16]:
    if len(pcm16) % 2:
        raise ValueError("PCM16 audio must have an even number of bytes")
    return np.frombuffer(pcm16, dtype="<u2")


def ulaw_encode(pcm16: bytes) -> bytes:
    """PCM16 LE mono -> G.711 mu-law, one byte per sample."""
    return _ULAW_ENC[_samples(pcm16)].tobytes()


def alaw_encode(pcm16: bytes) -> bytes:
    """PCM16 LE mono -> G.711 A-law, one byte per sample."""
    return _ALAW_ENC[_samples(pcm16)].tobytes()


def ulaw_decode(data: bytes) -> bytes:
    """G.711 mu-law -> PCM16 LE mono."""
    return _ULAW_DEC[np.frombuffer(data, dtype=np.uint8)].tobytes()


def alaw_decode(data: bytes) -> bytes:
    """G.711 A-law -> PCM16 LE mono."""
    return _ALAW_DEC[np.frombuffer(data, dtype=np.uint8)].tobytes()
