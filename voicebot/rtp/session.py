"""A sans-I/O RTP/RTCP session for one negotiated audio stream (RFC 3550, 3551, 4733).

No sockets, no asyncio, no clock: every input carries ``now`` (seconds, any monotonic origin).
The owner feeds datagrams in (``receive_rtp`` / ``receive_rtcp``), arms one timer at ``get_timer()``,
calls ``handle_timer(now)`` when it fires, sends what ``datagrams_to_send(now)`` returns and reads
``next_event()`` until None. Commands (``send_audio``, ``send_dtmf``, ``clear_audio``, ``update``,
``close``) queue work for the next ``datagrams_to_send``.

Sending is paced by the media clock: tick k is at ``start + k * 20 ms`` with RTP timestamp
``base + k * 160``, whether or not anything is sent, so a talkspurt's timestamp reflects the time
elapsed since the last one. A late caller catches up by at most ``MAX_CATCHUP_FRAMES`` frames; the
ticks beyond that are skipped (the audio is delayed, not burst). Nothing goes to an address
``allowed`` refuses, and nothing but RTCP is sent while our direction does not send (hold).
"""

from __future__ import annotations

import math
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from voicebot.rtp.codecs import make_decoder, make_encoder
from voicebot.rtp.dtmf import DIGITS, DtmfReceiver, dtmf_payloads, event_code
from voicebot.rtp.errors import RtpPacketError
from voicebot.rtp.events import (
    AudioReceived,
    ByeReceived,
    DtmfReceived,
    RemoteLatched,
    RtpEvent,
    RtpTimeout,
)
from voicebot.rtp.jitter import JitterBuffer
from voicebot.rtp.packet import (
    Bye,
    ReceiverReport,
    RtcpPacket,
    RtpPacket,
    SenderReport,
    SourceDescription,
    is_rtcp,
    parse_rtcp,
    serialize_rtcp,
)
from voicebot.rtp.sdp import MediaParams
from voicebot.rtp.stats import ReceptionStats, RtpStats, ntp_from_seconds

__all__ = ["FRAME_BYTES", "FRAME_S", "FRAME_SAMPLES", "MAX_CATCHUP_FRAMES", "Datagram", "RtpSession"]

SAMPLE_RATE = 8000
FRAME_S = 0.020
FRAME_SAMPLES = 160
FRAME_BYTES = 2 * FRAME_SAMPLES
MAX_CATCHUP_FRAMES = 3
_EPS = 1e-6  # float slack when comparing a tick time with ``now``
_DTMF_LOW = (697, 770, 852, 941)
_DTMF_HIGH = (1209, 1336, 1477, 1633)
_DTMF_KEYPAD = "123A456B789C*0#D"

Address = tuple[str, int]
Datagram = tuple[bytes, Address, bool]  # (data, destination, is_rtcp)


def _dtmf_tone(digit: str, duration_ms: int) -> bytes:
    """In-band DTMF (when the peer did not negotiate telephone-event), then 40 ms of silence."""
    index = _DTMF_KEYPAD.index(DIGITS[event_code(digit)])
    t = np.arange(duration_ms * SAMPLE_RATE // 1000) / SAMPLE_RATE
    tone = np.sin(2 * np.pi * _DTMF_LOW[index // 4] * t) + np.sin(2 * np.pi * _DTMF_HIGH[index % 4] * t)
    pcm = (tone * 6000).astype("<i2").tobytes()
    return pcm + b"\x00" * (40 * SAMPLE_RATE // 1000 * 2)


class RtpSession:
    def __init__(
        self,
        params: MediaParams,
        *,
        ssrc: int,
        allowed: Callable[[str], bool],
        timeout_s: float = 30.0,
        rtcp_interval_s: float = 5.0,
        jitter_depth_frames: float = 3,
        jitter_max_frames: float | None = None,
        now: float,
        cname: str = "voicebot",
    ) -> None:
        # jitter_max_frames set: adaptive playout delay, from jitter_depth_frames (the minimum) up to
        # it, chosen from the measured interarrival jitter each time the buffer (re)starts
        self._jitter_min_frames = jitter_depth_frames
        self._jitter_max_frames = jitter_max_frames
        self.ssrc = ssrc
        self.cname = cname
        self._params = params
        self._allowed = allowed
        self._timeout_s = timeout_s
        self._rtcp_interval_s = rtcp_interval_s
        self._start = now
        self._now = now
        self._closed = False
        self._events: deque[RtpEvent] = deque()
        self._pending: list[Datagram] = []
        self._stats = RtpStats()
        # outbound
        self._encoder = make_encoder(params.codec)
        self._audio = bytearray()
        self._dtmf_out: deque[tuple[bytes, bool]] = deque()
        self._dtmf_timestamp = 0
        self._sequence = secrets.randbits(16)
        self._timestamp_base = secrets.randbits(32)
        self._tick = 0  # index of the next send tick
        self._drained = True  # the queue ran empty: a gap in ticks starts a new talkspurt
        self._marker = True
        self._sent_since_report = False
        # inbound
        self._decoder = make_decoder(params.codec)
        self._jitter = JitterBuffer(FRAME_SAMPLES, jitter_depth_frames)
        self._dtmf = DtmfReceiver()
        self._remote_ssrc: int | None = None
        self._reception: ReceptionStats | None = None
        self._lost_before = 0  # cumulative loss of earlier remote SSRCs
        self._latched_rtp: Address | None = None
        self._latched_rtcp: Address | None = None
        self._playout_at: float | None = None
        self._last_rx = now
        self._timed_out = False
        self._bye_received = False
        self._lsr = 0
        self._lsr_at: float | None = None
        self._next_rtcp = now + rtcp_interval_s

    # --- properties ---

    @property
    def params(self) -> MediaParams:
        return self._params

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def queued_audio_ms(self) -> float:
        return len(self._audio) / (2 * SAMPLE_RATE / 1000)

    @property
    def remote_rtp_address(self) -> Address | None:
        """Where RTP goes now (latched or from SDP), or None when that address is not allowed."""
        addr = self._latched_rtp or (self._params.remote_address, self._params.remote_port)
        return addr if addr[1] and self._allowed(addr[0]) else None

    @property
    def remote_rtcp_address(self) -> Address | None:
        if self._latched_rtcp is not None:
            return self._latched_rtcp if self._allowed(self._latched_rtcp[0]) else None
        rtp = self.remote_rtp_address
        return (rtp[0], rtp[1] + 1) if rtp is not None else None

    @property
    def stats(self) -> RtpStats:
        reception = self._reception
        return replace(
            self._stats,
            # RFC 3550 A.3 goes negative with duplicates (SIPp repeats DTMF end packets' sequence)
            lost=max(0, self._lost_before + (reception.cumulative_lost if reception else 0)),
            jitter=reception.jitter if reception else 0.0,
            late=self._jitter.late,
            duplicates=self._jitter.duplicates,
            concealed=self._jitter.concealed,
        )

    # --- commands ---

    def send_audio(self, pcm16: bytes) -> None:
        """Queue 8 kHz PCM16 mono audio of any length; it goes out paced, 20 ms per packet."""
        if not self._closed:
            self._audio += pcm16

    def clear_audio(self) -> None:
        """Drop the queued outbound audio (barge-in)."""
        self._audio.clear()

    def send_dtmf(self, digit: str, duration_ms: int = 160) -> None:
        """RFC 4733 events when telephone-event was negotiated, else an in-band tone."""
        if self._closed:
            return
        if self._params.telephone_event_pt is None:
            self._audio += _dtmf_tone(digit, duration_ms)
        else:
            self._dtmf_out.extend(dtmf_payloads(digit, duration_ms=duration_ms, ptime_ms=20))
        self._stats.dtmf_sent += 1

    def update(self, params: MediaParams) -> None:
        """A re-INVITE changed the stream: codec, remote address or direction (hold/resume)."""
        old, self._params = self._params, params
        if params.codec != old.codec:
            self._encoder = make_encoder(params.codec)
            self._decoder = make_decoder(params.codec)
        if (params.remote_address, params.remote_port) != (old.remote_address, old.remote_port):
            self._latched_rtp = self._latched_rtcp = None
        if self._expects_media(params) != self._expects_media(old):
            self._last_rx, self._timed_out = self._now, False
        self._marker = True

    def close(self, now: float) -> None:
        """Queue an RTCP BYE; afterwards the session sends and reports nothing more."""
        if self._closed:
            return
        self._now = now
        self._queue_rtcp(now, bye=True)
        self._closed = True
        self._audio.clear()
        self._dtmf_out.clear()

    # --- input ---

    def receive_rtp(self, data: bytes, addr: tuple[str, int], now: float) -> None:
        self._now = now
        if self._closed:
            return
        if is_rtcp(data):  # RFC 5761 multiplexing on the RTP port
            self.receive_rtcp(data, addr, now)
            return
        source = (addr[0], addr[1])
        if not self._allowed(source[0]):
            self._stats.rejected += 1
            return
        try:
            packet = RtpPacket.parse(data)
        except RtpPacketError:
            self._stats.invalid += 1
            return
        dtmf_pt = self._params.telephone_event_pt
        is_dtmf = dtmf_pt is not None and packet.payload_type == dtmf_pt
        if not is_dtmf and packet.payload_type != self._params.codec.payload_type:
            self._stats.unknown_payload += 1
            return
        if source != self._latched_rtp:
            self._latched_rtp = source
            self._events.append(RemoteLatched(source))
        if packet.ssrc != self._remote_ssrc or self._reception is None:
            reception = self._new_source(packet)
        else:
            reception = self._reception
            if not reception.update_sequence(packet.sequence):
                return
        self._last_rx, self._timed_out = now, False
        self._stats.packets_received += 1
        self._stats.octets_received += len(packet.payload)
        if is_dtmf:
            digit = self._dtmf.receive(packet)
            if digit is not None:
                self._stats.dtmf_received += 1
                self._events.append(DtmfReceived(digit))
            return
        reception.update_jitter(now * SAMPLE_RATE, packet.timestamp)
        if self._jitter_max_frames is not None:
            self._jitter.depth_s = self._adaptive_depth(reception.jitter / SAMPLE_RATE)
        self._jitter.push(packet.sequence, packet.timestamp, self._decoder(packet.payload), now)

    def _adaptive_depth(self, jitter_s: float) -> float:
        """Playout delay for the next talkspurt: three times the interarrival jitter (A.8) plus 5 ms,
        within [jitter_depth_frames, jitter_max_frames] frame times (fractions allowed). Applied
        when the buffer (re)starts, so a delay that proves too short shows as an underrun and is
        raised then."""
        assert self._jitter_max_frames is not None
        frames = (3 * jitter_s + 0.005) / FRAME_S
        return max(self._jitter_min_frames, min(self._jitter_max_frames, frames)) * FRAME_S

    def _new_source(self, packet: RtpPacket) -> ReceptionStats:
        if self._reception is not None:
            self._lost_before += self._reception.cumulative_lost
        self._remote_ssrc = packet.ssrc
        reception = self._reception = ReceptionStats(packet.sequence)
        reception.update_sequence(packet.sequence)
        self._jitter.reset()
        self._dtmf.reset()
        self._playout_at = None
        self._lsr_at = None
        return reception

    def receive_rtcp(self, data: bytes, addr: tuple[str, int], now: float) -> None:
        self._now = now
        if self._closed:
            return
        source = (addr[0], addr[1])
        if not self._allowed(source[0]):
            self._stats.rejected += 1
            return
        try:
            parts = parse_rtcp(data)
        except RtpPacketError:
            self._stats.invalid += 1
            return
        self._latched_rtcp = source
        self._stats.rtcp_received += 1
        for part in parts:
            if isinstance(part, SenderReport):
                self._lsr, self._lsr_at = (part.ntp_timestamp >> 16) & 0xFFFF_FFFF, now
            if isinstance(part, SenderReport | ReceiverReport):
                for block in part.reports:
                    if block.ssrc == self.ssrc:
                        self._remote_report(block.fraction_lost, block.jitter, block.lsr, block.dlsr, now)
            elif isinstance(part, Bye) and not self._bye_received and self._is_remote(part.sources):
                self._bye_received = True
                self._events.append(ByeReceived(part.sources[0] if part.sources else 0))

    def _is_remote(self, sources: tuple[int, ...]) -> bool:
        return self._remote_ssrc is None or self._remote_ssrc in sources

    def _remote_report(self, fraction: int, jitter: int, lsr: int, dlsr: int, now: float) -> None:
        self._stats.remote_fraction_lost, self._stats.remote_jitter = fraction, jitter
        if lsr:  # RFC 3550 6.4.1: round trip = arrival - LSR - DLSR, in 1/65536 s
            arrival = (ntp_from_seconds(now) >> 16) & 0xFFFF_FFFF
            rtt = (arrival - lsr - dlsr) & 0xFFFF_FFFF
            if rtt < 1 << 31:
                self._stats.rtt_s = rtt / 65536

    # --- timers ---

    def _expects_media(self, params: MediaParams) -> bool:
        return params.direction.receives and not params.on_hold

    def _has_output(self) -> bool:
        return bool(self._audio or self._dtmf_out)

    def _tick_time(self, tick: int) -> float:
        return self._start + tick * FRAME_S

    def _current_tick(self, now: float) -> int:
        return math.floor((now - self._start) / FRAME_S + _EPS)

    def get_timer(self) -> float | None:
        """The next deadline: send tick, jitter playout, RTCP report or RTP timeout."""
        if self._closed:
            return None
        deadlines = [self._next_rtcp]
        if self._has_output():
            deadlines.append(self._tick_time(self._tick))
        playout = self._playout_at if self._playout_at is not None else self._jitter.ready_time()
        if playout is not None:
            deadlines.append(playout)
        if self._expects_media(self._params) and not self._timed_out:
            deadlines.append(self._last_rx + self._timeout_s)
        return min(deadlines)

    def handle_timer(self, now: float) -> None:
        self._now = now
        if self._closed:
            return
        self._play_out(now)
        expects = self._expects_media(self._params) and not self._timed_out
        if expects and now >= self._last_rx + self._timeout_s - _EPS:
            self._timed_out = True
            self._events.append(RtpTimeout())
        if now >= self._next_rtcp - _EPS:
            self._queue_rtcp(now, bye=False)
            self._next_rtcp += self._rtcp_interval_s
            if self._next_rtcp <= now:  # the timer fired very late: do not report twice in a row
                self._next_rtcp = now + self._rtcp_interval_s

    def _play_out(self, now: float) -> None:
        if self._playout_at is None:
            ready = self._jitter.ready_time()
            if ready is None or now < ready - _EPS:
                return
            self._playout_at = ready
        while self._playout_at is not None and self._playout_at <= now + _EPS:
            frame = self._jitter.pop(self._playout_at)
            if frame is None:
                self._playout_at = None
                break
            self._events.append(AudioReceived(frame))
            self._playout_at += FRAME_S

    def next_event(self) -> RtpEvent | None:
        return self._events.popleft() if self._events else None

    # --- output ---

    def datagrams_to_send(self, now: float) -> list[Datagram]:
        self._now = now
        out, self._pending = self._pending, []
        if not self._closed:
            self._pace(now, out)
        return out

    def _pace(self, now: float, out: list[Datagram]) -> None:
        current = self._current_tick(now)
        if not self._has_output():
            if self._tick <= current:
                self._drained = True
            return
        if self._drained and current > self._tick:  # ticks went by with nothing to send
            self._tick, self._marker = current, True
        self._drained = False
        if current - self._tick >= MAX_CATCHUP_FRAMES:  # a late caller: skip, do not burst
            self._tick = current - MAX_CATCHUP_FRAMES + 1
        while self._tick <= current and self._has_output():
            self._send_tick(out)
            self._tick += 1
        if not self._has_output():
            self._drained = True

    def _send_tick(self, out: list[Datagram]) -> None:
        timestamp = (self._timestamp_base + self._tick * FRAME_SAMPLES) & 0xFFFF_FFFF
        if self._dtmf_out:
            payload, first = self._dtmf_out.popleft()
            if first:
                self._dtmf_timestamp = timestamp
            pt = self._params.telephone_event_pt
            packet_ts, marker = self._dtmf_timestamp, first
            if not self._dtmf_out or self._dtmf_out[0][1]:
                self._marker = True  # the audio after an event starts a new talkspurt
        else:
            frame = bytes(self._audio[:FRAME_BYTES])
            del self._audio[:FRAME_BYTES]
            payload = self._encoder(frame.ljust(FRAME_BYTES, b"\x00"))
            pt = self._params.codec.payload_type
            packet_ts, marker = timestamp, self._marker
            self._marker = False
        destination = self.remote_rtp_address
        if pt is None or destination is None or not self._params.direction.sends or self._params.on_hold:
            return  # on hold or nowhere allowed to send: the frame's time passes unsent
        packet = RtpPacket(pt, self._sequence, packet_ts, self.ssrc, payload, marker=marker)
        self._sequence = (self._sequence + 1) & 0xFFFF
        out.append((bytes(packet), destination, False))
        self._stats.packets_sent += 1
        self._stats.octets_sent += len(payload)
        self._sent_since_report = True

    def _queue_rtcp(self, now: float, *, bye: bool) -> None:
        blocks = []
        if self._reception is not None and self._remote_ssrc is not None:
            dlsr = int((now - self._lsr_at) * 65536) if self._lsr_at is not None else 0
            block, fraction = self._reception.report_block(
                self._remote_ssrc, self._lsr if self._lsr_at is not None else 0, dlsr
            )
            self._stats.fraction_lost = fraction
            blocks.append(block)
        report: RtcpPacket
        if self._sent_since_report:
            rtp_ts = (self._timestamp_base + round((now - self._start) * SAMPLE_RATE)) & 0xFFFF_FFFF
            report = SenderReport(
                self.ssrc,
                ntp_from_seconds(now),
                rtp_ts,
                self._stats.packets_sent & 0xFFFF_FFFF,
                self._stats.octets_sent & 0xFFFF_FFFF,
                tuple(blocks),
            )
        else:
            report = ReceiverReport(self.ssrc, tuple(blocks))
        self._sent_since_report = False
        parts: list[RtcpPacket] = [report, SourceDescription.for_cname(self.ssrc, self.cname)]
        if bye:
            parts.append(Bye((self.ssrc,)))
        destination = self.remote_rtcp_address
        if destination is not None:
            self._pending.append((serialize_rtcp(parts), destination, True))
            self._stats.rtcp_sent += 1
