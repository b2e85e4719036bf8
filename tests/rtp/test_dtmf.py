"""RFC 4733: payload format, one digit per event whatever the redundancy, sender packet plan."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicebot.rtp.dtmf import DtmfEvent, DtmfReceiver, dtmf_payloads
from voicebot.rtp.errors import RtpPacketError
from voicebot.rtp.packet import RtpPacket


def test_parse_known_payload() -> None:
    event = DtmfEvent.parse(bytes.fromhex("058a0320"))
    assert event == DtmfEvent(event=5, end=True, volume=10, duration=800)
    assert event.digit == "5"
    assert bytes(event) == bytes.fromhex("058a0320")


def test_short_payload_is_an_error() -> None:
    with pytest.raises(RtpPacketError):
        DtmfEvent.parse(b"\x05\x8a")


@given(st.integers(0, 255), st.booleans(), st.integers(0, 63), st.integers(0, 65535))
def test_round_trip(event: int, end: bool, volume: int, duration: int) -> None:
    dtmf = DtmfEvent(event, end, volume, duration)
    assert DtmfEvent.parse(bytes(dtmf)) == dtmf


def packets(digit: str, timestamp: int, seq: int = 0, ssrc: int = 7) -> list[RtpPacket]:
    return [
        RtpPacket(101, seq + i, timestamp, ssrc, payload, marker=marker)
        for i, (payload, marker) in enumerate(dtmf_payloads(digit))
    ]


def test_each_event_yields_one_digit() -> None:
    receiver = DtmfReceiver()
    stream = packets("1", 1000) + packets("#", 3000, seq=20) + packets("1", 5000, seq=40)
    assert [d for p in stream if (d := receiver.receive(p))] == ["1", "#", "1"]


def test_lost_start_packet_still_yields_the_digit() -> None:
    receiver = DtmfReceiver()
    stream = packets("9", 1000)[3:]
    assert [d for p in stream if (d := receiver.receive(p))] == ["9"]


def test_only_the_end_packets() -> None:
    receiver = DtmfReceiver()
    ends = [p for p in packets("D", 1000) if DtmfEvent.parse(p.payload).end]
    assert len(ends) == 3
    assert [receiver.receive(p) for p in ends] == ["D", None, None]


def test_non_digit_events_are_ignored() -> None:
    receiver = DtmfReceiver()
    assert receiver.receive(RtpPacket(101, 1, 1, 1, bytes(DtmfEvent(16)))) is None  # flash
    assert receiver.receive(RtpPacket(101, 1, 1, 1, b"\x01")) is None


def test_sender_plan() -> None:
    plan = dtmf_payloads("*", duration_ms=160, ptime_ms=20)
    events = [DtmfEvent.parse(payload) for payload, _ in plan]
    assert [marker for _, marker in plan] == [True] + [False] * (len(plan) - 1)
    assert [e.duration for e in events if not e.end] == [160 * k for k in range(1, 8)]
    assert [e.duration for e in events if e.end] == [1280] * 3
    assert {e.event for e in events} == {10}
    assert all(e.volume == 10 for e in events)


@pytest.mark.parametrize("digit", ["", "E", "12", " "])
def test_bad_digit(digit: str) -> None:
    with pytest.raises(ValueError):
        dtmf_payloads(digit)
