"""A started Runtime with voice on and fake speech (tests/fakes/speech.py), served on 127.0.0.1."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest_asyncio

from tests.conftest import serving
from tests.fakes.speech import FakeSpeech
from voicebot.app import create_app
from voicebot.config import DEMO_TENANT, Settings, VoiceConfig, load_tenant
from voicebot.knowledge.embeddings import Embedder
from voicebot.runtime import Runtime

FAST_VOICE: dict[str, Any] = {
    "enabled": True,
    "vad_stop_secs": 0.25,
    "silence_prompt_secs": 30.0,
    "silence_prompts": 1,
    "dtmf_pause_secs": 0.5,
    "transfer": {"default": "+38640999000"},
}


@pytest_asyncio.fixture(loop_scope="session")
async def voice_server(
    real_embedder: Embedder, runtime_data_dir: Path, tmp_path: Path
) -> AsyncIterator[Callable[..., Any]]:
    """``await voice_server(speech=FakeSpeech([...]), **voice_overrides)`` -> (base_url, runtime, app)."""
    async with AsyncExitStack() as stack:

        async def start(speech: Any = None, **voice: Any) -> tuple[str, Runtime, Any]:
            folder = tmp_path / f"db-{uuid.uuid4().hex[:8]}"
            folder.mkdir()
            settings = Settings(
                tenant_config=DEMO_TENANT,
                data_dir=runtime_data_dir,
                database_url=f"sqlite+aiosqlite:///{folder / 'voicebot.db'}",
            )
            tenant = load_tenant(DEMO_TENANT)
            tenant.voice = VoiceConfig(**{**FAST_VOICE, "recordings_dir": tmp_path / "rec", **voice})
            runtime = Runtime(settings, tenant=tenant, embedder=real_embedder, speech=speech or FakeSpeech())
            await runtime.start()
            stack.push_async_callback(runtime.stop)
            app = create_app(settings, runtime)
            url = await stack.enter_async_context(serving(app))
            return url, runtime, app

        yield start


@pytest_asyncio.fixture(loop_scope="session")
async def sip_server(
    voice_server: Callable[..., Any],
) -> AsyncIterator[Callable[..., Any]]:
    """``await sip_server(speech=..., sip={...}, **voice)`` -> (SipServer, runtime, base_url): the voice
    server plus SIP on a free 127.0.0.1 port (UDP and TCP)."""
    from voicebot.config import SipConfig
    from voicebot.inbound.sip import SipServer

    servers: list[SipServer] = []

    async def start(
        speech: Any = None, sip: dict[str, Any] | None = None, **voice: Any
    ) -> tuple[Any, Any, str]:
        voice = {"sip": SipConfig(**{"rtp_ports": (30000, 60000), **(sip or {})}), **voice}
        url, runtime, app = await voice_server(speech=speech, **voice)
        server = SipServer(runtime, host="127.0.0.1", port=0)
        await server.start()
        app.state.sip = server
        servers.append(server)
        return server, runtime, url

    try:
        yield start
    finally:
        for server in servers:
            await server.stop()
