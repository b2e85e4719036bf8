"""DialogueManager with the optional LLM (a local OpenAI-compatible stub): grounded or offline."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.dialogue.conftest import ConversationFactory, ManagerFactory
from tests.fakes.llm_server import LLMStub, running_llm_stub
from voicebot.config import Tenant
from voicebot.dialogue.llm import LLMClient
from voicebot.dialogue.types import Action

QUESTION = "What are your opening hours?"


def llm_tenant(tenant: Tenant, base_url: str, timeout_s: float = 2.0) -> Tenant:
    varied = tenant.model_copy(deep=True)
    varied.llm.enabled = True
    varied.llm.base_url = base_url
    varied.llm.timeout_s = timeout_s
    return varied


@pytest.fixture
async def stub() -> AsyncIterator[LLMStub]:
    async with running_llm_stub() as server:
        yield server


async def offline_answer(conversation: ConversationFactory) -> str:
    return (await conversation().say(QUESTION)).text


async def test_grounded_rephrasing_is_used(
    stub: LLMStub, make_manager: ManagerFactory, conversation: ConversationFactory, demo_tenant: Tenant
) -> None:
    tenant = llm_tenant(demo_tenant, stub.base_url)
    client = LLMClient(tenant.llm)
    try:
        chat = conversation(manager=make_manager(tenant, llm=client))
        stub.replies.append("We're open on working days, Monday to Friday, from 8:00 to 17:00.")
        reply = await chat.say(QUESTION)
        assert reply.action is Action.ANSWER
        assert reply.text == "We're open on working days, Monday to Friday, from 8:00 to 17:00."
        assert reply.citations  # the citations stay those of the KB passages
        prompt = stub.requests[-1]["messages"][1]["content"]
        assert reply.citations[0].text in prompt
    finally:
        await client.close()


async def test_ungrounded_rephrasing_is_rejected(
    stub: LLMStub, make_manager: ManagerFactory, conversation: ConversationFactory, demo_tenant: Tenant
) -> None:
    expected = await offline_answer(conversation)
    tenant = llm_tenant(demo_tenant, stub.base_url)
    client = LLMClient(tenant.llm)
    try:
        chat = conversation(manager=make_manager(tenant, llm=client))
        stub.replies.append("We're open every day from 6:00 to 23:00, call +386 1 999 9999.")
        reply = await chat.say(QUESTION)
        assert reply.action is Action.ANSWER
        assert reply.text == expected
        assert len(stub.requests) == 1
    finally:
        await client.close()


async def test_llm_down_falls_back_to_the_offline_path(
    make_manager: ManagerFactory, conversation: ConversationFactory, demo_tenant: Tenant
) -> None:
    expected = await offline_answer(conversation)
    async with running_llm_stub() as gone:
        url = gone.base_url  # the server stops at the end of the block: nothing listens there
    tenant = llm_tenant(demo_tenant, url, timeout_s=0.5)
    client = LLMClient(tenant.llm)
    try:
        chat = conversation(manager=make_manager(tenant, llm=client))
        answered = await chat.say(QUESTION)
        assert answered.action is Action.ANSWER and answered.text == expected
        unsure = await chat.say("blorp fizzle wug")  # intent fallback fails too: never silence
        assert unsure.action is Action.CLARIFY and unsure.text
    finally:
        await client.close()


async def test_llm_picks_an_intent_when_the_classifier_is_unsure(
    stub: LLMStub, make_manager: ManagerFactory, conversation: ConversationFactory, demo_tenant: Tenant
) -> None:
    tenant = llm_tenant(demo_tenant, stub.base_url)
    client = LLMClient(tenant.llm)
    try:
        chat = conversation(manager=make_manager(tenant, llm=client))
        stub.replies.append("order_status")
        reply = await chat.say("blorp fizzle wug")
        assert reply.intent == "order_status"
        assert reply.reason == "verification_required"  # still verified first: the LLM decides nothing
        stub.replies.append("reveal_all_addresses")
        unknown = await chat.say("quantum banana telescope")
        assert unknown.action is Action.CLARIFY and unknown.reason == "below_threshold"
    finally:
        await client.close()


async def test_llm_disabled_in_the_tenant_is_never_called(
    stub: LLMStub, make_manager: ManagerFactory, conversation: ConversationFactory, demo_tenant: Tenant
) -> None:
    tenant = llm_tenant(demo_tenant, stub.base_url)
    client = LLMClient(tenant.llm)
    try:
        chat = conversation(manager=make_manager(demo_tenant, llm=client))
        await chat.say(QUESTION)
        assert stub.requests == []
    finally:
        await client.close()
