"""G.711: bit-exact with the tables the stdlib audioop produced (kept in tests/data/rtp)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicebot.rtp.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

DATA = Path(__file__).parent.parent / "data" / "rtp"
ALL_SAMPLES = np.arange(-32768, 32768, dtype="<i2").tobytes()
ALL_CODES = bytes(range(256))


def test_encode_every_sample_matches_audioop() -> None:
    assert ulaw_encode(ALL_SAMPLES) == (DATA / "audioop_lin2ulaw.bin").read_bytes()
    assert alaw_encode(ALL_SAMPLES) == (DATA / "audioop_lin2alaw.bin").read_bytes()


def test_decode_every_code_matches_audioop() -> None:
    assert ulaw_decode(ALL_CODES) == (DATA / "audioop_ulaw2lin.bin").read_bytes()
    assert alaw_decode(ALL_CODES) == (DATA / "audioop_alaw2lin.bin").read_bytes()


@pytest.mark.parametrize(
    ("sample", "ulaw", "alaw"),
    [(0, 0xFF, 0xD5), (-1, 0x7E, 0x55), (32767, 0x80, 0xAA), (-32768, 0x00, 0x2A), (1000, 0xCE, 0xFA)],
)
def test_known_values(sample: int, ulaw: int, alaw: int) -> None:
    pcm = np.array([sample], dtype="<i2").tobytes()
    assert ulaw_encode(pcm) == bytes([ulaw])
    assert alaw_encode(pcm) == bytes([alaw])


def test_silence_decodes_to_near_zero() -> None:
    assert ulaw_decode(b"\xff") == b"\x00\x00"
    assert np.frombuffer(alaw_decode(b"\xd5"), "<i2")[0] == 8


def test_codes_round_trip() -> None:
    # decode then encode returns the code (mu-law has two codes for zero: 0x7F and 0xFF)
    assert alaw_encode(alaw_decode(ALL_CODES)) == ALL_CODES
    back = ulaw_encode(ulaw_decode(ALL_CODES))
    assert back == ALL_CODES.replace(b"\x7f", b"\xff")


@given(st.binary(max_size=400).filter(lambda b: len(b) % 2 == 0))
def test_quantization_error_is_bounded(pcm: bytes) -> None:
    original = np.frombuffer(pcm, "<i2").astype(np.int32)
    for encode, decode in ((ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)):
        decoded = np.frombuffer(decode(encode(pcm)), "<i2").astype(np.int32)
        assert len(decoded) == len(original)
        # G.711 keeps about 4 significant bits: the error stays within 1/16 of the magnitude + a step
        assert np.all(np.abs(decoded - original) <= np.abs(original) // 16 + 1100)


def test_odd_length_is_refused() -> None:
    with pytest.raises(ValueError):
        ulaw_encode(b"\x00")
