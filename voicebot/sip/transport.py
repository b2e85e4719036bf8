"""The asyncio layer of the SIP core: UDP and TCP sockets around one ``UserAgent``.

It only moves bytes and arms one timer: datagrams (or messages framed off a TCP stream) go into
``ua.receive``; whatever the UA wants to send goes out on the matching socket; UA events go to the
``on_event`` callback. Call ``flush()`` after issuing a UA command so its output leaves at once.
Time is ``loop.time()``.

TCP: every accepted or opened connection is kept by its remote (host, port); a request that came
over a connection is answered over it; a message for a TCP peer without a connection opens one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable

from voicebot.sip.errors import SipParseError
from voicebot.sip.message import SipStreamParser
from voicebot.sip.transaction import Peer
from voicebot.sip.useragent import UaEvent, UserAgent

__all__ = ["SipTransport"]

log = logging.getLogger(__name__)
MAX_TCP_CONNECTIONS = 1024


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransport) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.owner._input(data, Peer("udp", addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        log.debug("sip udp: %s", exc)


class SipTransport:
    def __init__(
        self,
        ua: UserAgent,
        *,
        host: str = "127.0.0.1",
        port: int = 5060,
        on_event: Callable[[UaEvent], None],
        tcp: bool = True,
        reuse_port: bool = False,
    ) -> None:
        self.reuse_port = reuse_port  # several worker processes share the port (kernel balances peers)
        self.ua = ua
        self.host = host
        self.port = port
        self.tcp_enabled = tcp
        self._on_event = on_event
        self._loop = asyncio.get_running_loop()
        self._udp: asyncio.DatagramTransport | None = None
        self._server: asyncio.Server | None = None
        self._conns: dict[tuple[str, int], asyncio.StreamWriter] = {}
        self._pending: dict[tuple[str, int], list[bytes]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._closed = False

    async def start(self) -> None:
        """Bind UDP and TCP on host:port (port 0: one free port for both)."""
        for _ in range(20):
            udp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            if self.reuse_port:
                udp_sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            try:
                udp_sock.bind((self.host, self.port))
            except OSError as exc:
                udp_sock.close()
                raise OSError(f"cannot bind SIP to udp {self.host}:{self.port}: {exc.strerror}") from exc
            port = udp_sock.getsockname()[1]
            tcp_sock: socket.socket | None = None
            if self.tcp_enabled:
                tcp_sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                tcp_sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if self.reuse_port:
                    tcp_sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                try:
                    tcp_sock.bind((self.host, port))
                except OSError:
                    udp_sock.close()
                    tcp_sock.close()
                    if self.port:
                        raise
                    continue
            break
        else:  # pragma: no cover - 20 collisions in a row
            raise OSError("no free port for SIP over both UDP and TCP")
        self.port = port
        transport, _ = await self._loop.create_datagram_endpoint(lambda: _Udp(self), sock=udp_sock)
        self._udp = transport
        if tcp_sock is not None:
            self._server = await asyncio.start_server(self._accept, sock=tcp_sock, limit=2**20)
        log.info("SIP listening on %s:%d (udp%s)", self.host, self.port, "+tcp" if tcp_sock else "")

    async def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        if self._server is not None:
            self._server.close()
        for writer in list(self._conns.values()):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        if self._udp is not None:
            self._udp.close()
        self._conns.clear()

    @property
    def connections(self) -> int:
        return len(self._conns)

    # ----------------------------------------------------------------- the UA loop

    def _input(self, data: bytes, peer: Peer) -> None:
        if self._closed:
            return
        self.ua.receive(data, peer, self._loop.time())
        self.flush()

    def flush(self) -> None:
        """Send what the UA queued, deliver its events, re-arm the timer."""
        if self._closed:
            return
        for _ in range(1000):  # events may issue commands that queue more output and events
            out = self.ua.datagrams_to_send()
            for data, peer in out:
                self._send(data, peer)
            event = self.ua.next_event()
            if event is None and not out:
                break
            if event is not None:
                try:
                    self._on_event(event)
                except Exception:  # a bug in a handler must not stop SIP for every other call
                    log.exception("SIP event handler failed on %s", type(event).__name__)
        self._arm()

    def _arm(self) -> None:
        deadline = self.ua.get_timer()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.ua.handle_timer(self._loop.time())
        self.flush()

    def _send(self, data: bytes, peer: Peer) -> None:
        if peer.transport == "udp":
            if self._udp is not None:
                self._udp.sendto(data, (peer.host, peer.port))
            return
        key = (peer.host, peer.port)
        writer = self._conns.get(key)
        if writer is not None and not writer.is_closing():
            writer.write(data)
            return
        if key in self._pending:
            self._pending[key].append(data)
            return
        self._pending[key] = [data]
        self._spawn(self._connect(key))

    def _spawn(self, coro: object) -> None:
        task: asyncio.Task[None] = self._loop.create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ----------------------------------------------------------------- TCP

    async def _connect(self, key: tuple[str, int]) -> None:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(*key, limit=2**20), 10)
        except (OSError, TimeoutError) as exc:
            log.warning("SIP tcp connect to %s:%d failed: %s", key[0], key[1], exc)
            self._pending.pop(key, None)
            return
        for data in self._pending.pop(key, []):
            writer.write(data)
        await self._serve(reader, writer, key)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._conns) >= MAX_TCP_CONNECTIONS:
            writer.close()
            return
        addr = writer.get_extra_info("peername")
        await self._serve(reader, writer, (addr[0], addr[1]))

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: tuple[str, int]
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._conns[key] = writer
        parser = SipStreamParser(self.ua.config.max_message_size)
        peer = Peer("tcp", key[0], key[1])
        try:
            while not self._closed:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                try:
                    messages = parser.feed(chunk)
                except SipParseError as exc:
                    log.info("SIP tcp %s:%d: %s; closing the connection", key[0], key[1], exc)
                    break
                now = self._loop.time()
                for message in messages:
                    self.ua.receive_message(message, peer, now)
                self.flush()
        except (ConnectionError, OSError):
            pass
        finally:
            if self._conns.get(key) is writer:
                del self._conns[key]
            writer.close()
            if task is not None:
                self._tasks.discard(task)
