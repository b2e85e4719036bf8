"""RTP/RTCP wire formats: known bytes, round trips, and any bytes -> packet or RtpPacketError."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicebot.rtp.errors import RtpPacketError
from voicebot.rtp.packet import (
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpPacket,
    RtpPacket,
    SdesChunk,
    SenderReport,
    SourceDescription,
    UnknownRtcp,
    is_rtcp,
    parse_rtcp,
    serialize_rtcp,
)

# A PCMU packet as a softphone sends it: V=2, M=1, PT=0, seq 0x1234, ts 0x0000abcd, SSRC 0xdeadbeef.
PCMU_PACKET = bytes.fromhex("80801234 0000abcd deadbeef") + b"\xff" * 160


def test_parse_known_packet() -> None:
    packet = RtpPacket.parse(PCMU_PACKET)
    assert packet == RtpPacket(0, 0x1234, 0xABCD, 0xDEADBEEF, b"\xff" * 160, marker=True)
    assert bytes(packet) == PCMU_PACKET


def test_csrc_extension_and_padding() -> None:
    header = bytes.fromhex("b2 08 0001 00000002 00000003") + bytes.fromhex("00000004 00000005")
    extension = bytes.fromhex("bede 0001 10ff0000")
    data = header + extension + b"abc" + b"\x00\x00\x03"  # 3 octets of padding
    packet = RtpPacket.parse(data)
    assert packet.csrc == (4, 5)
    assert packet.extension_profile == 0xBEDE
    assert packet.extension == bytes.fromhex("10ff0000")
    assert packet.payload == b"abc"
    assert RtpPacket.parse(bytes(packet)) == packet


@pytest.mark.parametrize(
    "data",
    [
        b"",
        bytes(11),
        bytes.fromhex("40000000 00000000 00000000"),  # version 1
        bytes.fromhex("81000000 00000000 00000000"),  # CSRC count past the end
        bytes.fromhex("90000000 00000000 00000000 bede0002"),  # extension past the end
        bytes.fromhex("a0000000 00000000 00000000 05"),  # padding longer than the payload
        bytes.fromhex("a0000000 00000000 00000000 00"),  # zero padding count
    ],
)
def test_malformed_rtp(data: bytes) -> None:
    with pytest.raises(RtpPacketError):
        RtpPacket.parse(data)


def test_serialize_rejects_out_of_range_fields() -> None:
    with pytest.raises(RtpPacketError):
        bytes(RtpPacket(128, 0, 0, 0))
    with pytest.raises(RtpPacketError):
        bytes(RtpPacket(0, 1 << 16, 0, 0))
    with pytest.raises(RtpPacketError):
        bytes(RtpPacket(0, 0, 0, 0, extension_profile=1, extension=b"abc"))


def test_is_rtcp_demux() -> None:
    assert not is_rtcp(PCMU_PACKET)
    assert is_rtcp(bytes(ReceiverReport(1)))
    assert is_rtcp(bytes.fromhex("80c8"))  # SR
    assert not is_rtcp(bytes.fromhex("8065"))  # RTP with telephone-event pt 101
    assert not is_rtcp(b"\x80")


def test_compound_rtcp_round_trip() -> None:
    block = ReportBlock(0x11, 25, -3, 0x1_0005, 80, 0x12345678, 65536)
    packets: list[RtcpPacket] = [
        SenderReport(0x22, 0xE1234567_89ABCDEF, 1600, 50, 8000, (block,)),
        SourceDescription.for_cname(0x22, "voicebot@127.0.0.1"),
        Bye((0x22,), "call ended"),
    ]
    data = serialize_rtcp(packets)
    assert len(data) % 4 == 0
    parsed = parse_rtcp(data)
    assert parsed == packets
    sdes = parsed[1]
    assert isinstance(sdes, SourceDescription)
    assert sdes.chunks[0].cname == "voicebot@127.0.0.1"


def test_known_receiver_report_bytes() -> None:
    # RR from SSRC 1 with one block: fraction 0x40, cumulative lost 2, highest 0x00010010, jitter 7
    data = bytes.fromhex("81c90007 00000001 00000002 40000002 00010010 00000007 00000000 00000000")
    (rr,) = parse_rtcp(data)
    assert rr == ReceiverReport(1, (ReportBlock(2, 0x40, 2, 0x10010, 7, 0, 0),))
    assert bytes(rr) == data


def test_rtcp_padding_and_unknown_types() -> None:
    app = bytes.fromhex("80cc0002 00000001 41424344")  # APP
    padded_bye = bytes.fromhex("a1cb0002 00000009 00000004")  # BYE with 4 octets of padding
    parsed = parse_rtcp(bytes(ReceiverReport(9)) + app + padded_bye)
    assert parsed[1] == UnknownRtcp(204, 0, bytes.fromhex("00000001 41424344"))
    assert parsed[2] == Bye((9,))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        bytes.fromhex("81c9"),
        bytes.fromhex("41c90001 00000001"),  # version 1
        bytes.fromhex("81c90007 00000001"),  # length past the datagram
        bytes.fromhex("81c90001 00000001"),  # report block missing
        bytes.fromhex("80640001 00000001"),  # not an RTCP type
        bytes.fromhex("81ca0001 00000001"),  # SDES item list not terminated
        bytes.fromhex("80cb0001 05616263"),  # BYE reason past the packet
    ],
)
def test_malformed_rtcp(data: bytes) -> None:
    with pytest.raises(RtpPacketError):
        parse_rtcp(data)


u32 = st.integers(0, 2**32 - 1)
rtp_packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    sequence=st.integers(0, 65535),
    timestamp=u32,
    ssrc=u32,
    payload=st.binary(max_size=200),
    marker=st.booleans(),
    csrc=st.lists(u32, max_size=15).map(tuple),
    extension_profile=st.none() | st.integers(0, 65535),
).map(
    lambda p: (
        p
        if p.extension_profile is None
        else RtpPacket(
            p.payload_type,
            p.sequence,
            p.timestamp,
            p.ssrc,
            p.payload,
            p.marker,
            p.csrc,
            p.extension_profile,
            p.payload[: len(p.payload) // 4 * 4],
        )
    )
)
blocks = st.builds(
    ReportBlock, u32, st.integers(0, 255), st.integers(-(2**23), 2**23 - 1), u32, u32, u32, u32
)
rtcp_packets: st.SearchStrategy[RtcpPacket] = st.one_of(
    st.builds(
        SenderReport, u32, st.integers(0, 2**64 - 1), u32, u32, u32, st.lists(blocks, max_size=3).map(tuple)
    ),
    st.builds(ReceiverReport, u32, st.lists(blocks, max_size=31).map(tuple)),
    st.builds(
        SourceDescription,
        st.lists(
            st.builds(
                SdesChunk,
                u32,
                st.lists(st.tuples(st.integers(1, 255), st.binary(max_size=20)), max_size=3).map(tuple),
            ),
            max_size=3,
        ).map(tuple),
    ),
    st.builds(Bye, st.lists(u32, max_size=4).map(tuple), st.text(max_size=40)),
)


@given(rtp_packets)
def test_rtp_round_trip(packet: RtpPacket) -> None:
    assert RtpPacket.parse(bytes(packet)) == packet


@given(st.lists(rtcp_packets, min_size=1, max_size=4))
def test_rtcp_round_trip(packets: list[RtcpPacket]) -> None:
    assert parse_rtcp(serialize_rtcp(packets)) == packets


@settings(max_examples=500)
@given(st.binary(max_size=300))
def test_any_bytes_parse_or_raise_rtp_packet_error(data: bytes) -> None:
    with contextlib.suppress(RtpPacketError):
        packet = RtpPacket.parse(data)
        assert RtpPacket.parse(bytes(packet)) == packet
    with contextlib.suppress(RtpPacketError):
        packets = parse_rtcp(data)
        assert parse_rtcp(serialize_rtcp(packets)) == packets


@settings(max_examples=300)
@given(st.lists(rtcp_packets, min_size=1, max_size=3), st.data())
def test_mutated_rtcp_parse_or_raise(packets: list[RtcpPacket], data: st.DataObject) -> None:
    raw = bytearray(serialize_rtcp(packets))
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] = data.draw(st.integers(0, 255))
    with contextlib.suppress(RtpPacketError):
        parse_rtcp(bytes(raw))
