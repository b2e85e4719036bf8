"""Errors of the SIP protocol core.

The core imports nothing from the rest of voicebot, so it has its own small tree. Each error carries
the SIP status a UAS would answer with (``status``) and a human-readable ``reason``; the SIP boundary
(voicebot/inbound) converts them into a response or into voicebot's own tree.

    SipError                 base; ``status`` and ``reason``
    └── SipParseError        bytes are not a usable SIP message (400, or 505 for a SIP version we
        │                    do not speak)
        └── SipMessageTooLarge  a message on a stream exceeds the configured maximum (513)

Retrying the same bytes never helps, so none of these is retryable.
"""

from __future__ import annotations

__all__ = ["SipError", "SipMessageTooLarge", "SipParseError"]


class SipError(Exception):
    """Base of every error the SIP core raises on purpose."""

    status: int = 500
    retryable: bool = False

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        super().__init__(f"{status if status is not None else self.status} {reason}")
        if status is not None:
            self.status = status
        self.reason = reason


class SipParseError(SipError):
    """The input is not a well-formed SIP message (status 400 unless stated)."""

    status = 400

    def __init__(self, reason: str, *, status: int = 400) -> None:
        super().__init__(reason, status=status)


class SipMessageTooLarge(SipParseError):
    """A message on a stream is larger than the configured maximum (status 513)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, status=513)
