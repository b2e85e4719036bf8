"""Admission for live calls: a per-process limit on concurrent voice calls.

Whisper and Piper share the machine's cores; past a point more calls only make every call slow.
A call that does not fit is refused at once with a reason (WebSocket close 1013 "try again later",
HTTP 503, SIP 503 in the next milestone) instead of being answered badly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from voicebot.errors import VoicebotError


class CallsFullError(VoicebotError):
    """Every call slot of this process is taken; try again shortly."""

    http_status = 503
    sip_status = 503
    retryable = True


class CallAdmission:
    """Counts live calls (the event loop is single-threaded, so no lock is needed)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0

    @property
    def full(self) -> bool:
        return self.active >= self.limit

    @contextmanager
    def admit(self) -> Iterator[None]:
        if self.full:
            raise CallsFullError(f"all {self.limit} lines are busy; try again shortly")
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1
