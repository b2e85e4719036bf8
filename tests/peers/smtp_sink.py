"""An SMTP sink (aiosmtpd) on 127.0.0.1 that keeps every message it is given.

``async with SmtpSink() as sink:`` listens on a loopback port (``sink.host``, ``sink.port``);
``sink.messages`` holds one :class:`SinkMessage` (envelope sender, recipients, raw bytes, the AUTH
login if any, whether the session was TLS) per accepted DATA; ``await sink.wait_for(n, timeout)``
waits until there are ``n``.

Without ``tls`` (the default) STARTTLS is never offered, and with ``user``/``password`` the sink
offers AUTH PLAIN/LOGIN in the clear and requires it before MAIL.

With ``tls`` (a :class:`tests.peers.tls.LoopbackTLS`, or a server :class:`ssl.SSLContext`) the sink
offers STARTTLS; AUTH is then offered and accepted only after STARTTLS (a client that tries it in the
clear gets ``538 Encryption required``), and with ``user``/``password`` MAIL still needs AUTH, so mail
from an AUTH sink always came over TLS. ``require_starttls=True`` also refuses MAIL without STARTTLS
when there is no AUTH. A client trusts the sink with ``sink.ca_file`` (or ``LoopbackTLS.client_context()``)
when ``tls`` is a ``LoopbackTLS``.

aiosmtpd's ``SMTP`` protocol is served from the test's own event loop with ``loop.create_server`` on
port 0 and the port is read back (aiosmtpd's threaded ``Controller`` needs a known port up front, so
it would need a bind-and-release race and a second event loop in a thread). The hostname is fixed,
so aiosmtpd never calls ``socket.getfqdn()`` (a DNS lookup).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.peers.tls import LoopbackTLS

__all__ = ["SinkMessage", "SmtpSink"]

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class SinkMessage:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    auth_user: str | None = None
    tls: bool = False  # the session had done STARTTLS before this DATA


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        auth_user = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        self.sink._received(
            SinkMessage(
                envelope.mail_from or "",
                list(envelope.rcpt_tos),
                data,
                auth_user,
                tls=session.ssl is not None,  # aiosmtpd sets it on the new session after STARTTLS
            )
        )
        return "250 OK message accepted"


class SmtpSink:
    """Collects every message sent to it (see the module docstring)."""

    def __init__(
        self,
        *,
        user: str | None = None,
        password: str | None = None,
        hostname: str = "sink.test",
        tls: LoopbackTLS | ssl.SSLContext | None = None,
        require_starttls: bool = False,
    ) -> None:
        if (user is None) != (password is None):
            raise ValueError("give both user and password, or neither")
        if require_starttls and tls is None:
            raise ValueError("require_starttls needs tls")
        self.tls = tls
        self.require_starttls = require_starttls
        self._tls_context = tls.server_context() if isinstance(tls, LoopbackTLS) else tls
        self.host = LOOPBACK
        self.port = 0
        self.user, self.password, self.hostname = user, password, hostname
        self.messages: list[SinkMessage] = []
        self.auth_failures = 0
        self._changed = asyncio.Event()
        self._handler = _Handler(self)
        self._server: asyncio.Server | None = None
        self._sessions: list[SMTP] = []

    @property
    def ca_file(self) -> Path | None:
        """The CA PEM file a client must trust (when ``tls`` is a ``LoopbackTLS``), else None."""
        return self.tls.ca_file if isinstance(self.tls, LoopbackTLS) else None

    async def __aenter__(self) -> SmtpSink:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and self.user is not None
            and self.password is not None
            and auth_data.login == self.user.encode()
            and auth_data.password == self.password.encode()
        )
        if not ok:
            self.auth_failures += 1
        # handled=False: aiosmtpd itself answers 235 or 535.
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def _factory(self) -> SMTP:
        auth = self.user is not None
        tls = self._tls_context is not None
        with warnings.catch_warnings():
            # Without tls, AUTH in the clear is what this loopback sink is for (pytest runs with
            # warnings as errors).
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS", UserWarning)
            smtp = SMTP(
                self._handler,
                hostname=self.hostname,
                enable_SMTPUTF8=True,
                decode_data=False,
                tls_context=self._tls_context,
                require_starttls=self.require_starttls,
                auth_required=auth,
                auth_require_tls=tls,
                authenticator=self._authenticate if auth else None,
                loop=asyncio.get_running_loop(),
            )
        self._sessions.append(smtp)
        return smtp

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._factory, self.host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening, close every open session and wait for their tasks."""
        if self._server is None:
            return
        self._server.close()
        for smtp in self._sessions:
            if smtp.transport is not None:
                smtp.transport.close()
        tasks = [s._handler_coroutine for s in self._sessions if s._handler_coroutine is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._server.wait_closed()
        self._server = None
        self._sessions.clear()

    def _received(self, message: SinkMessage) -> None:
        self.messages.append(message)
        self._changed.set()

    async def wait_for(self, n: int = 1, timeout: float = 10.0) -> list[SinkMessage]:
        """Until at least ``n`` messages arrived; returns them all. TimeoutError says how many did."""

        async def enough() -> None:
            while len(self.messages) < n:
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(enough(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"SMTP sink on {self.host}:{self.port} got {len(self.messages)} of {n} messages "
                f"in {timeout} s (auth failures: {self.auth_failures})"
            ) from None
        return list(self.messages)
