"""Errors of the RTP/SDP media core.

The core imports nothing from the rest of voicebot, so it has its own small tree. Each error carries
the SIP status a UAS would answer with (``status``) and a human-readable ``reason``; the SIP boundary
converts them into a response (for SDP) or just counts them (for packets).

    RtpError                 base; ``status`` (488 unless stated) and ``reason``
    ├── SdpError             an SDP body we cannot use: 488 Not Acceptable Here for an offer without
    │                        a common codec, 400 Bad Request for text that is not SDP
    └── RtpPacketError       bytes that are not a well-formed RTP/RTCP packet or RFC 4733 event

Retrying the same input never helps, so none of these is retryable.
"""

from __future__ import annotations

__all__ = ["RtpError", "RtpPacketError", "SdpError"]


class RtpError(Exception):
    """Base of every error the media core raises on purpose."""

    status: int = 488
    retryable: bool = False

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        super().__init__(f"{status if status is not None else self.status} {reason}")
        if status is not None:
            self.status = status
        self.reason = reason


class SdpError(RtpError):
    """An SDP body is unparseable (400) or offers nothing we can use (488)."""


class RtpPacketError(RtpError):
    """Bytes that are not a well-formed RTP or RTCP packet (or RFC 4733 payload)."""
