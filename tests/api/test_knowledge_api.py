"""The knowledge API: who may edit, listing and filters, and an edit that changes the bot's answer
in the same running app, without a restart (asked through /v1/conversations before and after)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from tests.api.conftest import client_for
from tests.auth_helpers import token_headers
from tests.conftest import SESSION_LOOP
from tests.review.seed import Exchange, seed
from voicebot.auth.roles import Role
from voicebot.runtime import Runtime

pytestmark = SESSION_LOOP

QUESTION = "Do you repair drones?"
ANSWER = "Yes: our service centre repairs drones of every brand we sell; bring it in with the receipt."


async def ask(client: httpx.AsyncClient, text: str) -> dict[str, Any]:
    started = await client.post("/v1/conversations", json={"language": "en"})
    assert started.status_code == 201, started.text
    reply = await client.post(f"/v1/conversations/{started.json()['id']}/messages", json={"text": text})
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def test_roles(runtime: Runtime) -> None:
    async with client_for(runtime) as anon:
        assert (await anon.get("/v1/knowledge/passages")).status_code == 401
    async with client_for(runtime, await token_headers(runtime, Role.AGENT)) as agent:
        assert (await agent.get("/v1/knowledge/passages")).status_code == 403
        assert (await agent.post("/v1/knowledge/passages", json={"text": "x"})).status_code == 403
    async with client_for(runtime, await token_headers(runtime, Role.OPERATOR)) as operator:
        assert (await operator.get("/v1/knowledge/passages")).status_code == 200


async def test_an_edit_changes_the_answer_without_restart(
    fresh_client: httpx.AsyncClient, runtime: Runtime
) -> None:
    before = await ask(fresh_client, QUESTION)
    assert before["action"] == "clarify" and before["reason"] == "below_threshold"

    added = await fresh_client.post(
        "/v1/knowledge/passages", json={"text": ANSWER, "questions": [QUESTION, "Can you fix my drone?"]}
    )
    assert added.status_code == 201, added.text
    passage = added.json()
    assert passage["origin"] == "console" and passage["approved"] is True and passage["title"] == QUESTION
    after = await ask(fresh_client, "can you fix my drone")
    assert after["action"] == "answer" and after["text"] == ANSWER
    assert after["citations"][0]["passage_id"] == passage["id"]

    edited = await fresh_client.patch(
        f"/v1/knowledge/passages/{passage['id']}", json={"text": ANSWER + " Free estimate."}
    )
    assert edited.status_code == 200 and edited.json()["text"] == ANSWER + " Free estimate."
    assert (await ask(fresh_client, QUESTION))["text"] == ANSWER + " Free estimate."

    assert (await fresh_client.post(f"/v1/knowledge/passages/{passage['id']}/unapprove")).json()[
        "approved"
    ] is False
    assert (await ask(fresh_client, QUESTION))["action"] == "clarify"
    assert (await fresh_client.post(f"/v1/knowledge/passages/{passage['id']}/approve")).json()[
        "approved"
    ] is True
    assert (await ask(fresh_client, QUESTION))["action"] == "answer"

    deleted = await fresh_client.delete(f"/v1/knowledge/passages/{passage['id']}")
    assert deleted.json() == {"id": passage["id"], "outcome": "deleted"}
    assert (await ask(fresh_client, QUESTION))["action"] == "clarify"
    assert (await fresh_client.get(f"/v1/knowledge/passages/{passage['id']}")).status_code == 404
    actions = [a.action for a in await runtime.audit.search(runtime.tenant.id, action="knowledge.")]
    assert actions == [
        "knowledge.delete",
        "knowledge.approve",
        "knowledge.unapprove",
        "knowledge.edit",
        "knowledge.add",
    ]


async def test_listing_file_passages_and_overrides(fresh_client: httpx.AsyncClient, runtime: Runtime) -> None:
    listed = (
        await fresh_client.get("/v1/knowledge/passages", params={"q": "gift cards", "language": "en"})
    ).json()
    gift = next(
        p for p in listed["passages"] if p["origin"] == "file" and "Do you sell gift cards?" in p["questions"]
    )
    drafts = (await fresh_client.get("/v1/knowledge/passages", params={"approved": "false"})).json()
    assert drafts["total"] >= 1 and all(not p["approved"] for p in drafts["passages"])

    refused = await fresh_client.delete(f"/v1/knowledge/passages/{gift['id']}")
    assert refused.status_code == 409 and "unapprove it here" in refused.json()["error"]["message"]
    changed = await fresh_client.patch(
        f"/v1/knowledge/passages/{gift['id']}", json={"text": "Gift cards: 5 to 50 EUR."}
    )
    assert changed.json()["origin"] == "override" and changed.json()["source"] == "console:" + gift["source"]
    assert (await ask(fresh_client, "Do you sell gift cards?"))["text"] == "Gift cards: 5 to 50 EUR."
    overrides = (await fresh_client.get("/v1/knowledge/passages", params={"origin": "override"})).json()
    assert [p["id"] for p in overrides["passages"]] == [gift["id"]]
    restored = await fresh_client.delete(f"/v1/knowledge/passages/{gift['id']}")
    assert restored.json()["outcome"] == "restored_from_file"
    assert (await fresh_client.get(f"/v1/knowledge/passages/{gift['id']}")).json()["text"] == gift["text"]
    assert (await ask(fresh_client, "Do you sell gift cards?"))["text"] == gift["text"]

    for bad in (
        {},
        {"text": ""},
        {"text": "x", "language": "de"},
        {"text": "x", "colour": "red"},
        {"text": 5},
    ):
        response = await fresh_client.post("/v1/knowledge/passages", json=bad)
        assert response.status_code == 422, (bad, response.text)
    assert (await fresh_client.get("/v1/knowledge/passages", params={"origin": "mars"})).status_code == 422


async def test_a_gap_closes_when_an_answer_is_added(
    fresh_client: httpx.AsyncClient, runtime: Runtime
) -> None:
    now = runtime.clock()
    await seed(
        runtime,
        [Exchange(QUESTION, "Could you say more?", "clarify", None, 0.2, "below_threshold")],
        at=now - timedelta(hours=1),
    )
    [group] = (await fresh_client.get("/v1/review/gaps")).json()["groups"]
    assert group["representative"] == QUESTION and group["answered_now"] is False
    added = await fresh_client.post(
        "/v1/knowledge/passages", json={"text": ANSWER, "questions": [group["representative"]]}
    )
    assert added.status_code == 201
    [group] = (await fresh_client.get("/v1/review/gaps")).json()["groups"]
    assert group["answered_now"] is True and group["answered_confidence"] >= runtime.tenant.threshold
