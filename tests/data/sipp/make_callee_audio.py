"""Generate the called parties' audio for the uas_campaign_*.xml SIPp scenarios (and the benchmark's
bench/sipp/campaign_callees.xml): 8 kHz mono G.711 mu-law WAV files (format tag 7, as SIPp's
``rtp_stream`` with payload type 0 wants, like caller_question_ulaw.wav).

Speech is synthesized once with the project's Piper voice (models/piper-joe, the same
``synthesize_chunks`` path as every call, resampled to 8 kHz by soxr), scaled to a -6 dBFS peak,
framed in digital silence (lead-in, and a tail so the far end's voice activity detection sees the
utterance end on real packets rather than on a stream that stops) and mu-law encoded with
voicebot.rtp.g711 (see ``ulaw_wav`` for the layout SIPp needs). The voicemail greeting ends in a
1000 Hz beep (0.5 s) after a short gap. Piper samples its noise, so a regenerated file sounds the
same but is not byte-identical.

    .venv/bin/python tests/data/sipp/make_callee_audio.py [--models models] [--out tests/data/sipp]

Prints each file's duration and text.
"""

from __future__ import annotations

import argparse
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from voicebot.rtp.g711 import ulaw_encode  # noqa: E402

RATE = 8000
PEAK = 0.5  # -6 dBFS
BEEP_HZ = 1000.0
BEEP_S = 0.5
BEEP_GAP_S = 0.4  # silence between the end of the greeting and the beep
PACKET_BYTES = 160  # 20 ms of mu-law, one RTP packet
HEADER_BYTES = 44


@dataclass(frozen=True)
class Clip:
    name: str
    text: str
    lead_s: float = 0.1
    tail_s: float = 1.0
    beep: bool = False


CLIPS = (
    # a person answering: a short "Hello?" and then silence (answering-machine detection: HUMAN)
    Clip("callee_hello.wav", "Hello?", lead_s=0.2, tail_s=1.5),
    Clip("callee_yes_i_will_come.wav", "Yes, I will come."),
    Clip("callee_move_it.wav", "Can we move it to another time please?"),
    Clip("callee_first_one.wav", "The first one, please."),
    Clip("callee_four.wav", "Four."),
    Clip("callee_yes_i_would.wav", "Yes, I would."),
    Clip("callee_delivery_slow.wav", "The delivery was a bit slow."),
    Clip("callee_nothing_thank_you.wav", "Nothing, thank you."),
    # an answering machine: a long greeting, then the beep, then silence while the message is left
    Clip(
        "callee_voicemail_greeting.wav",
        "Hi, you have reached Anna. I can't take your call right now, please leave a message after the tone.",
        lead_s=0.2,
        tail_s=0.5,
        beep=True,
    ),
)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(RATE * seconds), dtype=np.float64)


def beep() -> np.ndarray:
    t = np.arange(round(RATE * BEEP_S)) / RATE
    tone = np.sin(2 * np.pi * BEEP_HZ * t)
    fade = round(RATE * 0.005)  # 5 ms ramps: no clicks
    ramp = np.linspace(0.0, 1.0, fade)
    tone[:fade] *= ramp
    tone[-fade:] *= ramp[::-1]
    return tone * PEAK


def speech(voice: object, text: str) -> np.ndarray:
    from voicebot.pipeline.speech_tts import synthesize_chunks

    pcm = b"".join(synthesize_chunks(voice, text, RATE))  # type: ignore[arg-type]
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768.0
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    return samples * (PEAK / peak) if peak > 0 else samples


def ulaw_wav(samples: np.ndarray) -> bytes:
    """A canonical RIFF WAVE file (44-byte header, no fact chunk) of G.711 mu-law (format tag 7),
    8 kHz mono, whose total size is a whole number of 20 ms packets.

    SIPp 3.6 (Debian's sip-tester) streams an rtp_stream file as it is, header included: the
    header becomes a 5.5 ms click at the start of the first packet, and a last partial packet
    would be filled from the start of the file (the header again). Padding the data with silence
    to whole packets keeps the end clean; later SIPp versions skip the header."""
    pcm16 = np.clip(np.round(samples * 32767.0), -32768, 32767).astype("<i2").tobytes()
    data = ulaw_encode(pcm16)
    data += b"\xff" * (-(HEADER_BYTES + len(data)) % PACKET_BYTES)  # mu-law silence
    fmt = struct.pack("<HHIIHH", 7, 1, RATE, RATE, 1, 8)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    wav = b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks
    assert len(wav) % PACKET_BYTES == 0 and wav.index(b"data") + 8 == HEADER_BYTES
    return wav


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()

    from piper import PiperVoice

    from voicebot.pipeline.speech import VOICE_FILE, VOICE_MODEL

    path = args.models / VOICE_MODEL / VOICE_FILE
    voice = PiperVoice.load(path, config_path=path.with_name(VOICE_FILE + ".json"))
    for clip in CLIPS:
        parts = [silence(clip.lead_s), speech(voice, clip.text)]
        if clip.beep:
            parts += [silence(BEEP_GAP_S), beep()]
        parts.append(silence(clip.tail_s))
        samples = np.concatenate(parts)
        wav = ulaw_wav(samples)
        (args.out / clip.name).write_bytes(wav)
        spoken = len(parts[1]) / RATE
        extra = f" + {BEEP_GAP_S:.1f} s gap + {BEEP_HZ:.0f} Hz beep {BEEP_S:.1f} s" if clip.beep else ""
        seconds = (len(wav) - HEADER_BYTES) / RATE
        print(f"{clip.name}: {seconds:.2f} s (speech {spoken:.2f} s{extra}) {clip.text!r}")


if __name__ == "__main__":
    main()
