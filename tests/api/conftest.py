"""HTTP clients on the real app (httpx ASGITransport: no sockets, no lifespan; the Runtime is started
by the fixture that built it)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from tests.auth_helpers import token_headers
from voicebot.app import create_app
from voicebot.runtime import Runtime


def client_for(runtime: Runtime, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    app = create_app(runtime.settings, runtime)
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://voicebot.test", headers=headers)


@pytest_asyncio.fixture(loop_scope="session")
async def client(shared_runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """An administrator's client (API token) on the session-wide Runtime (use your own conversations)."""
    async with client_for(shared_runtime, await token_headers(shared_runtime)) as c:
        yield c


@pytest_asyncio.fixture(loop_scope="session")
async def fresh_client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """An administrator's client on a Runtime with an empty database of its own (tenant-wide figures
    start at zero, apart from the administrator's audit entries)."""
    async with client_for(runtime, await token_headers(runtime)) as c:
        yield c


@pytest_asyncio.fixture(loop_scope="session")
async def anon_client(shared_runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """A client without credentials (a customer, or anyone on the network)."""
    async with client_for(shared_runtime) as c:
        yield c
