"""Jitter buffer: playout depth, reordering, duplicates, late packets, loss concealment, wrap."""

from __future__ import annotations

import numpy as np

from voicebot.rtp.jitter import JitterBuffer

F = 0.02


def frame(value: int, samples: int = 160) -> bytes:
    return np.full(samples, value, dtype="<i2").tobytes()


def level(pcm: bytes) -> int:
    return int(np.abs(np.frombuffer(pcm, "<i2")).max())


def drain(jb: JitterBuffer, start: float, ticks: int) -> list[bytes | None]:
    return [jb.pop(start + k * F) for k in range(ticks)]


def test_playout_waits_for_the_depth() -> None:
    jb = JitterBuffer(depth_frames=3)
    jb.push(10, 1600, frame(1), now=0.0)
    assert jb.ready_time() == 0.06
    assert jb.pop(0.04) is None
    jb.push(11, 1760, frame(2), now=0.02)
    assert jb.pop(0.06) == frame(1)
    assert jb.pop(0.08) == frame(2)
    assert jb.pop(0.10) is None  # ran dry: buffers again
    assert jb.ready_time() is None


def test_reorders_by_sequence() -> None:
    jb = JitterBuffer(depth_frames=2)
    for seq in (3, 1, 2, 4):
        jb.push(seq, seq * 160, frame(seq), now=0.0)
    assert drain(jb, 0.04, 5) == [frame(1), frame(2), frame(3), frame(4), None]
    assert jb.lost == 0


def test_duplicates_and_late_packets_are_dropped_and_counted() -> None:
    jb = JitterBuffer(depth_frames=1)
    jb.push(1, 0, frame(1), now=0.0)
    jb.push(1, 0, frame(1), now=0.0)  # duplicate while buffered
    jb.push(2, 160, frame(2), now=0.0)
    assert jb.pop(0.02) == frame(1)
    jb.push(1, 0, frame(1), now=0.03)  # duplicate of a played packet
    assert jb.pop(0.04) == frame(2)
    jb.push(0, -160 & 0xFFFFFFFF, frame(0), now=0.05)  # older than anything played: late
    assert (jb.duplicates, jb.late) == (2, 1)


def test_lost_frame_is_concealed_then_silenced() -> None:
    jb = JitterBuffer(depth_frames=1)
    jb.push(1, 0, frame(1000), now=0.0)
    jb.push(7, 960, frame(7), now=0.0)  # 2..6 lost
    out = drain(jb, 0.02, 7)
    assert out[0] == frame(1000)
    levels = [level(f) for f in out[1:6] if f is not None]
    assert levels == [700, 400, 200, 0, 0]  # repeat attenuated, then silence
    assert out[6] == frame(7)
    assert (jb.lost, jb.concealed) == (5, 5)


def test_a_late_packet_arriving_in_time_fills_its_gap() -> None:
    jb = JitterBuffer(depth_frames=3)
    jb.push(1, 0, frame(1), now=0.0)
    jb.push(3, 320, frame(3), now=0.02)
    jb.push(2, 160, frame(2), now=0.05)  # reordered, inside the 60 ms depth
    assert drain(jb, 0.06, 3) == [frame(1), frame(2), frame(3)]
    assert jb.lost == 0


def test_sequence_wrap() -> None:
    jb = JitterBuffer(depth_frames=2)
    seqs = [65534, 65535, 0, 1]
    for i, seq in enumerate([65535, 65534, 1, 0]):
        jb.push(seq, (seqs.index(seq) * 160 - 320) & 0xFFFFFFFF, frame(seq % 7), now=i * 0.001)
    assert drain(jb, 0.04, 4) == [frame(s % 7) for s in seqs]
    assert (jb.lost, jb.late) == (0, 0)


def test_sequence_jump_resets_the_stream() -> None:
    jb = JitterBuffer(depth_frames=1)
    jb.push(100, 16000, frame(1), now=0.0)
    assert jb.pop(0.02) == frame(1)
    jb.push(30000, 999, frame(2), now=0.1)  # a new stream (peer restart): not "late", not lost
    assert jb.pop(0.12) == frame(2)
    assert (jb.late, jb.lost) == (0, 0)


def test_timestamp_jump_backwards_resets() -> None:
    jb = JitterBuffer(depth_frames=1)
    jb.push(100, 800_000, frame(1), now=0.0)
    jb.push(101, 160, frame(2), now=0.0)  # sequence continues, timestamp went far back
    assert jb.buffered == 1
    assert jb.pop(0.02) == frame(2)


def test_silence_suppression_rebuffers_without_loss() -> None:
    jb = JitterBuffer(depth_frames=1)
    jb.push(1, 0, frame(1), now=0.0)
    assert drain(jb, 0.02, 2) == [frame(1), None]
    jb.push(2, 8000, frame(2), now=1.0)  # next talkspurt, sequence continues
    assert jb.pop(1.0) is None
    assert jb.pop(1.02) == frame(2)
    assert jb.lost == 0


def test_loss_during_a_pause_is_counted_but_not_concealed() -> None:
    jb = JitterBuffer(depth_frames=1)
    jb.push(1, 0, frame(1), now=0.0)
    drain(jb, 0.02, 2)
    jb.push(4, 480, frame(4), now=0.5)
    assert jb.pop(0.52) == frame(4)
    assert (jb.lost, jb.concealed) == (2, 0)


def test_longer_packets_become_20ms_frames() -> None:
    jb = JitterBuffer(depth_frames=1)
    jb.push(1, 0, frame(1, 240), now=0.0)  # 30 ms packets
    jb.push(2, 240, frame(2, 240), now=0.0)
    out = drain(jb, 0.02, 4)
    assert out[:3] == [frame(1), frame(1, 80) + frame(2, 80), frame(2)]
    assert out[3] is None


def test_overflow_drops_the_oldest() -> None:
    jb = JitterBuffer(depth_frames=1, max_frames=5)
    for seq in range(1, 9):
        jb.push(seq, seq * 160, frame(seq), now=0.0)
    assert jb.buffered == 5
    assert jb.pop(0.02) == frame(4)
    assert jb.late == 3
