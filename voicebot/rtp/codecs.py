"""Per-stream audio encoders and decoders between 8 kHz PCM16 and the negotiated payload format.

G.711 is stateless; G.722 (ADPCM) keeps state per direction, so each stream gets its own pair.
G.722 needs the optional ``G722`` extension (PyPI ``g722``); without it it is not offered.
Its 8 kHz mode keeps our pipeline at 8 kHz while staying compatible with wideband peers.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from voicebot.rtp import g711
from voicebot.rtp.sdp import G722, PCMA, PCMU, Codec

__all__ = ["Transcoder", "g722_available", "make_decoder", "make_encoder", "supported_codecs"]

Transcoder = Callable[[bytes], bytes]


def _g722_module() -> Any:
    try:
        return importlib.import_module("G722")
    except ImportError:
        return None


def g722_available() -> bool:
    return _g722_module() is not None


def supported_codecs() -> tuple[Codec, ...]:
    """What we can offer or accept, best first."""
    return (PCMU, PCMA, G722) if g722_available() else (PCMU, PCMA)


def _g722(kind: str) -> Transcoder:
    module = _g722_module()
    if module is None:
        raise ValueError("G.722 needs the optional 'g722' package")
    state = module.G722(8000, 64000)
    if kind == "encode":
        return lambda pcm: bytes(state.encode(np.frombuffer(pcm, dtype="<i2")))
    return lambda data: np.asarray(state.decode(data), dtype="<i2").tobytes()


def make_encoder(codec: Codec) -> Transcoder:
    """PCM16 (8 kHz) -> payload for ``codec``."""
    name = codec.name.upper()
    if name == PCMU.name:
        return g711.ulaw_encode
    if name == PCMA.name:
        return g711.alaw_encode
    if name == G722.name:
        return _g722("encode")
    raise ValueError(f"no encoder for {codec.name}")


def make_decoder(codec: Codec) -> Transcoder:
    """Payload for ``codec`` -> PCM16 (8 kHz)."""
    name = codec.name.upper()
    if name == PCMU.name:
        return g711.ulaw_decode
    if name == PCMA.name:
        return g711.alaw_decode
    if name == G722.name:
        return _g722("decode")
    raise ValueError(f"no decoder for {codec.name}")
