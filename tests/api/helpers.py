"""Small helpers for the API tests: start a conversation, send a turn, read it back."""

from __future__ import annotations

from typing import Any

import httpx

CALLER = "+38640111222"  # the demo customer Ana Novak (postcode 1000, order A1001 shipped)


async def start(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/conversations", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def say(client: httpx.AsyncClient, conversation_id: str, text: str, **extra: Any) -> dict[str, Any]:
    response = await client.post(
        f"/v1/conversations/{conversation_id}/messages", json={"text": text, **extra}
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def turns(client: httpx.AsyncClient, conversation_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/conversations/{conversation_id}")
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()["turns"]
    return result


def assert_error(response: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    """The documented error shape {"error": {"code", "message"}} with ``status``; the message
    (lower-cased) contains each of ``words``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    for word in words:
        assert word.lower() in error["message"].lower(), error
    return error
