"""Events an RtpSession hands to its owner (``next_event()``)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AudioReceived", "ByeReceived", "DtmfReceived", "RemoteLatched", "RtpEvent", "RtpTimeout"]


@dataclass(frozen=True, slots=True)
class AudioReceived:
    """One 20 ms frame of decoded 8 kHz PCM16 mono, in playout order (concealment included)."""

    pcm16: bytes


@dataclass(frozen=True, slots=True)
class DtmfReceived:
    digit: str


@dataclass(frozen=True, slots=True)
class RtpTimeout:
    """Nothing was received for the session's timeout (reported once per silence)."""


@dataclass(frozen=True, slots=True)
class ByeReceived:
    """The peer sent RTCP BYE for the stream."""

    ssrc: int = 0


@dataclass(frozen=True, slots=True)
class RemoteLatched:
    """Symmetric RTP: media now goes to the address the peer's packets come from."""

    addr: tuple[str, int]


RtpEvent = AudioReceived | DtmfReceived | RtpTimeout | ByeReceived | RemoteLatched
