"""Property: arbitrary input to the message endpoint never gets a 5xx and never loses a turn."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import client_for
from tests.api.helpers import say, start, turns
from voicebot.config import DEMO_TENANT, Settings
from voicebot.knowledge.embeddings import Embedder
from voicebot.runtime import Runtime

JSON = {"content-type": "application/json"}


def _json_values() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    )


ANY_TEXT = st.text(max_size=300) | st.text(
    st.characters(categories=["Cc", "Cs", "Co", "Cf", "Zs", "L", "So"]), max_size=200
)


def test_arbitrary_input_never_gets_a_5xx(
    real_embedder: Embedder, runtime_data_dir: Path, tmp_path: Path
) -> None:
    """Hypothesis posts arbitrary text (lone surrogates and control characters included), arbitrary
    JSON and arbitrary bytes; every answer is below 500 and earlier turns are never lost.

    A synchronous test with its own event loop: hypothesis drives plain functions, not coroutines.
    """
    settings_ = Settings(
        tenant_config=DEMO_TENANT,
        data_dir=runtime_data_dir,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/h.db",
    )
    with asyncio.Runner() as runner:
        runtime = Runtime(settings_, embedder=real_embedder)
        runner.run(runtime.start())
        client = client_for(runtime)
        try:

            @settings(
                max_examples=120,
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow],
            )
            @given(
                st.one_of(
                    ANY_TEXT.map(lambda t: json.dumps({"text": t}).encode()),
                    _json_values().map(lambda v: json.dumps(v).encode()),
                    st.binary(max_size=300),
                )
            )
            def fuzz(content: bytes) -> None:
                # each example in its own conversation, so an "end" or a handoff never blocks the rest
                cid = runner.run(start(client))["id"]
                runner.run(say(client, cid, "How much is delivery?"))
                before = runner.run(turns(client, cid))
                response = runner.run(
                    client.post(f"/v1/conversations/{cid}/messages", content=content, headers=JSON)
                )
                assert response.status_code < 500, response.text
                after = runner.run(turns(client, cid))
                assert after[:2] == before
                if response.status_code >= 400:
                    assert response.json()["error"]["message"]
                    assert after == before  # nothing stored for a refused message
                else:
                    assert len(after) == 4  # the whole exchange

            fuzz()
        finally:
            runner.run(client.aclose())
            runner.run(runtime.stop())
