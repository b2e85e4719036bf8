"""Logging you can grep: stdlib logging under `voicebot`, with the current conversation / call /
campaign stamped on every record from a contextvar; pipecat's loguru output forwarded into the
same sink (``route_pipecat_logs``)."""

from __future__ import annotations

import contextlib
import logging
from contextvars import ContextVar
from typing import Any

CONTEXT: ContextVar[str] = ContextVar("voicebot_log_context", default="-")

PIPECAT_LOGGER = "voicebot.pipecat"

_pipecat_sink: int | None = None  # the loguru handler id once routed


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


def _forward(message: Any) -> None:
    """loguru sink: re-emit a record on the stdlib logger ``voicebot.pipecat``."""
    record = message.record
    levelno = logging.getLevelName(record["level"].name)
    if not isinstance(levelno, int):  # loguru's own levels (SUCCESS): keep its number
        levelno = record["level"].no
    target = logging.getLogger(PIPECAT_LOGGER)
    if not target.isEnabledFor(levelno):
        return
    exc = record["exception"]
    exc_info = (exc.type, exc.value, exc.traceback) if exc is not None and exc.type is not None else None
    target.log(levelno, "%s: %s", record["name"], record["message"], exc_info=exc_info)


def route_pipecat_logs(level: str = "INFO") -> None:
    """Send pipecat's loguru records at ``level`` and above to the stdlib logger ``voicebot.pipecat``
    (so they reach the same handlers, with the same call context), instead of loguru's default
    DEBUG handler on stderr. Idempotent: a second call changes nothing."""
    global _pipecat_sink
    if _pipecat_sink is not None:
        return
    from loguru import logger

    with contextlib.suppress(ValueError):  # already removed by the embedding application
        logger.remove(0)  # loguru's default stderr handler
    _pipecat_sink = logger.add(_forward, level=level.upper(), format="{message}", backtrace=False)
