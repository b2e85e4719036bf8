"""The review API over HTTP: who may use it, search and filters, one conversation with its marks,
the recording (with HTTP Range), marking answers, and the gaps report."""

from __future__ import annotations

import wave
from datetime import timedelta

import httpx

from tests.api.conftest import client_for
from tests.auth_helpers import token_headers
from tests.conftest import SESSION_LOOP
from tests.review.seed import T0, Exchange, bot_turns, seed
from voicebot.auth.roles import Role
from voicebot.live.recordings import recording_path
from voicebot.runtime import Runtime

pytestmark = SESSION_LOOP


async def two_conversations(runtime: Runtime) -> tuple[str, str]:
    chat = await seed(
        runtime,
        [
            Exchange("How do I return a jacket?", "Within 14 days.", intent="returns", confidence=0.91),
            Exchange("Do you repair drones?", "Could you say more?", "clarify", None, 0.2, "below_threshold"),
        ],
        at=T0,
    )
    voice = await seed(
        runtime,
        [Exchange("Can you fix my drone?", "A colleague will help.", "handoff", None, 0.3, "low_confidence")],
        channel="voice",
        at=T0 + timedelta(hours=1),
        caller="+38640111222",
    )
    return chat, voice


async def test_roles(runtime: Runtime) -> None:
    async with client_for(runtime) as anon:
        assert (await anon.get("/v1/review/conversations")).status_code == 401
    async with client_for(runtime, await token_headers(runtime, Role.AGENT)) as agent:
        response = await agent.get("/v1/review/conversations")
        assert response.status_code == 403 and "review" in response.json()["error"]["message"]
        assert (await agent.get("/v1/review/gaps")).status_code == 403
    async with client_for(runtime, await token_headers(runtime, Role.SUPERVISOR)) as supervisor:
        assert (await supervisor.get("/v1/review/conversations")).status_code == 200


async def test_search_detail_and_marks(fresh_client: httpx.AsyncClient, runtime: Runtime) -> None:
    chat, voice = await two_conversations(runtime)
    listed = (await fresh_client.get("/v1/review/conversations")).json()
    assert [c["id"] for c in listed["conversations"]] == [voice, chat]
    assert listed["next_cursor"] is None
    assert listed["conversations"][1]["first_question"] == "How do I return a jacket?"
    assert listed["conversations"][0]["handoff_reason"] == "low_confidence"

    async def ids(**params: object) -> list[str]:
        response = await fresh_client.get("/v1/review/conversations", params=params)
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()["conversations"]]

    assert await ids(channel="voice") == [voice]
    assert await ids(q="JACKET") == [chat]
    assert await ids(intent="returns") == [chat]
    assert await ids(max_confidence=0.25) == [chat]
    assert await ids(status="handoff") == [voice]
    assert await ids(resolved="false") == [voice]
    assert await ids(handoff_reason="low_confidence") == [voice]
    assert await ids(since="2026-03-02T09:30:00Z") == [voice]
    assert await ids(until="2026-03-02T09:30:00") == [chat]  # no offset: UTC
    page = (await fresh_client.get("/v1/review/conversations", params={"limit": 1})).json()
    rest = await ids(limit=1, cursor=page["next_cursor"])
    assert [page["conversations"][0]["id"], *rest] == [voice, chat]
    for bad in ({"channel": "fax"}, {"min_confidence": 2}, {"min_confidence": 0.5, "max_confidence": 0.2}):
        response = await fresh_client.get("/v1/review/conversations", params=bad)
        assert response.status_code == 422, (bad, response.text)
    assert (await fresh_client.get("/v1/review/conversations", params={"cursor": "x"})).status_code == 422

    detail = (await fresh_client.get(f"/v1/review/conversations/{chat}")).json()
    assert [t["role"] for t in detail["turns"]] == ["customer", "bot", "customer", "bot"]
    answer = detail["turns"][1]
    assert answer["intent"] == "returns" and answer["confidence"] == 0.91 and answer["latency_ms"] == 120.0
    assert answer["citations"][0]["source"] == "en/faq.yaml#x"
    assert detail["recording"] is False and detail["recording_url"] is None

    turn = (await bot_turns(runtime, chat))[0]
    marked = await fresh_client.post(
        f"/v1/review/turns/{turn}/mark", json={"verdict": "wrong", "note": "30 days"}
    )
    assert marked.status_code == 200, marked.text
    assert marked.json()["verdict"] == "wrong" and marked.json()["note"] == "30 days"
    again = await fresh_client.post(f"/v1/review/turns/{turn}/mark", json={"verdict": "right"})
    assert again.status_code == 200
    marks = (await fresh_client.get(f"/v1/review/conversations/{chat}")).json()["turns"][1]["marks"]
    assert [(m["verdict"], m["note"]) for m in marks] == [("right", "")]  # replaced, not added
    customer_turn = detail["turns"][0]["id"]
    refused = await fresh_client.post(f"/v1/review/turns/{customer_turn}/mark", json={"verdict": "wrong"})
    assert refused.status_code == 409
    bad = await fresh_client.post(f"/v1/review/turns/{turn}/mark", json={"verdict": "maybe"})
    assert bad.status_code == 422
    assert (
        await fresh_client.post("/v1/review/turns/999999/mark", json={"verdict": "wrong"})
    ).status_code == 404
    assert (await fresh_client.delete(f"/v1/review/turns/{turn}/mark")).status_code == 204
    assert (await fresh_client.delete(f"/v1/review/turns/{turn}/mark")).status_code == 404
    marks_audited = await runtime.audit.for_conversation(chat, action="review.mark")
    assert [a.details["verdict"] for a in marks_audited] == ["wrong", "right"]
    assert [a.action for a in await runtime.audit.recent_actions(runtime.tenant.id, "review.unmark")] == [
        "review.unmark"
    ]
    assert (await fresh_client.get("/v1/review/conversations/nope")).status_code == 404


async def test_recording_streams_with_range(fresh_client: httpx.AsyncClient, runtime: Runtime) -> None:
    chat, voice = await two_conversations(runtime)
    missing = await fresh_client.get(f"/v1/review/conversations/{chat}/recording")
    assert missing.status_code == 404 and "no recording" in missing.json()["error"]["message"]
    path = recording_path(runtime.settings, runtime.tenant.id, voice)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(bytes(range(256)) * 64)
    detail = (await fresh_client.get(f"/v1/review/conversations/{voice}")).json()
    assert detail["recording"] is True
    full = await fresh_client.get(detail["recording_url"])
    assert full.status_code == 200 and full.headers["content-type"] == "audio/wav"
    assert full.content == path.read_bytes()
    part = await fresh_client.get(detail["recording_url"], headers={"Range": "bytes=44-99"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 44-99/{path.stat().st_size}"
    assert part.content == path.read_bytes()[44:100]
    assert (await fresh_client.get("/v1/review/conversations/nope/recording")).status_code == 404


async def test_gaps(fresh_client: httpx.AsyncClient, runtime: Runtime) -> None:
    chat, voice = await two_conversations(runtime)
    window = {"since": "2026-03-01T00:00:00Z", "until": "2026-03-03T00:00:00Z"}
    report = (await fresh_client.get("/v1/review/gaps", params=window)).json()
    assert report["questions"] == 2 and report["capped"] is False and report["note"] is None
    [group] = report["groups"]
    assert group["count"] == 2
    assert set(group["examples"]) == {"Do you repair drones?", "Can you fix my drone?"}
    assert group["conversation_ids"] == [voice, chat]
    assert group["reasons"] == {"below_threshold": 1, "low_confidence": 1}
    assert group["answered_now"] is False
    capped = (await fresh_client.get("/v1/review/gaps", params={**window, "limit": 1})).json()
    assert capped["capped"] is True and capped["questions"] == 1 and "newest 1" in capped["note"]
    empty = (await fresh_client.get("/v1/review/gaps")).json()  # the last 30 days: nothing seeded there
    assert empty["groups"] == []
    wrong_way = await fresh_client.get(
        "/v1/review/gaps", params={"since": window["until"], "until": window["since"]}
    )
    assert wrong_way.status_code == 422
