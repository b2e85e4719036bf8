"""RtpSession with an explicit clock: pacing, talkspurts, hold, latching, timeout, RTCP, DTMF."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from voicebot.rtp.dtmf import DtmfEvent, dtmf_payloads
from voicebot.rtp.events import (
    AudioReceived,
    ByeReceived,
    DtmfReceived,
    RemoteLatched,
    RtpEvent,
    RtpTimeout,
)
from voicebot.rtp.g711 import ulaw_decode, ulaw_encode
from voicebot.rtp.packet import (
    Bye,
    ReceiverReport,
    ReportBlock,
    RtpPacket,
    SenderReport,
    SourceDescription,
    parse_rtcp,
    serialize_rtcp,
)
from voicebot.rtp.sdp import PCMA, PCMU, Direction, MediaParams
from voicebot.rtp.session import MAX_CATCHUP_FRAMES, Datagram, RtpSession

PEER = ("127.0.0.1", 40000)
PARAMS = MediaParams("127.0.0.1", 40000, PCMU, telephone_event_pt=101)
F = 0.02


def loopback_only(host: str) -> bool:
    return host == "127.0.0.1"


def make(params: MediaParams = PARAMS, **kwargs: object) -> RtpSession:
    options: dict[str, object] = {"ssrc": 0x1234, "allowed": loopback_only, "now": 0.0}
    options.update(kwargs)
    return RtpSession(params, **options)  # type: ignore[arg-type]


def tone(ms: int, value: int = 1000) -> bytes:
    return np.full(ms * 8, value, dtype="<i2").tobytes()


def rtp_out(datagrams: list[Datagram]) -> list[RtpPacket]:
    return [RtpPacket.parse(data) for data, _, is_rtcp in datagrams if not is_rtcp]


def events(session: RtpSession) -> list[RtpEvent]:
    result = []
    while (event := session.next_event()) is not None:
        result.append(event)
    return result


def drive(session: RtpSession, start: float, end: float) -> tuple[list[Datagram], list[RtpEvent]]:
    """What an endpoint does: sleep until get_timer(), handle_timer, send."""
    out: list[Datagram] = []
    seen: list[RtpEvent] = []
    clock = start
    for _ in range(100_000):
        deadline = session.get_timer()
        if deadline is None or deadline > end:
            break
        clock = max(clock, deadline)
        session.handle_timer(clock)
        out += session.datagrams_to_send(clock)
        seen += events(session)
    return out, seen


def peer_packet(seq: int, ts: int, pcm: bytes, *, ssrc: int = 0xBEEF, pt: int = 0) -> bytes:
    return bytes(RtpPacket(pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc, ulaw_encode(pcm)))


def test_one_second_is_fifty_packets_paced() -> None:
    session = make()
    session.send_audio(tone(1000))
    assert session.queued_audio_ms == 1000
    sent: list[list[Datagram]] = [session.datagrams_to_send(k * F) for k in range(60)]
    assert [len(batch) for batch in sent] == [1] * 50 + [0] * 10
    packets = rtp_out([d for batch in sent for d in batch])
    assert {addr for batch in sent for _, addr, _ in batch} == {PEER}
    first = packets[0]
    assert [p.timestamp for p in packets] == [(first.timestamp + 160 * k) % 2**32 for k in range(50)]
    assert [p.sequence for p in packets] == [(first.sequence + k) % 2**16 for k in range(50)]
    assert [p.marker for p in packets] == [True] + [False] * 49
    assert {p.payload_type for p in packets} == {0}
    assert all(ulaw_decode(p.payload) == ulaw_decode(ulaw_encode(tone(20))) for p in packets)
    assert session.queued_audio_ms == 0
    assert session.stats.packets_sent == 50 and session.stats.octets_sent == 8000


def test_get_timer_follows_the_send_ticks() -> None:
    session = make()
    assert session.get_timer() == 5.0  # only the RTCP report while idle (timeout is 30 s)
    session.send_audio(tone(60))
    assert session.get_timer() == 0.0
    session.datagrams_to_send(0.0)
    assert session.get_timer() == pytest.approx(0.02)
    session.datagrams_to_send(0.02)
    session.datagrams_to_send(0.04)
    assert session.get_timer() == 5.0


def test_late_caller_catches_up_by_a_few_frames_only() -> None:
    session = make()
    session.send_audio(tone(1000))
    first = rtp_out(session.datagrams_to_send(0.0))[0]
    late = rtp_out(session.datagrams_to_send(0.5))  # 25 ticks due
    assert len(late) == MAX_CATCHUP_FRAMES
    assert late[-1].timestamp == first.timestamp + 25 * 160  # the clock kept real time
    assert [p.sequence for p in late] == [first.sequence + k for k in (1, 2, 3)]
    assert not any(p.marker for p in late)
    assert len(rtp_out(session.datagrams_to_send(0.52))) == 1


def test_idle_time_advances_the_timestamp_and_marks_the_next_talkspurt() -> None:
    session = make()
    session.send_audio(tone(40))
    a = rtp_out(session.datagrams_to_send(0.0) + session.datagrams_to_send(0.02))
    assert rtp_out(session.datagrams_to_send(0.04)) == []
    session.send_audio(tone(20))
    b = rtp_out(session.datagrams_to_send(1.003))
    assert len(b) == 1 and b[0].marker
    assert b[0].timestamp == a[0].timestamp + 50 * 160
    assert b[0].sequence == a[1].sequence + 1


def test_audio_streamed_in_real_time_is_one_talkspurt() -> None:
    session = make()
    packets = []
    for k in range(20):
        session.send_audio(tone(20))
        packets += rtp_out(session.datagrams_to_send(k * F + 0.001))
    assert len(packets) == 20
    assert [p.marker for p in packets] == [True] + [False] * 19


def test_odd_sized_audio_is_carried_and_the_tail_padded() -> None:
    session = make()
    session.send_audio(tone(27))
    session.send_audio(tone(20)[:101])  # half a sample too: 533 octets, padded to two frames
    packets = rtp_out(session.datagrams_to_send(0.0) + session.datagrams_to_send(0.02))
    assert [len(p.payload) for p in packets] == [160, 160]


def test_clear_audio_stops_sending() -> None:
    session = make()
    session.send_audio(tone(1000))
    session.datagrams_to_send(0.0)
    session.clear_audio()
    assert session.queued_audio_ms == 0
    assert session.datagrams_to_send(0.02) == []


def test_hold_sends_nothing_and_resume_marks() -> None:
    session = make()
    session.send_audio(tone(1000))
    session.datagrams_to_send(0.0)
    session.update(replace(PARAMS, direction=Direction.RECVONLY, on_hold=True))
    held = [session.datagrams_to_send(k * F) for k in range(1, 11)]
    assert all(batch == [] for batch in held)
    assert session.queued_audio_ms == pytest.approx(1000 - 11 * 20)  # the time passed all the same
    session.update(PARAMS)
    resumed = rtp_out(session.datagrams_to_send(11 * F))
    assert len(resumed) == 1 and resumed[0].marker


def test_inactive_and_null_address_hold() -> None:
    for params in (
        replace(PARAMS, direction=Direction.INACTIVE, on_hold=True),
        replace(PARAMS, remote_address="0.0.0.0", on_hold=True),
    ):
        session = make(params)
        session.send_audio(tone(100))
        assert all(session.datagrams_to_send(k * F) == [] for k in range(5))


def test_latches_to_the_source_of_incoming_rtp() -> None:
    session = make()
    session.receive_rtp(peer_packet(1, 0, tone(20)), ("127.0.0.1", 41000), now=0.0)
    assert events(session) == [RemoteLatched(("127.0.0.1", 41000))]
    session.send_audio(tone(20))
    assert [addr for _, addr, _ in session.datagrams_to_send(0.0)] == [("127.0.0.1", 41000)]
    session.receive_rtp(peer_packet(2, 160, tone(20)), ("127.0.0.1", 41000), now=0.02)
    assert events(session) == []  # same source: no new event


def test_disallowed_sources_are_dropped_and_counted() -> None:
    session = make()
    session.receive_rtp(peer_packet(1, 0, tone(20)), ("192.0.2.7", 41000), now=0.0)
    session.receive_rtcp(bytes(ReceiverReport(5)), ("192.0.2.7", 41001), now=0.0)
    assert events(session) == []
    assert session.stats.rejected == 2 and session.stats.packets_received == 0
    session.send_audio(tone(20))
    assert [addr for _, addr, _ in session.datagrams_to_send(0.0)] == [PEER]


def test_never_sends_to_a_disallowed_sdp_address() -> None:
    session = make(replace(PARAMS, remote_address="192.0.2.7"))
    session.send_audio(tone(200))
    out, _ = drive(session, 0.0, 12.0)
    assert out == []
    assert session.remote_rtp_address is None and session.remote_rtcp_address is None
    session.close(12.0)
    assert session.datagrams_to_send(12.0) == []


def test_receives_decodes_and_plays_out_in_order() -> None:
    session = make(jitter_depth_frames=2)
    frames = [tone(20, 1000 * (k + 1)) for k in range(5)]
    for k in (0, 2, 1, 3, 4):  # one reordered
        session.receive_rtp(peer_packet(100 + k, 5000 + 160 * k, frames[k]), PEER, now=k * F)
    _, seen = drive(session, 0.0, 0.3)
    audio = [e.pcm16 for e in seen if isinstance(e, AudioReceived)]
    assert audio == [ulaw_decode(ulaw_encode(f)) for f in frames]
    assert session.stats.packets_received == 5 and session.stats.lost == 0


def test_unknown_payload_types_are_ignored() -> None:
    session = make()
    session.receive_rtp(peer_packet(1, 0, tone(20), pt=8), PEER, now=0.0)  # PCMA not negotiated
    session.receive_rtp(b"\x80\x00garbage", PEER, now=0.0)
    assert session.stats.unknown_payload == 1 and session.stats.invalid == 1
    assert events(session) == []


def test_codec_change_on_reinvite() -> None:
    session = make()
    session.update(replace(PARAMS, codec=PCMA))
    session.send_audio(tone(20))
    (packet,) = rtp_out(session.datagrams_to_send(0.0))
    assert packet.payload_type == 8


def test_incoming_dtmf_goes_to_the_receiver_once() -> None:
    session = make()
    for k, (payload, marker) in enumerate(dtmf_payloads("7")):
        session.receive_rtp(bytes(RtpPacket(101, k, 8000, 0xBEEF, payload, marker)), PEER, now=k * F)
    seen = events(session)
    seen += drive(session, 0.0, 0.5)[1]
    assert [e for e in seen if isinstance(e, DtmfReceived)] == [DtmfReceived("7")]
    assert not any(isinstance(e, AudioReceived) for e in seen)
    assert session.stats.dtmf_received == 1


def test_sipp_style_dtmf_with_repeated_end_sequence() -> None:
    # as in SIPp's dtmf_2833_1.pcap: durations from 0, the three end packets share one sequence number
    session = make()
    for k in range(10):
        seq, end = 7984 + min(k, 7), k >= 7
        payload = bytes(DtmfEvent(1, end, 10, 320 * min(k, 7)))
        session.receive_rtp(bytes(RtpPacket(101, seq, 13280, 0xE05384E, payload, k == 0)), PEER, k * F)
    assert [e for e in events(session) if isinstance(e, DtmfReceived)] == [DtmfReceived("1")]
    assert session.stats.lost == 0 and session.stats.packets_received == 10


def test_send_dtmf_rfc4733() -> None:
    session = make()
    session.send_dtmf("5", duration_ms=100)
    session.send_audio(tone(20))
    out = rtp_out([d for k in range(12) for d in session.datagrams_to_send(k * F)])
    events_ = [p for p in out if p.payload_type == 101]
    assert len(events_) == 4 + 3
    assert {p.timestamp for p in events_} == {out[0].timestamp}
    assert [p.marker for p in events_] == [True] + [False] * 6
    assert DtmfEvent.parse(events_[-1].payload) == DtmfEvent(5, True, 10, 800)
    audio = [p for p in out if p.payload_type == 0]
    assert len(audio) == 1 and audio[0].marker
    assert audio[0].timestamp == out[0].timestamp + 7 * 160
    assert [p.sequence - out[0].sequence for p in out] == list(range(8))


def test_send_dtmf_in_band_without_telephone_event() -> None:
    session = make(replace(PARAMS, telephone_event_pt=None))
    session.send_dtmf("1", duration_ms=100)
    assert session.queued_audio_ms == 140  # tone + a short pause
    with pytest.raises(ValueError):
        session.send_dtmf("X")


def test_timeout_once_and_not_on_hold() -> None:
    session = make(timeout_s=3.0, rtcp_interval_s=100.0)
    _, seen = drive(session, 0.0, 10.0)
    assert [e for e in seen if isinstance(e, RtpTimeout)] == [RtpTimeout()]
    session.receive_rtp(peer_packet(1, 0, tone(20)), PEER, now=10.0)  # media again: re-armed
    _, seen = drive(session, 10.0, 12.9)
    assert not any(isinstance(e, RtpTimeout) for e in seen)
    _, seen = drive(session, 12.9, 13.5)
    assert any(isinstance(e, RtpTimeout) for e in seen)

    held = make(replace(PARAMS, direction=Direction.RECVONLY, on_hold=True), timeout_s=3.0)
    _, seen = drive(held, 0.0, 10.0)
    assert not any(isinstance(e, RtpTimeout) for e in seen)
    held.update(PARAMS)  # resumed at 10 s: the timeout counts from then
    _, seen = drive(held, 10.0, 12.9)
    assert not any(isinstance(e, RtpTimeout) for e in seen)
    _, seen = drive(held, 12.9, 14.0)
    assert any(isinstance(e, RtpTimeout) for e in seen)


def test_rtcp_sender_and_receiver_reports() -> None:
    session = make(rtcp_interval_s=1.0, timeout_s=100.0)
    session.send_audio(tone(200))
    for k in range(30):  # the peer sends 30 packets, 3 of them lost
        if k not in (5, 6, 20):
            session.receive_rtp(peer_packet(1000 + k, 160 * k, tone(20)), PEER, now=k * F + 0.001)
    out, _ = drive(session, 0.0, 1.0)
    rtcp = [(parse_rtcp(data), addr) for data, addr, is_rtcp in out if is_rtcp]
    assert len(rtcp) == 1
    (sr, sdes), addr = rtcp[0]
    assert addr == ("127.0.0.1", 40001)  # RTP port + 1
    assert isinstance(sr, SenderReport) and sr.ssrc == 0x1234
    assert (sr.packet_count, sr.octet_count) == (10, 1600)
    (block,) = sr.reports
    assert block.ssrc == 0xBEEF
    assert block.highest_seq == 1029 and block.cumulative_lost == 3
    assert block.fraction_lost == 3 * 256 // 30
    assert sdes == SourceDescription.for_cname(0x1234, "voicebot")
    # nothing sent in the next interval: a receiver report, sent to the latched RTCP source
    session.receive_rtcp(bytes(ReceiverReport(0xBEEF)), ("127.0.0.1", 40005), now=1.5)
    out, _ = drive(session, 1.0, 2.0)
    rtcp = [(parse_rtcp(data), addr) for data, addr, is_rtcp in out if is_rtcp]
    assert len(rtcp) == 1
    (report, _), addr = rtcp[0]
    assert isinstance(report, ReceiverReport)
    assert addr == ("127.0.0.1", 40005)


def test_jitter_estimate() -> None:
    session = make(timeout_s=100.0)
    for k in range(50):  # arrivals alternate 0 and 10 ms late
        session.receive_rtp(peer_packet(k, 160 * k, tone(20)), PEER, now=k * F + (0.01 if k % 2 else 0))
    assert session.stats.jitter == pytest.approx(80, rel=0.05)  # |D| = 80 timestamp units
    assert session.stats.jitter_ms == pytest.approx(10, rel=0.05)


def test_round_trip_time_from_a_report_about_us() -> None:
    session = make(rtcp_interval_s=1.0, timeout_s=100.0)
    session.send_audio(tone(20))
    out, _ = drive(session, 0.0, 1.0)
    sr = next(parse_rtcp(d)[0] for d, _, r in out if r)
    assert isinstance(sr, SenderReport)
    lsr = (sr.ntp_timestamp >> 16) & 0xFFFFFFFF
    block = ReportBlock(0x1234, 10, 1, 5, 3, lsr, int(0.1 * 65536))  # peer held it 100 ms
    session.receive_rtcp(bytes(ReceiverReport(0xBEEF, (block,))), ("127.0.0.1", 40001), now=1.3)
    stats = session.stats
    assert stats.rtt_s == pytest.approx(0.2, abs=0.001)
    assert (stats.remote_fraction_lost, stats.remote_jitter) == (10, 3)


def test_rtcp_bye_from_the_peer_and_rtcp_mux() -> None:
    session = make()
    session.receive_rtp(peer_packet(1, 0, tone(20)), PEER, now=0.0)
    events(session)
    compound = serialize_rtcp([ReceiverReport(0xBEEF), Bye((0xBEEF,))])
    session.receive_rtp(compound, PEER, now=0.1)  # multiplexed on the RTP port
    session.receive_rtcp(compound, ("127.0.0.1", 40001), now=0.2)
    assert events(session) == [ByeReceived(0xBEEF)]


def test_ssrc_change_resets_the_stream() -> None:
    session = make(jitter_depth_frames=1, timeout_s=100.0)
    session.receive_rtp(peer_packet(100, 0, tone(20, 100)), PEER, now=0.0)
    session.receive_rtp(peer_packet(7, 99, tone(20, 2000), ssrc=0xCAFE), PEER, now=0.001)
    _, seen = drive(session, 0.0, 0.2)
    audio = [e.pcm16 for e in seen if isinstance(e, AudioReceived)]
    assert audio == [ulaw_decode(ulaw_encode(tone(20, 2000)))]
    assert session.stats.lost == 0


def test_close_sends_bye_and_stops() -> None:
    session = make()
    session.send_audio(tone(100))
    session.datagrams_to_send(0.0)
    session.close(0.01)
    out = session.datagrams_to_send(0.01)
    assert len(out) == 1 and out[0][1:] == (("127.0.0.1", 40001), True)
    parts = parse_rtcp(out[0][0])
    assert isinstance(parts[0], SenderReport) and parts[-1] == Bye((0x1234,))
    assert session.get_timer() is None
    session.send_audio(tone(20))
    assert session.datagrams_to_send(0.1) == []
    session.close(0.2)
    assert session.datagrams_to_send(0.2) == []


def test_adaptive_playout_delay_follows_measured_jitter() -> None:
    params = MediaParams("127.0.0.1", 40000, PCMU, 101)
    session = RtpSession(
        params, ssrc=1, allowed=lambda h: True, now=0.0, jitter_depth_frames=0.5, jitter_max_frames=10
    )
    payload = b"\xff" * 160
    # steady packets: the minimum depth
    for n in range(20):
        session.receive_rtp(bytes(RtpPacket(0, n, n * 160, 7, payload)), ("127.0.0.1", 40000), n * 0.02)
    assert session._jitter.depth_s == pytest.approx(0.01)
    # packets arriving 0-60 ms off their schedule: a deeper buffer for the next talkspurt
    jittery = RtpSession(
        params, ssrc=1, allowed=lambda h: True, now=0.0, jitter_depth_frames=1, jitter_max_frames=10
    )
    for n in range(200):
        late = 0.06 if n % 2 else 0.0
        jittery.receive_rtp(
            bytes(RtpPacket(0, n, n * 160, 7, payload)), ("127.0.0.1", 40000), n * 0.02 + late
        )
    assert 0.06 <= jittery._jitter.depth_s <= 0.2
