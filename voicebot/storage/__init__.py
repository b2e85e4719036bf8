"""Persistence: one ``Database`` (SQLite or PostgreSQL, migrated by Alembic) and repositories.

Repositories hand out the frozen records of :mod:`voicebot.storage.records`; ORM objects and rows
never leave this package. Every method that writes time takes an injected ``now``.
"""

from voicebot.storage.audit import AuditRepository
from voicebot.storage.conversations import ConversationRepository
from voicebot.storage.db import Database
from voicebot.storage.handoffs import HandoffRepository
from voicebot.storage.knowledge import KnowledgeRepository
from voicebot.storage.metrics import MetricsRepository, percentile
from voicebot.storage.records import (
    AuditRecord,
    ConversationRecord,
    ConversationStatus,
    HandoffRecord,
    HandoffStatus,
    PassageRecord,
    TurnRecord,
    TurnRole,
)

__all__ = [
    "AuditRecord",
    "AuditRepository",
    "ConversationRecord",
    "ConversationRepository",
    "ConversationStatus",
    "Database",
    "HandoffRecord",
    "HandoffRepository",
    "HandoffStatus",
    "KnowledgeRepository",
    "MetricsRepository",
    "PassageRecord",
    "TurnRecord",
    "TurnRole",
    "percentile",
]
