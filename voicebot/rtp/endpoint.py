"""The asyncio side of RTP: UDP port pairs and one endpoint per call driving an RtpSession.

The session decides everything; this module only moves datagrams and arms one timer. The timer
sleeps until the session's own deadline (``loop.call_at``) and passes ``loop.time()`` as ``now``, so
pacing follows the media clock and never drifts with scheduling delays. Usage::

    endpoint = await pool.open(allowed=is_allowed)      # binds RTP/RTCP, endpoint.port for the SDP
    endpoint.start(params)                              # after offer/answer
    event = await endpoint.events.get()
    endpoint.send_audio(pcm16)
    await endpoint.close()                              # RTCP BYE, sockets closed, ports released
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import socket
from collections.abc import Callable
from typing import Any

from voicebot.rtp.errors import RtpError
from voicebot.rtp.events import RtpEvent
from voicebot.rtp.sdp import MediaParams
from voicebot.rtp.session import RtpSession
from voicebot.rtp.stats import RtpStats

__all__ = ["RtpEndpoint", "RtpPortPool"]

log = logging.getLogger("voicebot.rtp")

Address = tuple[str, int]


def _bind_udp(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class RtpPortPool:
    """Even RTP ports with RTCP on the odd port above (RFC 3550 section 11) in ``[start, end]``."""

    def __init__(self, host: str = "127.0.0.1", start: int = 20000, end: int = 20999) -> None:
        if start % 2:
            start += 1
        if not 0 < start < end <= 65535:
            raise ValueError(f"bad RTP port range {start}-{end}")
        self.host = host
        self.start = start
        self.end = end
        self._in_use: set[int] = set()
        self._cursor = start

    @property
    def in_use(self) -> int:
        return len(self._in_use)

    async def allocate(self) -> tuple[socket.socket, socket.socket, int]:
        """Bind a free pair: ports other processes hold are skipped. RtpError 503 when none is left."""
        slots = (self.end - self.start + 1) // 2
        for _ in range(slots):
            port = self._cursor
            self._cursor = port + 2 if port + 3 <= self.end else self.start
            if port in self._in_use:
                continue
            try:
                rtp = _bind_udp(self.host, port)
            except OSError:
                continue
            try:
                rtcp = _bind_udp(self.host, port + 1)
            except OSError:
                rtp.close()
                continue
            self._in_use.add(port)
            return rtp, rtcp, port
        raise RtpError(f"no free RTP port pair in {self.start}-{self.end}", status=503)

    def release(self, port: int) -> None:
        self._in_use.discard(port)

    async def open(
        self, *, allowed: Callable[[str], bool], loop: asyncio.AbstractEventLoop | None = None, **options: Any
    ) -> RtpEndpoint:
        """An endpoint on a fresh port pair; ``options`` go to RtpSession (timeout_s, cname, ...)."""
        rtp, rtcp, port = await self.allocate()
        return RtpEndpoint(self, rtp, rtcp, port, allowed=allowed, **options)


def _same(protocol: _Protocol) -> _Protocol:
    return protocol


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: RtpEndpoint, rtcp: bool, lost: asyncio.Future[None]) -> None:
        self._endpoint = endpoint
        self._rtcp = rtcp
        self.lost = lost  # done once the transport has closed its socket

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._endpoint._datagram_received(data, (addr[0], addr[1]), self._rtcp)

    def error_received(self, exc: Exception) -> None:
        log.debug("RTP socket error: %s", exc)  # ICMP port unreachable and friends: not fatal


class RtpEndpoint:
    """One call's media: a bound RTP/RTCP pair and the task that drives its RtpSession."""

    def __init__(
        self,
        pool: RtpPortPool,
        rtp_sock: socket.socket,
        rtcp_sock: socket.socket,
        port: int,
        *,
        allowed: Callable[[str], bool],
        ssrc: int | None = None,
        **options: Any,
    ) -> None:
        self.pool = pool
        self.port = port
        self.host = pool.host
        self.events: asyncio.Queue[RtpEvent] = asyncio.Queue()
        self._socks: tuple[socket.socket, socket.socket] | None = (rtp_sock, rtcp_sock)
        self._allowed = allowed
        self._ssrc = ssrc if ssrc is not None else secrets.randbits(32)
        self._options = options
        self._session: RtpSession | None = None
        self._transports: list[asyncio.DatagramTransport] = []
        self._lost: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closed = False

    # --- lifecycle ---

    def start(self, params: MediaParams) -> None:
        """Create the session for the negotiated stream and start moving media."""
        if self._session is not None or self._closed or self._socks is None:
            raise RuntimeError("RtpEndpoint.start() called twice or after close()")
        loop = asyncio.get_running_loop()
        self._session = RtpSession(
            params, ssrc=self._ssrc, allowed=self._allowed, now=loop.time(), **self._options
        )
        self._task = loop.create_task(self._start_transports(loop), name=f"rtp-{self.port}")

    async def _start_transports(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self._socks is not None
        for sock, is_rtcp in zip(self._socks, (False, True), strict=True):
            protocol = _Protocol(self, is_rtcp, loop.create_future())
            transport, _ = await loop.create_datagram_endpoint(functools.partial(_same, protocol), sock=sock)
            self._transports.append(transport)
            self._lost.append(protocol.lost)
        self._socks = None  # the transports own them now
        await self._run(loop)

    async def close(self) -> None:
        """RTCP BYE, then sockets closed, task cancelled and awaited, ports back in the pool."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        if self._session is not None and self._transports:
            self._session.close(loop.time())
            self._flush(loop.time())
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for transport in self._transports:
            transport.close()
        if self._lost:  # the sockets close on the next loop iteration: wait, so nothing outlives us
            await asyncio.wait(self._lost, timeout=1.0)
        if self._socks is not None:
            for sock in self._socks:
                sock.close()
            self._socks = None
        self._transports = []
        self.pool.release(self.port)

    async def __aenter__(self) -> RtpEndpoint:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- commands (pass through to the session, then wake the timer task) ---

    @property
    def session(self) -> RtpSession:
        if self._session is None:
            raise RuntimeError("RtpEndpoint.start() was not called")
        return self._session

    @property
    def params(self) -> MediaParams | None:
        return self._session.params if self._session is not None else None

    @property
    def stats(self) -> RtpStats:
        return self._session.stats if self._session is not None else RtpStats()

    @property
    def queued_audio_ms(self) -> float:
        return self._session.queued_audio_ms if self._session is not None else 0.0

    def send_audio(self, pcm16: bytes) -> None:
        if self._session is not None and not self._closed:
            self._session.send_audio(pcm16)
            self._wake.set()

    def send_dtmf(self, digit: str, duration_ms: int = 160) -> None:
        if self._session is not None and not self._closed:
            self._session.send_dtmf(digit, duration_ms)
            self._wake.set()

    def clear_audio(self) -> None:
        if self._session is not None:
            self._session.clear_audio()

    def update(self, params: MediaParams) -> None:
        if self._session is not None and not self._closed:
            self._session.update(params)
            self._wake.set()

    # --- I/O ---

    def _datagram_received(self, data: bytes, addr: Address, is_rtcp: bool) -> None:
        session = self._session
        if session is None or self._closed:
            return
        now = asyncio.get_running_loop().time()
        if is_rtcp:
            session.receive_rtcp(data, addr, now)
        else:
            session.receive_rtp(data, addr, now)
        self._drain_events()
        self._flush(now)
        self._wake.set()  # the deadline may have moved (jitter playout, timeout)

    def _drain_events(self) -> None:
        assert self._session is not None
        while (event := self._session.next_event()) is not None:
            self.events.put_nowait(event)

    def _flush(self, now: float) -> None:
        assert self._session is not None
        if len(self._transports) < 2:
            return
        rtp, rtcp = self._transports
        for data, addr, is_rtcp in self._session.datagrams_to_send(now):
            (rtcp if is_rtcp else rtp).sendto(data, addr)

    async def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        session = self.session
        while True:
            deadline = session.get_timer()
            handle = loop.call_at(deadline, self._wake.set) if deadline is not None else None
            try:
                await self._wake.wait()
            finally:
                if handle is not None:
                    handle.cancel()
            self._wake.clear()
            now = loop.time()
            if deadline is not None and now >= deadline:
                session.handle_timer(now)
            self._flush(now)
            self._drain_events()
