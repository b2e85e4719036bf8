"""Every repository in one import: ``from voicebot.storage.repositories import ...``."""

from voicebot.storage.audit import AuditRepository
from voicebot.storage.conversations import ConversationRepository
from voicebot.storage.handoffs import HandoffRepository
from voicebot.storage.knowledge import KnowledgeRepository
from voicebot.storage.metrics import MetricsRepository

__all__ = [
    "AuditRepository",
    "ConversationRepository",
    "HandoffRepository",
    "KnowledgeRepository",
    "MetricsRepository",
]
