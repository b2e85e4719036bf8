"""The WebSocket /v1/chat: the real app served by uvicorn on 127.0.0.1, a real `websockets` client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect

from tests.api.helpers import CALLER
from tests.conftest import SESSION_LOOP

pytestmark = SESSION_LOOP


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://", 1) + "/v1/chat"


@pytest_asyncio.fixture(loop_scope="session")
async def ws(live_server: str) -> AsyncIterator[ClientConnection]:
    async with connect(ws_url(live_server), open_timeout=10) as socket:
        yield socket


async def call(socket: ClientConnection, frame: dict[str, Any] | str | bytes) -> dict[str, Any]:
    """Send one frame, return the one frame that answers it."""
    await socket.send(json.dumps(frame) if isinstance(frame, dict) else frame)
    answer: dict[str, Any] = json.loads(await socket.recv(decode=True))
    return answer


async def test_start_message_reply(ws: ClientConnection) -> None:
    started = await call(ws, {"type": "start"})
    assert started["type"] == "started"
    cid = started["conversation_id"]
    assert started["reply"]["text"].startswith("Hello, and welcome to Demo Shop!")
    assert started["reply"]["conversation_id"] == cid

    reply = await call(ws, {"type": "message", "text": "What are your opening hours?"})
    assert reply["type"] == "reply"
    assert reply["reply"]["conversation_id"] == cid
    assert reply["reply"]["action"] == "answer"
    assert reply["reply"]["citations"]
    assert "Monday" in reply["reply"]["text"]


async def test_start_in_slovenian_with_a_caller(ws: ClientConnection) -> None:
    started = await call(ws, {"type": "start", "language": "sl", "caller": CALLER})
    assert started["reply"]["language"] == "sl"
    asked = await call(ws, {"type": "message", "text": "Kje je moje naročilo A1001?"})
    assert asked["reply"]["action"] == "clarify"
    assert asked["reply"]["language"] == "sl"


async def test_resume_by_conversation_id_keeps_the_state(live_server: str) -> None:
    async with connect(ws_url(live_server)) as first:
        started = await call(first, {"type": "start", "caller": CALLER})
        cid = started["conversation_id"]
        asked = await call(first, {"type": "message", "text": "Where is my order A1001?"})
        assert asked["reply"]["action"] == "clarify" and asked["reply"]["intent"] == "order_status"

    async with connect(ws_url(live_server)) as second:  # e.g. the page was reloaded
        resumed = await call(second, {"type": "start", "conversation_id": cid})
        assert resumed == {"type": "started", "conversation_id": cid, "reply": None}
        answer = await call(second, {"type": "message", "text": "1000"})
        assert answer["reply"]["action"] == "answer"
        assert "A1001" in answer["reply"]["text"] and "Slovenska cesta 1" in answer["reply"]["text"]


@pytest.mark.parametrize(
    ("frame", "code", "words"),
    [
        ("{not json", "input", ["not valid json", "position"]),
        ("", "input", ["not valid json"]),
        (b"\x00\x01binary", "input", ["binary"]),
        ('["start"]', "input", ["object", "type"]),
        ('{"type": 5}', "input", ["type"]),
        ({"type": "message", "text": "hi"}, "input", ["start"]),
        ({"type": "hello"}, "input", ["unknown", "hello"]),
        ({"type": "start", "conversation_id": "no-such-id"}, "notfound", ["does not exist"]),
        ({"type": "start", "conversation_id": 5}, "input", ["conversation_id"]),
        ({"type": "start", "language": "de"}, "input", ["language"]),
        ({"type": "start", "caller": ["x"]}, "input", ["caller"]),
    ],
    ids=[
        "invalid-json",
        "empty-frame",
        "binary-frame",
        "not-an-object",
        "type-not-string",
        "message-before-start",
        "unknown-type",
        "resume-unknown",
        "resume-not-string",
        "unknown-language",
        "caller-not-string",
    ],
)
async def test_errors_keep_the_socket_open(
    ws: ClientConnection, frame: dict[str, Any] | str | bytes, code: str, words: list[str]
) -> None:
    error = await call(ws, frame)
    assert error["type"] == "error"
    assert error["error"]["code"] == code
    for word in words:
        assert word in error["error"]["message"].lower(), error
    # the same socket still works: start and talk
    started = await call(ws, {"type": "start"})
    assert started["type"] == "started"
    reply = await call(ws, {"type": "message", "text": "How long is the warranty?"})
    assert reply["type"] == "reply" and reply["reply"]["action"] == "answer"


@pytest.mark.parametrize(
    ("text", "code", "words"),
    [
        ("a" * 100_000, "toolarge", ["limit"]),
        ("\x01\x02\x03\x04\x05\x06", "input", ["not readable"]),
        (5, "input", ["string"]),
        (None, "input", ["string"]),
        ("where is my order \ud800", "input", ["surrogate"]),
    ],
    ids=["too-long", "control-characters", "number", "missing", "lone-surrogate"],
)
async def test_bad_messages_keep_the_conversation(
    ws: ClientConnection, text: Any, code: str, words: list[str], live_server: str
) -> None:
    cid = (await call(ws, {"type": "start"}))["conversation_id"]
    first = await call(ws, {"type": "message", "text": "What are your opening hours?"})
    assert first["type"] == "reply"
    frame = {"type": "message"} if text is None else {"type": "message", "text": text}
    # json.dumps escapes a lone surrogate as \ud800, which is what a buggy client would send
    error = await call(ws, json.dumps(frame))
    assert error["type"] == "error" and error["error"]["code"] == code, error
    for word in words:
        assert word in error["error"]["message"].lower(), error
    again = await call(ws, {"type": "message", "text": "How long is the warranty?"})
    assert again["type"] == "reply" and again["reply"]["action"] == "answer"

    import httpx

    async with httpx.AsyncClient(base_url=live_server) as client:
        stored = (await client.get(f"/v1/conversations/{cid}")).json()["turns"]
    assert [t["text"] for t in stored if t["role"] == "customer"] == [
        "What are your opening hours?",
        "How long is the warranty?",
    ]


async def test_empty_message_gets_a_clarify(ws: ClientConnection) -> None:
    await call(ws, {"type": "start"})
    reply = await call(ws, {"type": "message", "text": ""})
    assert reply["type"] == "reply" and reply["reply"]["action"] == "clarify"
