"""A fake Mailer (the seam of voicebot.text_channels.email_smtp): keeps what it is given, or fails."""

from __future__ import annotations

import asyncio
import email
import email.policy
from dataclasses import dataclass
from email.message import EmailMessage

from voicebot.errors import ProviderUnavailable
from voicebot.text_channels.email_smtp import MailRejected


@dataclass(frozen=True)
class Sent:
    raw: bytes
    sender: str
    recipients: list[str]

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def body(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None
        return str(part.get_content())


class FakeMailer:
    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.fail_with: Exception | None = None  # raised by every send while set
        self.closed = False
        self._changed = asyncio.Event()

    async def send(self, message: bytes, *, sender: str, recipients: list[str]) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(Sent(message, sender, list(recipients)))
        self._changed.set()

    async def close(self) -> None:
        self.closed = True

    async def wait_for(self, n: int, timeout: float = 20.0) -> list[Sent]:
        async def enough() -> None:
            while len(self.sent) < n:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(enough(), timeout)
        return self.sent


def unavailable() -> Exception:
    return ProviderUnavailable("SMTP server down")


def rejected() -> Exception:
    return MailRejected("550 no such user")
