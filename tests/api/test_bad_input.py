"""Bad input gets a clear answer and loses nothing.

Each test starts a conversation with real turns in it, sends something unusable, checks the
status and that the error message says what is wrong, then checks that every stored turn is
still there, that nothing was stored for the bad message, and that the conversation still works.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.api.helpers import assert_error, say, start, turns
from tests.conftest import SESSION_LOOP
from voicebot.app import MAX_BODY_BYTES

pytestmark = SESSION_LOOP

JSON = {"content-type": "application/json"}
STILL_WORKS = "How long is the warranty?"


class Conversation:
    """A conversation with two real exchanges, and a check that they survive."""

    def __init__(self, client: httpx.AsyncClient, cid: str, before: list[dict[str, Any]]) -> None:
        self.client, self.id, self.before = client, cid, before

    @property
    def url(self) -> str:
        return f"/v1/conversations/{self.id}/messages"

    async def post_raw(self, content: bytes | AsyncIterator[bytes], **headers: str) -> httpx.Response:
        return await self.client.post(self.url, content=content, headers={**JSON, **headers})

    async def assert_nothing_lost(self) -> None:
        """Every earlier turn is still there, unchanged, and nothing was added."""
        assert await turns(self.client, self.id) == self.before

    async def assert_still_works(self) -> None:
        reply = await say(self.client, self.id, STILL_WORKS)
        assert reply["action"] == "answer" and reply["citations"], reply
        after = await turns(self.client, self.id)
        assert after[: len(self.before)] == self.before
        assert [t["text"] for t in after[len(self.before) :]] == [STILL_WORKS, reply["text"]]


async def _conversation(client: httpx.AsyncClient) -> Conversation:
    cid = (await start(client))["id"]
    await say(client, cid, "What are your opening hours?")
    await say(client, cid, "Kdaj ste odprti?")
    before = await turns(client, cid)
    assert len(before) == 4
    return Conversation(client, cid, before)


@pytest_asyncio.fixture(loop_scope="session")
async def conv(client: httpx.AsyncClient) -> Conversation:
    return await _conversation(client)


async def test_empty_text_gets_a_clarifying_reply(conv: Conversation) -> None:
    for text in ("", "   \n\t "):
        reply = await say(conv.client, conv.id, text)
        assert reply["action"] == "clarify"
        assert reply["reason"] == "empty"
        assert "?" in reply["text"]  # it asks the customer something
    after = await turns(conv.client, conv.id)
    assert after[:4] == conv.before
    conv.before = after
    await conv.assert_still_works()


async def test_a_100_kb_message_is_refused_and_not_stored(conv: Conversation) -> None:
    response = await conv.client.post(conv.url, json={"text": "where is my order " * 5600})
    assert len(response.request.content) > 100_000
    error = assert_error(response, 413, "limit", "4000")
    assert error["code"] == "toolarge"
    await conv.assert_nothing_lost()
    await conv.assert_still_works()


async def test_a_body_over_1_mb_is_refused(conv: Conversation) -> None:
    body = json.dumps({"text": "x" * (MAX_BODY_BYTES + 10)}).encode()
    assert_error(await conv.post_raw(body), 413, str(MAX_BODY_BYTES))
    await conv.assert_nothing_lost()
    await conv.assert_still_works()


async def test_a_body_over_1_mb_without_content_length_is_refused(conv: Conversation) -> None:
    """Chunked uploads are counted as they arrive, not read whole into memory first."""
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"text": "'
        for _ in range(40):
            sent += 64 * 1024
            yield b"a" * (64 * 1024)
        yield b'"}'

    response = await conv.post_raw(chunks())
    assert "content-length" not in response.request.headers
    assert_error(response, 413, str(MAX_BODY_BYTES))
    await conv.assert_nothing_lost()
    await conv.assert_still_works()


@pytest.mark.parametrize(
    "text",
    [
        "\x01\x02\x03\x04\x05\x06\x07\x08",
        "\x1b[2J\x1b[H\x7f\x7f\x7f\x7f\x7f\x7f",
        "hello\x00world",
        "".join(chr(c) for c in range(1, 32) if chr(c) not in "\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85"),
        "\ufeff\u200b\u200b\u200b\u200b\u200b\u200b\u200b\u200b\u200b",
    ],
    ids=["c0-controls", "escape-sequences", "nul", "all-c0", "zero-width"],
)
async def test_binary_junk_and_control_characters_are_refused(conv: Conversation, text: str) -> None:
    assert_error(await conv.client.post(conv.url, json={"text": text}), 422, "text")
    await conv.assert_nothing_lost()
    await conv.assert_still_works()


@pytest.mark.parametrize(
    "body",
    [
        b'{"text": "caf\xe9 please"}',  # Latin-1, not UTF-8
        b"\xff\xfe\x00\x00garbage",
        b'{"text": "\xc3\x28"}',  # a broken two-byte sequence
    ],
    ids=["latin1", "bom-junk", "broken-sequence"],
)
async def test_invalid_utf8_is_a_clear_4xx(conv: Conversation, body: bytes) -> None:
    assert_error(await conv.post_raw(body), 422, "utf-8")
    await conv.assert_nothing_lost()
    await conv.assert_still_works()


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\ud83d"])
async def test_unpaired_surrogates_are_refused(conv: Conversation, escape: str) -> None:
    body = ('{"text": "where is my order A1001, please ' + escape + '"}').encode()
    assert_error(await conv.post_raw(body), 422, "surrogate")
    await conv.assert_nothing_lost()
    await conv.assert_still_works()


@pytest.mark.parametrize(
    "body",
    [b'{"text": ', b"{text: 'hi'}", b'{"text": "hi",}', b"", b"null", b"[1, 2"],
    ids=["truncated", "single-quotes", "trailing-comma", "empty", "null", "unclosed"],
)
async def test_malformed_json_is_422_with_a_clear_message(conv: Conversation, body: bytes) -> None:
    error = assert_error(await conv.post_raw(body), 422)
    message = error["message"].lower()
    assert "json" in message or "body" in message or "field required" in message, error
    assert error["problems"]
    await conv.assert_nothing_lost()


async def test_malformed_json_names_the_position(conv: Conversation) -> None:
    error = assert_error(
        await conv.post_raw(b'{"text": "hi" "caller": 1}'), 422, "not valid json", "position"
    )
    assert error["problems"][0]["field"] == "body"
    await conv.assert_nothing_lost()


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"text": 5}, "text", ["string"]),
        ({"text": ["hi"]}, "text", ["string"]),
        ({"text": {"a": 1}}, "text", ["string"]),
        ({"text": None}, "text", ["string"]),
        ({"text": True}, "text", ["string"]),
        ({}, "text", ["required"]),
        ({"text": "hi", "caller": 38640111222}, "caller", ["string"]),
        ({"text": "hi", "caller": "1" * 65}, "caller", ["64"]),
        (["hi"], "body", ["object"]),
        ("hi", "body", ["object"]),
    ],
    ids=["int", "list", "object", "null", "bool", "missing", "caller-int", "caller-long", "array", "string"],
)
async def test_wrong_types_are_422_naming_the_field(
    conv: Conversation, body: Any, field: str, words: list[str]
) -> None:
    error = assert_error(await conv.client.post(conv.url, json=body), 422, *words)
    assert error["code"] == "invalid_request"
    assert error["problems"][0]["field"] == field
    assert error["message"].startswith(field)
    await conv.assert_nothing_lost()


async def test_extra_fields_are_refused(conv: Conversation) -> None:
    error = assert_error(
        await conv.client.post(conv.url, json={"text": "hi", "admin": True}), 422, "admin", "not permitted"
    )
    assert error["problems"][0]["field"] == "admin"
    await conv.assert_nothing_lost()
    response = await conv.client.post("/v1/conversations", json={"channel": "chat", "tenant": "other"})
    assert_error(response, 422, "tenant")


@pytest.mark.parametrize(
    "body",
    [{"language": "de"}, {"language": "english"}, {"channel": "voice"}, {"caller": 5}, {"email": "x" * 300}],
    ids=["unknown-language", "long-language", "channel", "caller-int", "email-long"],
)
async def test_bad_new_conversation_is_422(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    assert_error(await client.post("/v1/conversations", json=body), 422, next(iter(body)))


async def test_unknown_conversation_is_404(client: httpx.AsyncClient) -> None:
    for response in (
        await client.post("/v1/conversations/no-such-id/messages", json={"text": "hi"}),
        await client.get("/v1/conversations/no-such-id"),
        await client.post("/v1/conversations/no-such-id/csat", json={"score": 3}),
        await client.get("/v1/conversations/" + "x" * 5000),
    ):
        error = assert_error(response, 404, "does not exist")
        assert error["code"] == "notfound"


@pytest.mark.parametrize("score", [0, 6, -1, 100, 3.5, "5", True, None])
async def test_csat_out_of_range_is_422(conv: Conversation, score: Any) -> None:
    response = await conv.client.post(f"/v1/conversations/{conv.id}/csat", json={"score": score})
    assert_error(response, 422, "score")
    data = (await conv.client.get(f"/v1/conversations/{conv.id}")).json()
    assert data["csat"] is None
    await conv.assert_nothing_lost()


async def test_bad_query_parameters_are_422(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/v1/handoffs", params={"status": "bogus"}), 422, "status")
    assert_error(await client.get("/v1/metrics/summary", params={"since": "yesterday"}), 422, "since")


async def test_unknown_routes_and_methods_answer_in_the_error_shape(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/v1/nothing-here"), 404)
    assert_error(await client.delete("/v1/conversations"), 405)


async def test_an_ended_conversation_refuses_more_messages_clearly(conv: Conversation) -> None:
    await say(conv.client, conv.id, "thanks, goodbye")
    before = await turns(conv.client, conv.id)
    response = await conv.client.post(conv.url, json={"text": "one more thing"})
    assert_error(response, 409, "ended")
    assert await turns(conv.client, conv.id) == before
