"""The process runtime: everything one tenant needs, loaded once, started and stopped together.

Used by the HTTP server (app.py), by `voicebot chat` in the terminal and by the tests, so every
entry point runs the same assembly: tenant config -> database (migrated) -> CRM seed ->
embedding model -> knowledge base (ingested from the tenant's folders) -> intent model (cached) ->
DialogueManager -> ChatService.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from voicebot.admission import CallAdmission
from voicebot.auth.service import AuthService
from voicebot.config import Settings, Tenant, load_tenant
from voicebot.crm.base import CRMAdapter
from voicebot.dialogue.language import LanguageDetector
from voicebot.dialogue.llm import LLMClient
from voicebot.dialogue.manager import DialogueManager
from voicebot.dialogue.nlu import load_intents_yaml, load_or_train
from voicebot.dialogue.nlu_data import load_intent_kb_tags
from voicebot.dialogue.slots import extract_slots
from voicebot.errors import ModelError
from voicebot.knowledge.embeddings import MODEL_NAME, BatchingEmbedder, Embedder, load_embedder
from voicebot.knowledge.retrieval import KnowledgeBase, answer_text
from voicebot.knowledge.store import sync_knowledge
from voicebot.live.bus import deployment_bus
from voicebot.storage import (
    AuditRepository,
    ConversationRepository,
    Database,
    HandoffRepository,
    KnowledgeRepository,
    MetricsRepository,
)
from voicebot.storage.users import UserRepository
from voicebot.text_channels.chat import ChatService

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


def utc_now() -> datetime:
    return datetime.now(UTC)


_SPEECH_CACHE: dict[tuple[str, str, int], Any] = {}


async def _load_speech(settings: Settings, tenant: Tenant) -> Any:
    """The shared STT/TTS models, loaded once per process (kept across Runtimes of one process);
    None, with a warning, when they are not installed (calls are then refused)."""
    import asyncio

    voice = tenant.voice
    key = (str(settings.models_dir), voice.stt_model, voice.cpu_threads)
    if key not in _SPEECH_CACHE:
        from voicebot.pipeline.speech import load_speech_models

        try:
            _SPEECH_CACHE[key] = await asyncio.to_thread(
                load_speech_models,
                settings.models_dir,
                stt_model=voice.stt_model,
                cpu_threads=voice.cpu_threads,
            )
        except (ImportError, OSError, ModelError) as exc:
            log.warning("voice is enabled but the speech models could not be loaded: %s", exc)
            return None
    return _SPEECH_CACHE[key]


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        tenant: Tenant | None = None,
        embedder: Embedder | None = None,
        crm: CRMAdapter | None = None,
        clock: Callable[[], datetime] = utc_now,
        http_client: httpx.AsyncClient | None = None,
        speech: Any = None,
    ) -> None:
        self.settings = settings
        self.tenant = tenant or load_tenant(settings.tenant_config)
        self.clock = clock
        self.db = Database(settings.resolved_database_url())
        self._embedder_override = embedder
        self._crm_override = crm
        self._http = http_client
        self._owned_http: httpx.AsyncClient | None = None
        self.llm: LLMClient | None = None
        self.conversations = ConversationRepository(self.db)
        self.handoffs = HandoffRepository(self.db)
        self.metrics = MetricsRepository(self.db)
        self.audit = AuditRepository(self.db)
        self.knowledge_repo = KnowledgeRepository(self.db)
        self.users = UserRepository(self.db, self.tenant.id)
        self.auth = AuthService(self.users, self.audit, settings, clock)
        # every process on this database and tenant sees the others' live events (voicebot.live.bus)
        self.live = deployment_bus(settings.resolved_database_url(), self.tenant.id, settings.redis_url)
        self._speech_override = speech
        # voicebot.pipeline.speech.SpeechModels (or a fake) when tenant.voice.enabled, else None
        self.speech: Any = None
        self.call_admission = CallAdmission(self.settings.max_calls or self.tenant.voice.max_calls)
        self._started = False

    async def start(self, progress: Progress = lambda _m: None) -> None:
        tenant = self.tenant
        progress("database")
        await self.db.start()
        try:
            await self.live.start()
            await self._start_services(tenant, progress)
            if tenant.voice.enabled:
                progress("speech models")
                self.speech = self._speech_override or await _load_speech(self.settings, tenant)
            progress("warming up")
            self._warm_up()
            self._start_speech_warmer()
        except BaseException:
            await self.stop()
            raise
        self._started = True
        log.info("tenant %s ready: %s", tenant.id, self.knowledge.stats())

    async def _start_services(self, tenant: Tenant, progress: Progress) -> None:
        self.crm = self._crm_override or await self._make_crm(tenant)
        progress("embedding model")
        raw = self._embedder_override or load_embedder(self.settings.models_dir, self.settings.embed_threads)
        self.embedder = BatchingEmbedder(raw)
        progress("knowledge base")
        passages = await sync_knowledge(self.knowledge_repo, tenant, now=self.clock())
        self.knowledge = KnowledgeBase(
            passages, raw, cache_dir=self.settings.data_dir / "cache" / tenant.id, model_name=MODEL_NAME
        )
        progress("intent model")
        examples = load_intents_yaml(tenant.intents) if tenant.intents else []
        self.intents = load_or_train(
            examples, raw, self.settings.data_dir / "cache" / tenant.id, model_name=MODEL_NAME
        )
        self.language = LanguageDetector(tenant.languages)
        if tenant.llm.enabled:
            self.llm = LLMClient(tenant.llm)
        self.manager = DialogueManager(
            tenant,
            embedder=self.embedder,
            intents=self.intents,
            knowledge=self.knowledge,
            crm=self.crm,
            language=self.language,
            slots=extract_slots,
            answer_text=answer_text,
            llm=self.llm,
            kb_topics=load_intent_kb_tags(tenant.intents) if tenant.intents else None,
        )
        self.chat = ChatService(
            self.manager,
            self.conversations,
            self.audit,
            clock=self.clock,
            max_message_chars=self.settings.max_message_chars,
            live=self.live,
            handoffs=self.handoffs,
        )

    def _warm_up(self) -> None:
        """Pay first-call costs (dateparser's locale tables, onnxruntime's first runs) before the
        first customer does."""
        now = self.clock()
        for language in self.tenant.languages:
            for text in (
                "next week on Monday at 10:00, end of the month",
                "dober dan, on next week?",
                "konec meseca ob 10:15",
            ):
                extract_slots(text, language=language, now=now, timezone=self.tenant.timezone)
        for _ in range(3):
            self.embedder.embed(["warm up the embedding model"])

    async def _make_crm(self, tenant: Tenant) -> CRMAdapter:
        if tenant.crm.adapter == "rest":
            from voicebot.crm.rest import RESTCRMAdapter

            assert tenant.crm.rest is not None  # validated by load_tenant
            if self._http is None:
                self._owned_http = httpx.AsyncClient()
            return RESTCRMAdapter(tenant.crm.rest, self._http or self._owned_http)  # type: ignore[arg-type]
        from voicebot.crm.seed import load_seed
        from voicebot.crm.sql import SQLCRMAdapter

        if tenant.crm.seed is not None:
            await load_seed(self.db, tenant.id, Path(tenant.crm.seed), now=self.clock())
        return SQLCRMAdapter(self.db, tenant.id, self.audit, self.clock)

    def _start_speech_warmer(self) -> None:
        if self.speech is None or not hasattr(self.speech, "presynthesize"):
            return  # no voice, or a fake speech layer in tests
        from voicebot.inbound.voice_cache import SpeechCacheWarmer, fixed_texts

        language = self.tenant.voice.stt_language
        self.speech_warmer = SpeechCacheWarmer(
            self.speech, fixed_texts(self.manager, self.knowledge.passages, language)
        )
        self.speech_warmer.start()

    @property
    def voice_cache_warm(self) -> bool | None:
        warmer = getattr(self, "speech_warmer", None)
        return warmer.done.is_set() if warmer is not None else None

    async def stop(self) -> None:
        if getattr(self, "speech_warmer", None) is not None:
            self.speech_warmer.stop()
        if getattr(self, "embedder", None) is not None:
            self.embedder.close()
        if self.llm is not None:
            await self.llm.close()
        if self._owned_http is not None:
            await self._owned_http.aclose()
        await self.live.stop()
        await self.db.stop()
        self._started = False
