from collections.abc import AsyncIterator

import pytest

from tests.fakes.llm_server import LLMStub, running_llm_stub
from voicebot.config import LLMConfig
from voicebot.dialogue.llm import LLMClient, grounded


def test_grounding_rejects_new_numbers_and_addresses() -> None:
    source = ["Returns are accepted within 14 days. Write to returns@demo.example."]
    assert grounded("You can return items within 14 days.", source)
    assert not grounded("You can return items within 30 days.", source)
    assert not grounded("Write to help@evil.example.", source)
    assert grounded("Write to returns@demo.example within 14 days.", source)


@pytest.fixture
async def stub() -> AsyncIterator[LLMStub]:
    async with running_llm_stub() as server:
        yield server


async def test_pick_intent_accepts_only_known_labels(stub: LLMStub) -> None:
    client = LLMClient(LLMConfig(enabled=True, base_url=stub.base_url, timeout_s=2))
    try:
        stub.replies += ["order_status", "make_coffee"]
        assert (
            await client.pick_intent("where's my stuff", ["order_status", "payment_status"]) == "order_status"
        )
        assert await client.pick_intent("brew", ["order_status"]) is None
        assert stub.requests[0]["messages"][1]["content"] == "where's my stuff"
    finally:
        await client.close()


async def test_rephrase_is_checked_against_the_passages(stub: LLMStub) -> None:
    client = LLMClient(LLMConfig(enabled=True, base_url=stub.base_url, timeout_s=2))
    try:
        answer, passages = "Returns within 14 days.", ["You may return goods within 14 days of delivery."]
        stub.replies += ["You can send goods back within 14 days of delivery.", "Returns within 60 days!"]
        assert await client.rephrase(answer, passages, "en", "formal") == (
            "You can send goods back within 14 days of delivery."
        )
        assert await client.rephrase(answer, passages, "en", "formal") is None
    finally:
        await client.close()


async def test_timeout_and_errors_fall_back(stub: LLMStub) -> None:
    client = LLMClient(LLMConfig(enabled=True, base_url=stub.base_url, timeout_s=0.2))
    try:
        stub.delay_s = 1.0
        assert await client.pick_intent("x", ["order_status"]) is None
        stub.delay_s = 0.0
        stub.fail_status = 500
        assert await client.rephrase("a", ["a"], "en", "formal") is None
    finally:
        await client.close()


async def test_unreachable_endpoint_falls_back() -> None:
    async with running_llm_stub() as server:
        url = server.base_url
    client = LLMClient(LLMConfig(enabled=True, base_url=url, timeout_s=0.5))
    try:
        assert await client.pick_intent("x", ["order_status"]) is None
    finally:
        await client.close()
