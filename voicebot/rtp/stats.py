"""Reception statistics per RFC 3550 appendix A and the counters an RtpSession exposes."""

from __future__ import annotations

from dataclasses import dataclass

from voicebot.rtp.packet import ReportBlock

__all__ = ["ReceptionStats", "RtpStats", "ntp_from_seconds"]

_SEQ_MOD = 1 << 16
_MAX_DROPOUT = 3000
_MAX_MISORDER = 100


def ntp_from_seconds(seconds: float) -> int:
    """64-bit NTP format of a clock value (the session clock: peers only echo it back, as LSR)."""
    return int(seconds * (1 << 32)) & 0xFFFF_FFFF_FFFF_FFFF


def _signed32(value: int) -> int:
    value &= 0xFFFF_FFFF
    return value - (1 << 32) if value >= 1 << 31 else value


@dataclass(slots=True)
class RtpStats:
    """A snapshot of one session's counters. Octet counts are payload octets, as RTCP SR wants."""

    packets_sent: int = 0
    octets_sent: int = 0
    packets_received: int = 0
    octets_received: int = 0
    lost: int = 0  # RFC 3550 A.3 cumulative, may go negative with duplicates
    fraction_lost: int = 0  # of the last report interval, in 1/256
    jitter: float = 0.0  # interarrival jitter (A.8), RTP timestamp units
    late: int = 0
    duplicates: int = 0
    concealed: int = 0
    rejected: int = 0  # packets from addresses ``allowed`` refused
    invalid: int = 0  # malformed RTP/RTCP
    unknown_payload: int = 0  # payload types we did not negotiate
    dtmf_sent: int = 0
    dtmf_received: int = 0
    rtcp_sent: int = 0
    rtcp_received: int = 0
    rtt_s: float | None = None
    remote_fraction_lost: int | None = None
    remote_jitter: int | None = None

    @property
    def jitter_ms(self) -> float:
        return self.jitter / 8.0


class ReceptionStats:
    """Sequence tracking (A.1), loss (A.3) and jitter (A.8) for one remote SSRC."""

    def __init__(self, sequence: int) -> None:
        self._init(sequence)
        self._bad_seq: int | None = None
        self.jitter = 0.0
        self._last_arrival: float | None = None
        self._last_ts = 0

    def _init(self, sequence: int) -> None:
        self.base_seq = sequence
        self.max_seq = sequence
        self.cycles = 0
        self.received = 0
        self._expected_prior = 0
        self._received_prior = 0

    def update_sequence(self, sequence: int) -> bool:
        """Count a packet; False for one that looks like it belongs to a restarted stream."""
        delta = (sequence - self.max_seq) % _SEQ_MOD
        if delta < _MAX_DROPOUT:
            if sequence < self.max_seq:
                self.cycles += _SEQ_MOD
            self.max_seq = sequence
        elif delta <= _SEQ_MOD - _MAX_MISORDER:
            if sequence != self._bad_seq:  # a big jump: believe it only if the next packet follows it
                self._bad_seq = (sequence + 1) % _SEQ_MOD
                return False
            self._init(sequence)
        self._bad_seq = None
        self.received += 1
        return True

    def update_jitter(self, arrival: float, timestamp: int) -> None:
        """``arrival`` in RTP timestamp units; wrap-safe form of J += (|D| - J) / 16."""
        if self._last_arrival is not None:
            d = (arrival - self._last_arrival) - _signed32(timestamp - self._last_ts)
            self.jitter += (abs(d) - self.jitter) / 16
        self._last_arrival, self._last_ts = arrival, timestamp

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return self.extended_max - self.base_seq + 1

    @property
    def cumulative_lost(self) -> int:
        return max(-(1 << 23), min((1 << 23) - 1, self.expected - self.received))

    def report_block(self, ssrc: int, lsr: int, dlsr: int) -> tuple[ReportBlock, int]:
        """The report block for the interval since the last call, and its fraction lost."""
        expected_interval = self.expected - self._expected_prior
        received_interval = self.received - self._received_prior
        self._expected_prior, self._received_prior = self.expected, self.received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        block = ReportBlock(
            ssrc=ssrc,
            fraction_lost=fraction,
            cumulative_lost=self.cumulative_lost,
            highest_seq=self.extended_max & 0xFFFF_FFFF,
            jitter=min(int(self.jitter), 0xFFFF_FFFF),
            lsr=lsr & 0xFFFF_FFFF,
            dlsr=max(0, min(dlsr, 0xFFFF_FFFF)),
        )
        return block, fraction
