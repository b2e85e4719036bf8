"""RFC 4733 telephone events (DTMF digits) in RTP: the payload format, a receiver and a sender.

A digit is one event spread over several packets that share the event's RTP timestamp: a first
packet (marker bit set), updates with a growing duration every packetization interval, and an end
packet sent three times because RTP may lose it. The receiver reports a digit on the first packet of
an event it sees, keyed by (SSRC, timestamp), so a lost start packet or the redundant end packets
never change the count.
"""

from __future__ import annotations

import math
import struct
from collections import deque
from dataclasses import dataclass

from voicebot.rtp.errors import RtpPacketError
from voicebot.rtp.packet import RtpPacket

__all__ = ["DIGITS", "DtmfEvent", "DtmfReceiver", "dtmf_payloads"]

DIGITS = "0123456789*#ABCD"  # event codes 0-15 (RFC 4733 section 3.2)
END_PACKETS = 3
_EVENT = struct.Struct("!BBH")


def event_code(digit: str) -> int:
    code = DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if code < 0:
        raise ValueError(f"{digit!r} is not a DTMF digit (0-9, *, #, A-D)")
    return code


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    """One RFC 4733 event payload. ``volume`` is in -dBm0 (0-63), ``duration`` in RTP clock units."""

    event: int
    end: bool = False
    volume: int = 10
    duration: int = 0

    @property
    def digit(self) -> str | None:
        return DIGITS[self.event] if self.event < len(DIGITS) else None

    @classmethod
    def parse(cls, payload: bytes) -> DtmfEvent:
        # Only the first 4 octets: a payload may carry more events (redundancy, RFC 2198 style).
        if len(payload) < _EVENT.size:
            raise RtpPacketError(f"telephone-event payload of {len(payload)} octets (needs 4)")
        event, flags, duration = _EVENT.unpack_from(payload)
        return cls(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)

    def __bytes__(self) -> bytes:
        if not (0 <= self.event <= 255 and 0 <= self.volume <= 63 and 0 <= self.duration <= 0xFFFF):
            raise RtpPacketError("telephone-event field out of range")
        return _EVENT.pack(self.event, (0x80 if self.end else 0) | self.volume, self.duration)


class DtmfReceiver:
    """Turns telephone-event packets into digits, each exactly once."""

    def __init__(self, memory: int = 16) -> None:
        self._seen: deque[tuple[int, int]] = deque(maxlen=memory)

    def reset(self) -> None:
        self._seen.clear()

    def receive(self, packet: RtpPacket) -> str | None:
        try:
            event = DtmfEvent.parse(packet.payload)
        except RtpPacketError:
            return None
        key = (packet.ssrc, packet.timestamp)
        if key in self._seen or event.digit is None:  # codes above 15 are tones/flash: not digits
            return None
        self._seen.append(key)
        return event.digit


def dtmf_payloads(
    digit: str, *, duration_ms: int = 160, ptime_ms: int = 20, volume: int = 10
) -> list[tuple[bytes, bool]]:
    """The (payload, marker) of each packet for one digit, to send one per ``ptime_ms``.

    All share one RTP timestamp (the event's start); the caller assigns sequence numbers.
    """
    code = event_code(digit)
    if duration_ms <= 0 or ptime_ms <= 0:
        raise ValueError("duration and ptime must be positive")
    step = ptime_ms * 8  # telephone-event's RTP clock is 8 kHz
    updates = max(1, math.ceil(duration_ms / ptime_ms) - 1)
    total = min(0xFFFF, max(step, round(duration_ms * 8)))
    packets = [
        (bytes(DtmfEvent(code, False, volume, min(total, k * step))), k == 1) for k in range(1, updates + 1)
    ]
    packets += [(bytes(DtmfEvent(code, True, volume, total)), False)] * END_PACKETS
    return packets
