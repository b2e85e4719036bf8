"""`voicebot kb ingest` while the server runs: the server reloads its knowledge base at once (the
CLI announces the change on the deployment's live bus), without a restart."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx

from tests.api.test_cli import voicebot
from tests.api.test_knowledge_api import ask
from tests.conftest import SESSION_LOOP, serving
from voicebot.app import create_app
from voicebot.config import Settings
from voicebot.knowledge.embeddings import Embedder
from voicebot.runtime import Runtime

pytestmark = SESSION_LOOP

FAQ = """faq:
  - questions: ["Do you rent out ladders?", "Can I borrow a ladder?"]
    answer: "Yes: ladders are lent free of charge for 48 hours with any purchase over 50 EUR."
"""


async def test_an_ingest_from_the_cli_reaches_the_running_server(
    tmp_path: Path, real_embedder: Embedder, runtime_data_dir: Path
) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'kb.db'}"
    settings = Settings(data_dir=runtime_data_dir, database_url=database)
    app = create_app(settings, Runtime(settings, embedder=real_embedder))
    faq = tmp_path / "ladders.yaml"
    faq.write_text(FAQ)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEBOT_") and k != "DATABASE_URL"}
    env |= {"DATABASE_URL": database, "VOICEBOT_DATA_DIR": str(runtime_data_dir), "NO_COLOR": "1"}
    async with serving(app, lifespan="on") as url, httpx.AsyncClient(base_url=url) as customer:
        assert (await ask(customer, "Can I borrow a ladder?"))["action"] == "clarify"
        done = await asyncio.to_thread(voicebot, env, "kb", "ingest", str(faq))
        assert done.returncode == 0, done.stderr
        for _ in range(100):  # the reload runs in the server as the event arrives
            reply = await ask(customer, "can I borrow a ladder")
            if reply["action"] == "answer":
                break
            await asyncio.sleep(0.1)
    assert reply["action"] == "answer" and "48 hours" in reply["text"]
