"""RtpEndpoint over real UDP sockets on 127.0.0.1: two endpoints talk, then close without leaks."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace

import numpy as np
import pytest

from voicebot.rtp.endpoint import RtpEndpoint, RtpPortPool
from voicebot.rtp.errors import RtpError
from voicebot.rtp.events import AudioReceived, ByeReceived, DtmfReceived, RemoteLatched, RtpEvent
from voicebot.rtp.sdp import PCMA, PCMU, Direction, answer_offer, create_offer, parse_answer

HOST = "127.0.0.1"
WAIT_S = 15.0  # generous: a slow CI machine must not fail, and nothing asserts on speed


def loopback_only(host: str) -> bool:
    return host == HOST


def sine(ms: int, hz: float = 440.0) -> bytes:
    t = np.arange(ms * 8) / 8000
    return (np.sin(2 * np.pi * hz * t) * 8000).astype("<i2").tobytes()


async def connect(pool: RtpPortPool) -> tuple[RtpEndpoint, RtpEndpoint]:
    a = await pool.open(allowed=loopback_only, rtcp_interval_s=0.5)
    b = await pool.open(allowed=loopback_only, rtcp_interval_s=0.5)
    offer = create_offer(address=HOST, port=a.port, session_id=1, version=1)
    answer, b_params = answer_offer(offer, address=HOST, port=b.port, session_id=2, version=1)
    a.start(parse_answer(answer, (PCMU, PCMA), 101))
    b.start(b_params)
    return a, b


async def collect(endpoint: RtpEndpoint, done: object) -> list[RtpEvent]:
    seen: list[RtpEvent] = []

    async def loop() -> None:
        while not done(seen):  # type: ignore[operator]
            seen.append(await endpoint.events.get())

    await asyncio.wait_for(loop(), WAIT_S)
    return seen


async def test_loopback_audio_dtmf_and_clean_close() -> None:
    pool = RtpPortPool(HOST, 47000, 47999)
    a, b = await connect(pool)
    assert pool.in_use == 2
    a.send_dtmf("5")
    a.send_audio(sine(1000))

    def enough(seen: list[RtpEvent]) -> bool:
        audio = sum(isinstance(e, AudioReceived) for e in seen)
        return audio >= 45 and any(isinstance(e, DtmfReceived) for e in seen)

    seen = await collect(b, enough)
    assert seen[0] == RemoteLatched((HOST, a.port))
    assert [e.digit for e in seen if isinstance(e, DtmfReceived)] == ["5"]
    received = b"".join(e.pcm16 for e in seen if isinstance(e, AudioReceived))
    sent = np.frombuffer(sine(1000), "<i2").astype(float)
    got = np.frombuffer(received, "<i2").astype(float)
    best = max(float(np.dot(sent[:4000], got[k : k + 4000])) for k in range(0, 400))
    assert best / float(np.dot(sent[:4000], sent[:4000])) > 0.95  # the sine survived G.711

    await asyncio.wait_for(_until_drained(a), WAIT_S)
    assert a.stats.packets_sent == 50 + 10  # 1 s of audio + one digit (7 updates, 3 end packets)

    await a.close()
    bye = await collect(b, lambda seen: any(isinstance(e, ByeReceived) for e in seen))
    assert isinstance(bye[-1], ByeReceived)
    await b.close()
    await b.close()  # idempotent
    assert pool.in_use == 0
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def _until_drained(endpoint: RtpEndpoint) -> None:
    while endpoint.queued_audio_ms > 0 or endpoint.stats.packets_sent < 60:
        await asyncio.sleep(0.02)


async def test_both_directions_and_hold() -> None:
    pool = RtpPortPool(HOST, 47000, 47999)
    a, b = await connect(pool)
    try:
        b.send_audio(sine(200))
        seen = await collect(a, lambda s: sum(isinstance(e, AudioReceived) for e in s) >= 5)
        assert seen[0] == RemoteLatched((HOST, b.port))
        params = b.params
        assert params is not None
        b.update(replace(params, direction=Direction.RECVONLY, on_hold=True))
        sent = b.stats.packets_sent
        b.send_audio(sine(200))
        await asyncio.sleep(0.1)
        assert b.stats.packets_sent == sent  # on hold: nothing more went out
    finally:
        await a.close()
        await b.close()
    assert pool.in_use == 0


async def test_pool_skips_taken_ports_and_reports_exhaustion() -> None:
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind((HOST, 0))
    try:
        taken = blocker.getsockname()[1]
        start = taken - taken % 2
        pool = RtpPortPool(HOST, start, start + 3)  # two pairs; the first is half taken
        rtp, rtcp, port = await pool.allocate()
        assert port == start + 2 and pool.in_use == 1
        assert (rtp.getsockname()[1], rtcp.getsockname()[1]) == (port, port + 1)
        with pytest.raises(RtpError) as info:
            await pool.allocate()
        assert info.value.status == 503
        rtp.close()
        rtcp.close()
        pool.release(port)
        assert pool.in_use == 0
    finally:
        blocker.close()


async def test_close_without_start_releases_the_ports() -> None:
    pool = RtpPortPool(HOST, 47000, 47999)
    endpoint = await pool.open(allowed=loopback_only)
    assert pool.in_use == 1
    async with endpoint:
        endpoint.send_audio(b"\x00" * 320)  # ignored before start
        assert endpoint.stats.packets_sent == 0
    assert pool.in_use == 0
    with pytest.raises(RuntimeError):
        endpoint.start(
            parse_answer(create_offer(address=HOST, port=9, session_id=1, version=1), (PCMU,), 101)
        )
