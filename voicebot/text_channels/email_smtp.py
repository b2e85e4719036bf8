"""Sending the e-mail bot's replies: the ``Mailer`` seam and its SMTP implementation (aiosmtplib).

One connection is kept open and reused (a reply every few seconds should not pay a TLS handshake
each); a send on a connection the server has dropped reconnects once. STARTTLS, implicit TLS and
AUTH follow :class:`voicebot.config.SmtpOut`; the password comes from the named environment variable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from pathlib import Path
from typing import Protocol

import aiosmtplib

from voicebot.config import SmtpOut
from voicebot.errors import ConfigError, ProviderError, ProviderUnavailable

log = logging.getLogger(__name__)


class MailRejected(ProviderError):
    """The SMTP server refused the message for good (a 5xx): retrying will not help."""

    http_status = 502

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class Mailer(Protocol):
    async def send(self, message: bytes, *, sender: str, recipients: list[str]) -> None:
        """Hand one message to the mail system. ProviderUnavailable: try again later;
        MailRejected: the server will never take it."""

    async def close(self) -> None: ...


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """A verifying client context, trusting ``ca_file`` instead of the system's CAs when given."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class SmtpMailer:
    def __init__(self, config: SmtpOut, *, local_hostname: str = "voicebot.localdomain") -> None:
        self.config = config
        self._local_hostname = local_hostname
        self._password: str | None = None
        if config.username is not None:
            if not config.password_env:
                raise ConfigError("smtp.username needs smtp.password_env", field="email.smtp")
            self._password = os.environ.get(config.password_env)
            if self._password is None:
                raise ConfigError(
                    f"environment variable {config.password_env} (the SMTP password) is not set",
                    field="email.smtp.password_env",
                )
        self._client: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()

    async def _connect(self) -> aiosmtplib.SMTP:
        config = self.config
        context = tls_context(config.ca_file) if config.security != "none" else None
        client = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.resolved_port,
            use_tls=config.security == "ssl",
            start_tls=config.security == "starttls",
            tls_context=context,
            timeout=config.timeout_secs,
            local_hostname=self._local_hostname,
        )
        await client.connect()
        if config.username is not None and self._password is not None:
            await client.login(config.username, self._password)
        return client

    async def send(self, message: bytes, *, sender: str, recipients: list[str]) -> None:
        async with self._lock:
            for attempt in (1, 2):
                try:
                    if self._client is None or not self._client.is_connected:
                        self._client = await self._connect()
                    errors, _ = await self._client.sendmail(sender, recipients, message)
                except aiosmtplib.SMTPRecipientsRefused as exc:
                    raise MailRejected(f"every recipient was refused: {exc.recipients}") from exc
                except aiosmtplib.SMTPResponseException as exc:
                    await self._drop()
                    if 500 <= exc.code < 600 and exc.code not in (530, 535):
                        raise MailRejected(
                            f"the SMTP server refused the message: {exc.code} {exc.message}"
                        ) from exc
                    raise ProviderUnavailable(f"SMTP {exc.code} {exc.message}") from exc
                except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPConnectError) as exc:
                    await self._drop()
                    if attempt == 1 and not isinstance(exc, aiosmtplib.SMTPConnectError):
                        continue  # the kept connection had gone stale: one fresh try
                    raise ProviderUnavailable(f"SMTP server {self.config.host}: {exc}") from exc
                except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
                    await self._drop()
                    raise ProviderUnavailable(f"SMTP server {self.config.host}: {exc}") from exc
                if errors:
                    log.warning("some recipients were refused: %s", errors)
                return

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):  # a dead connection may fail to close; it is gone anyway
                client.close()

    async def close(self) -> None:
        async with self._lock:
            client, self._client = self._client, None
            if client is not None and client.is_connected:
                try:
                    await asyncio.wait_for(client.quit(), 5.0)
                except (aiosmtplib.SMTPException, OSError, TimeoutError):
                    client.close()
