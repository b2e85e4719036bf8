"""An SMTP listener (aiosmtpd) for mail routed straight to the bot, e.g. by the company's relay.

It accepts mail only for the bot's own addresses (``email.recipients``, default ``email.address``;
anything else gets 550, so it is never mistaken for a relay) and answers 250 only after the message
is stored (``deliver``), so an accepted message survives a crash; a storage failure answers 451 and
the sending server tries again. The protocol is served on this process's event loop
(``loop.create_server``), not aiosmtpd's threaded Controller.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Awaitable, Callable

from aiosmtpd.smtp import SMTP, Envelope, Session

from voicebot.config import EmailConfig

log = logging.getLogger(__name__)

Deliver = Callable[[bytes], Awaitable[None]]


class _Handler:
    def __init__(self, accepted: set[str], deliver: Deliver) -> None:
        self._accepted = accepted
        self._deliver = deliver

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address.lower() not in self._accepted:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        try:
            await self._deliver(data)
        except Exception:
            log.exception("a message from %s could not be stored", envelope.mail_from)
            return "451 4.3.0 could not store the message, try again later"
        return "250 OK message accepted"


class SmtpListenerServer:
    def __init__(
        self, config: EmailConfig, deliver: Deliver, *, hostname: str = "voicebot", reuse_port: bool = False
    ) -> None:
        self.config = config.listener
        self._reuse_port = reuse_port
        accepted = config.recipients or [config.address]
        self._handler = _Handler({a.lower() for a in accepted}, deliver)
        self._hostname = hostname
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self.config.port
        return int(self._server.sockets[0].getsockname()[1])

    def _factory(self) -> SMTP:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # aiosmtpd warns that this listener offers no TLS
            return SMTP(
                self._handler,
                hostname=self._hostname,
                data_size_limit=self.config.max_message_bytes,
                enable_SMTPUTF8=True,
                decode_data=False,
                ident="voicebot",
            )

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._factory, host=self.config.host, port=self.config.port, reuse_port=self._reuse_port or None
        )
        log.info("SMTP listener on %s:%d", self.config.host, self.port)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
