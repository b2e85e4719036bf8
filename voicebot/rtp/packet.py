"""RTP and RTCP wire formats (RFC 3550), demultiplexed per RFC 5761.

Every packet is a frozen dataclass with ``parse()`` (or :func:`parse_rtcp` for a compound RTCP packet)
and ``bytes(packet)``. Parsing drops padding and is round-trip stable: ``parse(bytes(p)) == p``.
Malformed input raises :class:`RtpPacketError`, never another exception type, because these bytes
come straight off a UDP socket anyone can write to.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from voicebot.rtp.errors import RtpPacketError

__all__ = [
    "RTCP_BYE",
    "RTCP_RR",
    "RTCP_SDES",
    "RTCP_SR",
    "SDES_CNAME",
    "Bye",
    "ReceiverReport",
    "ReportBlock",
    "RtcpPacket",
    "RtpPacket",
    "SdesChunk",
    "SenderReport",
    "SourceDescription",
    "UnknownRtcp",
    "is_rtcp",
    "parse_rtcp",
    "serialize_rtcp",
]

RTP_VERSION = 2
RTCP_SR, RTCP_RR, RTCP_SDES, RTCP_BYE = 200, 201, 202, 203
SDES_CNAME = 1

_RTP_HEADER = struct.Struct("!BBHII")
_RTCP_HEADER = struct.Struct("!BBH")
_REPORT_BLOCK = struct.Struct("!IB3sIIII")
_SENDER_INFO = struct.Struct("!IQIII")


def _check_u(name: str, value: int, bits: int) -> None:
    if not 0 <= value < (1 << bits):
        raise RtpPacketError(f"{name} {value} does not fit in {bits} bits")


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 section 4: RTCP packet types 192-223 show as RTP payload types 64-95."""
    return len(data) >= 2 and 64 <= (data[1] & 0x7F) <= 95


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet. ``extension`` is the header extension's data (a multiple of 4 octets)."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension_profile: int | None = None
    extension: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        if len(data) < _RTP_HEADER.size:
            raise RtpPacketError(f"RTP packet of {len(data)} octets is shorter than its header")
        first, second, sequence, timestamp, ssrc = _RTP_HEADER.unpack_from(data)
        if first >> 6 != RTP_VERSION:
            raise RtpPacketError(f"RTP version {first >> 6} is not 2")
        end = len(data)
        if first & 0x20:  # padding: the last octet counts the padding octets, itself included
            count = data[-1]
            if count == 0 or count > end - _RTP_HEADER.size:
                raise RtpPacketError("bad RTP padding length")
            end -= count
        pos = _RTP_HEADER.size
        csrc_count = first & 0x0F
        if pos + 4 * csrc_count > end:
            raise RtpPacketError("RTP CSRC list runs past the packet")
        csrc = struct.unpack_from(f"!{csrc_count}I", data, pos)
        pos += 4 * csrc_count
        profile: int | None = None
        extension = b""
        if first & 0x10:
            if pos + 4 > end:
                raise RtpPacketError("RTP header extension runs past the packet")
            profile, words = struct.unpack_from("!HH", data, pos)
            pos += 4
            if pos + 4 * words > end:
                raise RtpPacketError("RTP header extension runs past the packet")
            extension = bytes(data[pos : pos + 4 * words])
            pos += 4 * words
        return cls(
            payload_type=second & 0x7F,
            sequence=sequence,
            timestamp=timestamp,
            ssrc=ssrc,
            payload=bytes(data[pos:end]),
            marker=bool(second & 0x80),
            csrc=tuple(csrc),
            extension_profile=profile,
            extension=extension,
        )

    def __bytes__(self) -> bytes:
        _check_u("payload type", self.payload_type, 7)
        _check_u("sequence", self.sequence, 16)
        _check_u("timestamp", self.timestamp, 32)
        _check_u("ssrc", self.ssrc, 32)
        if len(self.csrc) > 15:
            raise RtpPacketError("at most 15 CSRCs")
        for source in self.csrc:
            _check_u("csrc", source, 32)
        first = (RTP_VERSION << 6) | len(self.csrc)
        ext = b""
        if self.extension_profile is not None:
            _check_u("extension profile", self.extension_profile, 16)
            if len(self.extension) % 4 or len(self.extension) >= 4 << 16:
                raise RtpPacketError("RTP header extension must be a multiple of 4 octets")
            first |= 0x10
            ext = struct.pack("!HH", self.extension_profile, len(self.extension) // 4) + self.extension
        elif self.extension:
            raise RtpPacketError("RTP header extension data needs a profile")
        second = self.payload_type | (0x80 if self.marker else 0)
        return b"".join(
            (
                _RTP_HEADER.pack(first, second, self.sequence, self.timestamp, self.ssrc),
                struct.pack(f"!{len(self.csrc)}I", *self.csrc),
                ext,
                self.payload,
            )
        )


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """RFC 3550 section 6.4.1: one source's reception report. ``cumulative_lost`` is signed 24-bit."""

    ssrc: int
    fraction_lost: int
    cumulative_lost: int
    highest_seq: int
    jitter: int
    lsr: int
    dlsr: int

    @classmethod
    def parse(cls, data: bytes, pos: int) -> ReportBlock:
        ssrc, fraction, lost, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(data, pos)
        cumulative = int.from_bytes(lost, "big", signed=True)
        return cls(ssrc, fraction, cumulative, highest, jitter, lsr, dlsr)

    def __bytes__(self) -> bytes:
        _check_u("fraction lost", self.fraction_lost, 8)
        if not -(1 << 23) <= self.cumulative_lost < (1 << 23):
            raise RtpPacketError("cumulative lost does not fit in 24 bits")
        for name in ("ssrc", "highest_seq", "jitter", "lsr", "dlsr"):
            _check_u(name, getattr(self, name), 32)
        lost = self.cumulative_lost.to_bytes(3, "big", signed=True)
        return _REPORT_BLOCK.pack(
            self.ssrc, self.fraction_lost, lost, self.highest_seq, self.jitter, self.lsr, self.dlsr
        )


def _header(packet_type: int, count: int, body: bytes) -> bytes:
    if count > 31:
        raise RtpPacketError("an RTCP packet holds at most 31 items")
    if len(body) % 4:
        raise RtpPacketError("RTCP body must be a multiple of 4 octets")
    return _RTCP_HEADER.pack((RTP_VERSION << 6) | count, packet_type, len(body) // 4) + body


def _blocks(body: bytes, pos: int, count: int) -> tuple[ReportBlock, ...]:
    if pos + count * _REPORT_BLOCK.size > len(body):
        raise RtpPacketError("RTCP report blocks run past the packet")
    return tuple(ReportBlock.parse(body, pos + i * _REPORT_BLOCK.size) for i in range(count))


@dataclass(frozen=True, slots=True)
class SenderReport:
    """RFC 3550 section 6.4.1 (SR). ``ntp_timestamp`` is the 64-bit NTP format."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()

    @classmethod
    def parse(cls, count: int, body: bytes) -> SenderReport:
        if len(body) < _SENDER_INFO.size:
            raise RtpPacketError("RTCP SR is shorter than its sender info")
        ssrc, ntp, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(body)
        return cls(ssrc, ntp, rtp_ts, packets, octets, _blocks(body, _SENDER_INFO.size, count))

    def __bytes__(self) -> bytes:
        _check_u("ntp timestamp", self.ntp_timestamp, 64)
        for name in ("ssrc", "rtp_timestamp", "packet_count", "octet_count"):
            _check_u(name, getattr(self, name), 32)
        info = _SENDER_INFO.pack(
            self.ssrc, self.ntp_timestamp, self.rtp_timestamp, self.packet_count, self.octet_count
        )
        body = info + b"".join(bytes(block) for block in self.reports)
        return _header(RTCP_SR, len(self.reports), body)


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    """RFC 3550 section 6.4.2 (RR)."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()

    @classmethod
    def parse(cls, count: int, body: bytes) -> ReceiverReport:
        if len(body) < 4:
            raise RtpPacketError("RTCP RR is shorter than its SSRC")
        return cls(struct.unpack_from("!I", body)[0], _blocks(body, 4, count))

    def __bytes__(self) -> bytes:
        _check_u("ssrc", self.ssrc, 32)
        body = struct.pack("!I", self.ssrc) + b"".join(bytes(block) for block in self.reports)
        return _header(RTCP_RR, len(self.reports), body)


@dataclass(frozen=True, slots=True)
class SdesChunk:
    """One SDES chunk: a source and its (item type, value) pairs."""

    ssrc: int
    items: tuple[tuple[int, bytes], ...] = ()

    @property
    def cname(self) -> str | None:
        for kind, value in self.items:
            if kind == SDES_CNAME:
                return value.decode("utf-8", "replace")
        return None

    def __bytes__(self) -> bytes:
        _check_u("ssrc", self.ssrc, 32)
        out = bytearray(struct.pack("!I", self.ssrc))
        for kind, value in self.items:
            if not 1 <= kind <= 255 or len(value) > 255:
                raise RtpPacketError("bad SDES item")
            out += bytes((kind, len(value))) + value
        # The item list ends with a null octet, then pads to the next 32-bit boundary.
        out += b"\x00" * (4 - len(out) % 4)
        return bytes(out)


@dataclass(frozen=True, slots=True)
class SourceDescription:
    """RFC 3550 section 6.5 (SDES)."""

    chunks: tuple[SdesChunk, ...] = ()

    @classmethod
    def for_cname(cls, ssrc: int, cname: str) -> SourceDescription:
        return cls((SdesChunk(ssrc, ((SDES_CNAME, cname.encode()),)),))

    @classmethod
    def parse(cls, count: int, body: bytes) -> SourceDescription:
        chunks = []
        pos = 0
        for _ in range(count):
            if pos + 4 > len(body):
                raise RtpPacketError("RTCP SDES chunk runs past the packet")
            ssrc = struct.unpack_from("!I", body, pos)[0]
            pos += 4
            items = []
            while True:
                if pos >= len(body):
                    raise RtpPacketError("RTCP SDES item list is not terminated")
                kind = body[pos]
                if kind == 0:
                    pos = (pos // 4 + 1) * 4  # skip the terminator and padding
                    break
                if pos + 2 > len(body) or pos + 2 + body[pos + 1] > len(body):
                    raise RtpPacketError("RTCP SDES item runs past the packet")
                length = body[pos + 1]
                items.append((kind, bytes(body[pos + 2 : pos + 2 + length])))
                pos += 2 + length
            chunks.append(SdesChunk(ssrc, tuple(items)))
        return cls(tuple(chunks))

    def __bytes__(self) -> bytes:
        return _header(RTCP_SDES, len(self.chunks), b"".join(bytes(c) for c in self.chunks))


@dataclass(frozen=True, slots=True)
class Bye:
    """RFC 3550 section 6.6 (BYE)."""

    sources: tuple[int, ...] = ()
    reason: str = ""

    @classmethod
    def parse(cls, count: int, body: bytes) -> Bye:
        if 4 * count > len(body):
            raise RtpPacketError("RTCP BYE sources run past the packet")
        sources = struct.unpack_from(f"!{count}I", body)
        pos = 4 * count
        reason = ""
        if pos < len(body):
            length = body[pos]
            if pos + 1 + length > len(body):
                raise RtpPacketError("RTCP BYE reason runs past the packet")
            reason = body[pos + 1 : pos + 1 + length].decode("utf-8", "surrogateescape")
        return cls(tuple(sources), reason)

    def __bytes__(self) -> bytes:
        for source in self.sources:
            _check_u("ssrc", source, 32)
        body = struct.pack(f"!{len(self.sources)}I", *self.sources)
        if self.reason:
            text = self.reason.encode("utf-8", "surrogateescape")
            if len(text) > 255:
                raise RtpPacketError("RTCP BYE reason longer than 255 octets")
            body += bytes((len(text),)) + text
            body += b"\x00" * (-len(body) % 4)
        return _header(RTCP_BYE, len(self.sources), body)


@dataclass(frozen=True, slots=True)
class UnknownRtcp:
    """Any other RTCP packet (APP, feedback, XR): kept as is so a compound packet still parses."""

    packet_type: int
    count: int
    body: bytes

    def __bytes__(self) -> bytes:
        _check_u("packet type", self.packet_type, 8)
        return _header(self.packet_type, self.count, self.body)


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Bye | UnknownRtcp


def parse_rtcp(data: bytes) -> list[RtcpPacket]:
    """Parse a compound RTCP packet (RFC 3550 section 6.1) into its parts."""
    if not data:
        raise RtpPacketError("empty RTCP packet")
    packets: list[RtcpPacket] = []
    pos = 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise RtpPacketError("truncated RTCP header")
        first, packet_type, words = _RTCP_HEADER.unpack_from(data, pos)
        if first >> 6 != RTP_VERSION:
            raise RtpPacketError(f"RTCP version {first >> 6} is not 2")
        end = pos + 4 + 4 * words
        if end > len(data):
            raise RtpPacketError("RTCP packet runs past the datagram")
        body = bytes(data[pos + 4 : end])
        if first & 0x20:
            if not body or body[-1] == 0 or body[-1] > len(body):
                raise RtpPacketError("bad RTCP padding length")
            body = body[: -body[-1]]
        count = first & 0x1F
        parsed: RtcpPacket
        if packet_type == RTCP_SR:
            parsed = SenderReport.parse(count, body)
        elif packet_type == RTCP_RR:
            parsed = ReceiverReport.parse(count, body)
        elif packet_type == RTCP_SDES:
            parsed = SourceDescription.parse(count, body)
        elif packet_type == RTCP_BYE:
            parsed = Bye.parse(count, body)
        elif 192 <= packet_type <= 223:
            if len(body) % 4:  # only unpadded bodies can be written back as they are
                body += b"\x00" * (-len(body) % 4)
            parsed = UnknownRtcp(packet_type, count, body)
        else:
            raise RtpPacketError(f"{packet_type} is not an RTCP packet type")
        packets.append(parsed)
        pos = end
    return packets


def serialize_rtcp(packets: Iterable[RtcpPacket]) -> bytes:
    """A compound RTCP packet: the parts back to back."""
    return b"".join(bytes(packet) for packet in packets)
