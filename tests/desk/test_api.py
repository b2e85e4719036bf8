"""The desk's HTTP API and the chat socket's pushed frames, on the real app served on 127.0.0.1:
a customer on WS /v1/chat, agents with API tokens, an operator who may not use the desk."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect

from tests.auth_helpers import token_headers
from tests.conftest import SESSION_LOOP, serving
from tests.desk.conftest import HANDOFF_REQUEST
from voicebot.app import create_app
from voicebot.auth.roles import Role
from voicebot.runtime import Runtime

pytestmark = SESSION_LOOP
HANG_GUARD_SECS = 10.0


@dataclass
class Desk:
    url: str
    runtime: Runtime
    ana: httpx.AsyncClient
    bob: httpx.AsyncClient


@pytest_asyncio.fixture(loop_scope="session")
async def desk(runtime: Runtime) -> AsyncIterator[Desk]:
    async with serving(create_app(runtime.settings, runtime)) as url:
        ana = httpx.AsyncClient(
            base_url=url, headers=await token_headers(runtime, Role.AGENT, username="ana")
        )
        bob = httpx.AsyncClient(
            base_url=url, headers=await token_headers(runtime, Role.SUPERVISOR, username="bob")
        )
        async with ana, bob:
            yield Desk(url, runtime, ana, bob)


async def frame(socket: ClientConnection) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(decode=True), HANG_GUARD_SECS))
    return data


async def send(socket: ClientConnection, payload: dict[str, Any]) -> dict[str, Any]:
    await socket.send(json.dumps(payload))
    return await frame(socket)


def ok(response: httpx.Response) -> Any:
    assert response.is_success, (response.status_code, response.text)
    return response.json()


async def test_a_chat_handed_off_taken_answered_and_handed_back(desk: Desk) -> None:
    async with connect(desk.url.replace("http", "ws", 1) + "/v1/chat") as customer:
        started = await send(customer, {"type": "start"})
        cid = started["conversation_id"]
        handed = await send(customer, {"type": "message", "text": HANDOFF_REQUEST})
        assert handed["type"] == "reply" and handed["reply"]["action"] == "handoff"
        queued = await frame(customer)  # pushed after the reply
        assert queued["type"] == "notice" and queued["kind"] == "queued" and queued["position"] == 1

        queue = ok(await desk.ana.get("/v1/desk/queue"))
        (entry,) = [h for h in queue["waiting"] if h["conversation_id"] == cid]
        detail = ok(await desk.ana.get(f"/v1/desk/handoffs/{entry['id']}"))
        assert detail["context"]["summary"] and detail["transcript"][-1]["role"] == "bot"

        taken = ok(await desk.ana.post(f"/v1/desk/handoffs/{entry['id']}/take"))
        assert taken["status"] == "taken" and taken["taken_by"] == "ana"
        joined = await frame(customer)
        assert joined["kind"] == "joined" and joined["text"].endswith("has joined the conversation.")
        conflict = await desk.bob.post(f"/v1/desk/handoffs/{entry['id']}/take")
        assert conflict.status_code == 409 and "already taken by ana" in conflict.json()["error"]["message"]

        ok(await desk.ana.post(f"/v1/desk/handoffs/{entry['id']}/reply", json={"text": "Hi, I can help."}))
        pushed = await frame(customer)
        assert pushed["type"] == "agent" and pushed["text"] == "Hi, I can help."
        silent = await send(customer, {"type": "message", "text": "Great, thanks!"})
        assert silent["reply"]["text"] == "" and silent["reply"]["reason"] == "with_agent"

        ok(await desk.ana.post(f"/v1/desk/handoffs/{entry['id']}/hand-back"))
        assert (await frame(customer))["kind"] == "handed_back"
        answer = await send(customer, {"type": "message", "text": "What are your opening hours?"})
        assert answer["reply"]["action"] == "answer" and "Monday" in answer["reply"]["text"]

    conversation = ok(await desk.ana.get(f"/v1/conversations/{cid}"))
    roles = [(t["role"], t["text"]) for t in conversation["turns"]]
    assert ("agent", "Hi, I can help.") in roles and ("customer", "Great, thanks!") in roles
    gone = ok(await desk.ana.get("/v1/desk/queue"))
    assert all(h["conversation_id"] != cid for h in gone["waiting"] + gone["taken"])


async def test_take_over_close_and_the_live_feed(desk: Desk) -> None:
    cid = ok(await desk.ana.post("/v1/conversations", json={}))["id"]
    ws_url = desk.url.replace("http", "ws", 1) + "/v1/live?topics=handoff."
    async with connect(
        ws_url, additional_headers={"Authorization": desk.bob.headers["authorization"]}
    ) as live:
        assert (await frame(live))["type"] == "ready"
        taken = ok(await desk.bob.post(f"/v1/desk/conversations/{cid}/take"))
        assert taken["reason"] == "taken_over" and taken["taken_by"] == "bob"
        event = await frame(live)
        assert event["topic"] == "handoff.taken" and event["data"]["conversation_id"] == cid
        refused = await desk.ana.post(f"/v1/desk/handoffs/{taken['id']}/close")
        assert refused.status_code == 409
        closed = ok(await desk.bob.post(f"/v1/desk/handoffs/{taken['id']}/close"))
        assert closed["status"] == "closed"
        event = await frame(live)
        assert event["topic"] == "handoff.closed" and event["data"]["outcome"] == "resolved"
    assert ok(await desk.ana.get(f"/v1/conversations/{cid}"))["status"] == "resolved"


async def test_bad_requests_get_clear_errors(desk: Desk) -> None:
    missing = await desk.ana.get("/v1/desk/handoffs/nope")
    assert missing.status_code == 404 and "does not exist" in missing.json()["error"]["message"]
    assert (await desk.ana.post("/v1/desk/handoffs/nope/take")).status_code == 404
    assert (await desk.ana.post("/v1/desk/conversations/nope/take")).status_code == 404
    no_text = await desk.ana.post("/v1/desk/handoffs/nope/reply", json={})
    assert no_text.status_code == 422 and "text" in no_text.json()["error"]["message"]


async def test_only_desk_roles_may_use_the_desk(desk: Desk) -> None:
    operator = await token_headers(desk.runtime, Role.OPERATOR)
    async with httpx.AsyncClient(base_url=desk.url) as anyone:
        for method, path in [
            ("GET", "/v1/desk/queue"),
            ("GET", "/v1/desk/handoffs/x"),
            ("POST", "/v1/desk/handoffs/x/take"),
            ("POST", "/v1/desk/handoffs/x/hand-back"),
            ("POST", "/v1/desk/handoffs/x/close"),
            ("POST", "/v1/desk/conversations/x/take"),
        ]:
            assert (await anyone.request(method, path)).status_code == 401, path
            refused = await anyone.request(method, path, headers=operator)
            assert refused.status_code == 403, path
            assert "'desk' permission" in refused.json()["error"]["message"]
        page = await anyone.get("/desk")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
