"""Shared fixtures for the DialogueManager scenario tests: the REAL models, loaded once per session.

The embedding model, the demo intent classifier (trained once into a session tmp dir), the demo
knowledge base and the language detector are session-scoped; the CRM (InMemoryCRM.demo) and the
manager are built per test with a fixed, injected `now`, so every test starts from the same records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.fakes.crm import InMemoryCRM
from voicebot.config import DEMO_TENANT, Tenant, default_models_dir, load_tenant
from voicebot.dialogue.language import LanguageDetector
from voicebot.dialogue.llm import LLMClient
from voicebot.dialogue.manager import DialogueManager
from voicebot.dialogue.nlu import IntentClassifier, load_intents_yaml, load_or_train
from voicebot.dialogue.nlu_data import load_intent_kb_tags
from voicebot.dialogue.slots import extract_slots
from voicebot.dialogue.types import Channel, DialogueState, Reply, Turn
from voicebot.knowledge.embeddings import MODEL_NAME, BatchingEmbedder, OnnxEmbedder, load_embedder
from voicebot.knowledge.ingest import load_knowledge
from voicebot.knowledge.retrieval import KnowledgeBase, answer_text

TZ = ZoneInfo("Europe/Ljubljana")
# a Tuesday morning, inside working hours; the CRM's relative dates resolve against it
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=TZ)

ANA_PHONE = "+38640111222"  # C001 Ana Novak, postcode 1000, born 1985-03-14, order A1001 (shipped)
JOHN_PHONE = "+447700900123"  # C002 John Smith, postcode SW1A 1AA, born 1990-07-02, A1002 processing
MARKO_PHONE = "+38641222333"  # C003 Marko Horvat, postcode 2000, order A1004 (processing)


@pytest.fixture(scope="session")
def demo_tenant() -> Tenant:
    return load_tenant(DEMO_TENANT)


@pytest.fixture(scope="session")
def real_embedder() -> OnnxEmbedder:
    models: Path = default_models_dir()
    if not (models / MODEL_NAME / "model.onnx").exists():
        pytest.skip("the embedding model is not installed: run `voicebot models install`")
    return load_embedder(models)


@pytest.fixture(scope="session")
def demo_intents(
    demo_tenant: Tenant, real_embedder: OnnxEmbedder, tmp_path_factory: pytest.TempPathFactory
) -> IntentClassifier:
    assert demo_tenant.intents is not None
    examples = load_intents_yaml(demo_tenant.intents)
    return load_or_train(
        examples, real_embedder, tmp_path_factory.mktemp("intent-cache"), model_name=MODEL_NAME
    )


@pytest.fixture(scope="session")
def demo_kb(demo_tenant: Tenant, real_embedder: OnnxEmbedder) -> KnowledgeBase:
    ingest = load_knowledge(demo_tenant.knowledge, default_language=demo_tenant.languages[0])
    return KnowledgeBase(ingest.passages, real_embedder)


@pytest.fixture(scope="session")
def language_detector() -> LanguageDetector:
    return LanguageDetector(["en", "sl"])


@pytest.fixture
def crm() -> InMemoryCRM:
    return InMemoryCRM.demo(NOW)


@dataclass
class AuditLog:
    entries: list[tuple[str, str | None, dict[str, Any]]] = field(default_factory=list)

    async def __call__(self, action: str, customer_id: str | None, details: dict[str, Any]) -> None:
        self.entries.append((action, customer_id, dict(details)))

    def actions(self) -> list[str]:
        return [a for a, _, _ in self.entries]


ManagerFactory = Callable[..., DialogueManager]


@pytest.fixture
def make_manager(
    demo_tenant: Tenant,
    real_embedder: OnnxEmbedder,
    demo_intents: IntentClassifier,
    demo_kb: KnowledgeBase,
    language_detector: LanguageDetector,
    crm: InMemoryCRM,
) -> Iterator[ManagerFactory]:
    """A DialogueManager on the real models; pass `tenant=` (a deep copy) to vary the configuration."""
    embedders: list[BatchingEmbedder] = []
    assert demo_tenant.intents is not None
    kb_topics = load_intent_kb_tags(demo_tenant.intents)

    def build(tenant: Tenant | None = None, *, llm: LLMClient | None = None) -> DialogueManager:
        embedders.append(BatchingEmbedder(real_embedder))
        return DialogueManager(
            tenant or demo_tenant,
            embedder=embedders[-1],
            intents=demo_intents,
            knowledge=demo_kb,
            crm=crm,
            language=language_detector,
            slots=extract_slots,
            answer_text=answer_text,
            llm=llm,
            kb_topics=kb_topics,
        )

    yield build
    for embedder in embedders:
        embedder.close()


@pytest.fixture
def manager(make_manager: ManagerFactory) -> DialogueManager:
    return make_manager()


class Conversation:
    """Chains turns: each reply's state goes into the next Turn, as a channel does."""

    def __init__(
        self,
        manager: DialogueManager,
        *,
        channel: Channel = Channel.CHAT,
        caller: str | None = None,
        sender_email: str | None = None,
        now: datetime = NOW,
    ) -> None:
        self.manager = manager
        self.channel = channel
        self.caller = caller
        self.sender_email = sender_email
        self.now = now
        self.state = DialogueState()
        self.replies: list[Reply] = []
        self.audit = AuditLog()

    async def say(self, text: str) -> Reply:
        turn = Turn(
            text=text,
            channel=self.channel,
            caller=self.caller,
            sender_email=self.sender_email,
            now=self.now,
            state=self.state,
        )
        reply = await self.manager.respond(turn, self.audit)
        self.state = reply.state
        self.replies.append(reply)
        return reply


ConversationFactory = Callable[..., Conversation]


@pytest.fixture
def conversation(manager: DialogueManager) -> ConversationFactory:
    def start(**kwargs: Any) -> Conversation:
        return Conversation(kwargs.pop("manager", manager), **kwargs)

    return start
