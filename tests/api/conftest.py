"""HTTP clients on the real app (httpx ASGITransport: no sockets, no lifespan; the Runtime is started
by the fixture that built it)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from voicebot.app import create_app
from voicebot.runtime import Runtime


def client_for(runtime: Runtime) -> httpx.AsyncClient:
    app = create_app(runtime.settings, runtime)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://voicebot.test")


@pytest_asyncio.fixture(loop_scope="session")
async def client(shared_runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the session-wide Runtime (use your own conversations)."""
    async with client_for(shared_runtime) as c:
        yield c


@pytest_asyncio.fixture(loop_scope="session")
async def fresh_client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """A client on a Runtime with an empty database of its own (tenant-wide figures start at zero)."""
    async with client_for(runtime) as c:
        yield c
