"""A served voice app whose handoffs go to the console's desk (voice.transfer default "desk"), with
call recording on and fake speech (tests/fakes/speech.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
import pytest_asyncio

from tests.conftest import serving
from tests.fakes.speech import FakeSpeech
from tests.inbound.conftest import FAST_VOICE
from voicebot.app import create_app
from voicebot.config import DEMO_TENANT, Settings, VoiceConfig, load_tenant
from voicebot.knowledge.embeddings import Embedder
from voicebot.runtime import Runtime


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def desk_server(
    real_embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[str, Runtime, FakeSpeech]]:
    """A voice server whose handoffs go to the console's desk, recording calls (one per module)."""
    tmp_path = tmp_path_factory.mktemp("desk")
    async with AsyncExitStack() as stack:
        folder = tmp_path / f"db-{uuid.uuid4().hex[:8]}"
        folder.mkdir()
        settings = Settings(
            tenant_config=DEMO_TENANT,
            data_dir=tmp_path / "data",
            database_url=f"sqlite+aiosqlite:///{folder / 'voicebot.db'}",
        )
        tenant = load_tenant(DEMO_TENANT)
        tenant.voice = VoiceConfig(**{**FAST_VOICE, "transfer": {"default": "desk"}, "record_calls": True})
        speech = FakeSpeech(["I want to talk to a human"], max_secs=1.0)
        runtime = Runtime(settings, tenant=tenant, embedder=real_embedder, speech=speech)
        await runtime.start()
        stack.push_async_callback(runtime.stop)
        url = await stack.enter_async_context(serving(create_app(settings, runtime)))
        yield url, runtime, speech
