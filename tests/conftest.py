"""Shared fixtures: the REAL embedding model (loaded once per session) and started Runtimes.

A Runtime start ingests and embeds the demo knowledge base (a few seconds on 2 cores), so:

* ``runtime_data_dir`` is one session directory; the intent model is trained once into its
  ``cache/`` and every Runtime of the session loads it from there;
* ``make_runtime()`` builds a started Runtime on its own fresh database (a SQLite file under the
  test's tmp_path, or a fresh PostgreSQL database) and stops it after the test;
* ``shared_runtime`` is one started Runtime for a whole session, for tests that only touch their
  own conversations. Async tests using it run in the session event loop (see ``SESSION_LOOP``);
  tests that count tenant-wide figures (metrics) take a fresh ``runtime`` instead.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Literal

import pytest
import pytest_asyncio
import uvicorn
from starlette.types import ASGIApp

from voicebot.app import create_app
from voicebot.config import DEMO_TENANT, Settings, default_models_dir
from voicebot.knowledge.embeddings import MODEL_NAME, Embedder, load_embedder
from voicebot.runtime import Runtime

PG_ADMIN_URL = os.environ.get("VOICEBOT_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")

# Every async test and fixture of tests/api and tests/web runs in the one session loop, so the
# session-wide Runtime's database engine is always used from the loop that created it.
SESSION_LOOP = pytest.mark.asyncio(loop_scope="session")

RuntimeFactory = Callable[..., Awaitable[Runtime]]


@pytest.fixture(scope="session")
def real_embedder() -> Embedder:
    models: Path = default_models_dir()
    if not (models / MODEL_NAME / "model.onnx").exists():
        pytest.skip("the embedding model is not installed: run `voicebot models install`")
    return load_embedder(models)


@pytest.fixture(scope="session")
def runtime_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data dir every test Runtime shares: its cache/ holds the intent model, trained once."""
    return tmp_path_factory.mktemp("voicebot-data")


def _pg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


_pg_ok: bool | None = None


async def pg_reachable() -> bool:
    global _pg_ok
    if _pg_ok is None:
        import asyncpg

        try:
            conn = await asyncpg.connect(_pg_dsn(PG_ADMIN_URL), timeout=2)
        except (TimeoutError, OSError, asyncpg.PostgresError):
            _pg_ok = False
        else:
            await conn.close()
            _pg_ok = True
    return _pg_ok


@asynccontextmanager
async def fresh_pg_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database (dropped afterwards); yields its SQLAlchemy URL.

    A whole database rather than a schema: Runtime builds its Database from DATABASE_URL alone,
    so isolation has to be expressible in the URL.
    """
    import asyncpg

    if not await pg_reachable():
        pytest.skip(f"PostgreSQL is not reachable at {PG_ADMIN_URL}")
    name = f"vb_api_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(_pg_dsn(PG_ADMIN_URL), timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest_asyncio.fixture(loop_scope="session")
async def make_runtime(
    real_embedder: Embedder, runtime_data_dir: Path, tmp_path: Path
) -> AsyncIterator[RuntimeFactory]:
    """``await make_runtime(backend="sqlite"|"postgresql", **settings)``: a started Runtime."""
    async with AsyncExitStack() as stack:

        async def factory(backend: str = "sqlite", **overrides: object) -> Runtime:
            if backend == "sqlite":
                folder = tmp_path / f"db-{uuid.uuid4().hex[:8]}"
                folder.mkdir()
                url = f"sqlite+aiosqlite:///{folder / 'voicebot.db'}"
            else:
                url = await stack.enter_async_context(fresh_pg_database())
            settings = Settings(
                tenant_config=DEMO_TENANT,
                data_dir=runtime_data_dir,
                database_url=url,
                **overrides,  # type: ignore[arg-type]
            )
            runtime = Runtime(settings, embedder=real_embedder)
            await runtime.start()
            stack.push_async_callback(runtime.stop)
            return runtime

        yield factory


@pytest_asyncio.fixture(loop_scope="session")
async def runtime(make_runtime: RuntimeFactory) -> Runtime:
    """A started Runtime of the demo tenant on its own fresh SQLite database."""
    return await make_runtime()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def shared_runtime(
    real_embedder: Embedder, runtime_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Runtime]:
    """One started demo Runtime (SQLite) for the session: only for tests that use their own conversations."""
    folder = tmp_path_factory.mktemp("shared-db")
    settings = Settings(
        tenant_config=DEMO_TENANT,
        data_dir=runtime_data_dir,
        database_url=f"sqlite+aiosqlite:///{folder / 'voicebot.db'}",
    )
    rt = Runtime(settings, embedder=real_embedder)
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


@asynccontextmanager
async def serving(app: ASGIApp, *, lifespan: Literal["on", "off"] = "off") -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn in this event loop on 127.0.0.1, on a port the OS picks (read back,
    never released); yields the base URL ``http://127.0.0.1:PORT``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # websockets-sansio: uvicorn's legacy `websockets` implementation raises DeprecationWarnings.
    config = uvicorn.Config(app, log_level="warning", lifespan=lifespan, ws="websockets-sansio")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # the server failed to start: raise its error
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def live_server(shared_runtime: Runtime) -> AsyncIterator[str]:
    """The real app on the session Runtime, served on 127.0.0.1 (for WebSocket clients)."""
    async with serving(create_app(shared_runtime.settings, shared_runtime)) as url:
        yield url


def demo_tenant_with(folder: Path, **sections: object) -> Path:
    """A copy of the demo tenant YAML in ``folder`` with top-level ``sections`` replaced (e.g.
    ``email={...}``); its relative paths are made absolute so they still point at the demo files."""
    import yaml

    data = yaml.safe_load(DEMO_TENANT.read_text(encoding="utf-8"))
    base = DEMO_TENANT.parent
    data["knowledge"] = [str(base / p) for p in data.get("knowledge", [])]
    if data.get("intents"):
        data["intents"] = str(base / data["intents"])
    if (data.get("crm") or {}).get("seed"):
        data["crm"]["seed"] = str(base / data["crm"]["seed"])
    data.update(sections)
    path = folder / "tenant.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path
