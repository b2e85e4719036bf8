"""Logging you can grep: stdlib logging under `voicebot`, with the current conversation / call /
campaign stamped on every record from a contextvar."""

from __future__ import annotations

import logging
from contextvars import ContextVar

CONTEXT: ContextVar[str] = ContextVar("voicebot_log_context", default="-")


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.ctx = CONTEXT.get()
        return True


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.addFilter(_ContextFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(ctx)s] %(message)s"))
    root = logging.getLogger("voicebot")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
