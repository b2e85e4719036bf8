"""Per-stream transcoders; G.722 only where the optional ``g722`` package is installed."""

from __future__ import annotations

import numpy as np
import pytest

from voicebot.rtp.codecs import g722_available, make_decoder, make_encoder, supported_codecs
from voicebot.rtp.sdp import G722, PCMA, PCMU, Codec, answer_offer


def sine(samples: int, hz: float = 500.0) -> bytes:
    return (np.sin(2 * np.pi * hz * np.arange(samples) / 8000) * 8000).astype("<i2").tobytes()


@pytest.mark.parametrize("codec", [PCMU, PCMA])
def test_g711_transcoders(codec: Codec) -> None:
    pcm = sine(160)
    payload = make_encoder(codec)(pcm)
    assert len(payload) == 160
    decoded = np.frombuffer(make_decoder(codec)(payload), "<i2").astype(float)
    assert np.max(np.abs(decoded - np.frombuffer(pcm, "<i2"))) < 300


def test_unknown_codec() -> None:
    with pytest.raises(ValueError):
        make_encoder(Codec("G729", 18))
    with pytest.raises(ValueError):
        make_decoder(Codec("opus", 111, 48000))


def test_supported_codecs_follow_the_optional_package() -> None:
    assert supported_codecs()[:2] == (PCMU, PCMA)
    assert (G722 in supported_codecs()) == g722_available()


def test_g722_at_8khz() -> None:
    pytest.importorskip("G722")
    encode, decode = make_encoder(G722), make_decoder(G722)
    pcm = sine(1600)
    frames = [encode(pcm[i : i + 320]) for i in range(0, len(pcm), 320)]
    assert {len(f) for f in frames} == {160}  # 64 kbit/s: 160 octets per 20 ms
    out = np.frombuffer(b"".join(decode(f) for f in frames), "<i2").astype(float)
    src = np.frombuffer(pcm, "<i2").astype(float)
    best = max(np.corrcoef(src[:1400], out[k : 1400 + k])[0, 1] for k in range(60))  # codec delay
    assert best > 0.99
    _, params = answer_offer(
        (
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=audio 4000 RTP/AVP 9 0\r\n"
        ),
        address="127.0.0.1",
        port=20000,
        session_id=1,
        version=1,
        codecs=supported_codecs(),
    )
    assert params.codec == G722
