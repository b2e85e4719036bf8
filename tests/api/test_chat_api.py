"""The chat HTTP API end to end: the real app, Runtime, models, knowledge base and database."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import client_for
from tests.api.helpers import CALLER, say, start, turns
from tests.auth_helpers import token_headers
from tests.conftest import SESSION_LOOP, RuntimeFactory
from voicebot.storage import percentile

pytestmark = SESSION_LOOP

GREETING_EN = "Hello, and welcome to Demo Shop!"


async def test_create_conversation_returns_the_greeting(client: httpx.AsyncClient) -> None:
    data = await start(client)
    assert data["id"] and data["channel"] == "chat" and data["status"] == "active"
    greeting = data["greeting"]
    assert greeting["conversation_id"] == data["id"]
    assert greeting["text"].startswith(GREETING_EN)
    assert greeting["action"] == "answer"
    assert greeting["language"] == "en"


async def test_create_conversation_in_slovenian(client: httpx.AsyncClient) -> None:
    data = await start(client, language="sl")
    assert data["greeting"]["language"] == "sl"
    assert "Demo Shop" in data["greeting"]["text"] and "Pozdravljeni" in data["greeting"]["text"]


async def test_verified_order_status(client: httpx.AsyncClient) -> None:
    cid = (await start(client, caller=CALLER))["id"]
    asked = await say(client, cid, "Where is my order A1001?")
    assert asked["action"] == "clarify"
    assert asked["intent"] == "order_status"
    assert "postcode" in asked["text"].lower()
    assert asked["fields"].get("order_id") == "A1001"

    answer = await say(client, cid, "1000")
    assert answer["action"] == "answer"
    assert answer["intent"] == "order_status"
    assert "A1001" in answer["text"] and "shipped" in answer["text"].lower()
    assert "Slovenska cesta 1" in answer["text"]

    conversation = (await client.get(f"/v1/conversations/{cid}")).json()
    assert conversation["customer_id"]  # identified by caller ID, verified by the postcode
    assert [t["role"] for t in conversation["turns"]] == ["customer", "bot", "customer", "bot"]


async def test_order_status_needs_verification_before_any_personal_data(client: httpx.AsyncClient) -> None:
    cid = (await start(client, caller=CALLER))["id"]
    await say(client, cid, "Where is my order A1001?")
    wrong = await say(client, cid, "9999")
    assert wrong["action"] in ("clarify", "handoff")
    assert "Slovenska cesta" not in wrong["text"]


async def test_knowledge_answer_has_citations(client: httpx.AsyncClient) -> None:
    cid = (await start(client))["id"]
    reply = await say(client, cid, "What is your returns policy?")
    assert reply["action"] == "answer"
    assert reply["citations"], reply
    for citation in reply["citations"]:
        assert citation["source"] and citation["title"] and citation["text"] and citation["passage_id"]
    assert any("return" in c["title"].lower() for c in reply["citations"])
    assert reply["language"] == "en"
    assert 0.0 <= reply["confidence"] <= 1.0


@pytest.mark.parametrize(
    ("question", "words"),
    [
        ("Kdaj ste odprti?", ["ponedeljka", "petka"]),
        ("Kako lahko vrnem izdelek?", ["izdelek"]),
        ("Kakšni so pogoji za vračilo?", ["14 dneh"]),  # the README's example
    ],
)
async def test_slovenian_question_answered_in_slovenian(
    client: httpx.AsyncClient, question: str, words: list[str]
) -> None:
    cid = (await start(client))["id"]
    reply = await say(client, cid, question)
    assert reply["action"] == "answer", reply
    assert reply["language"] == "sl"
    assert reply["citations"]
    for word in words:
        assert word in reply["text"].lower()
    sources = [c["source"] for c in reply["citations"]]
    assert all(s.startswith("sl/") or "/sl/" in s or ".csv" in s for s in sources), sources


async def test_human_request_is_handed_off_with_context(client: httpx.AsyncClient) -> None:
    cid = (await start(client, caller=CALLER))["id"]
    await say(client, cid, "Where is my order A1001?")
    await say(client, cid, "1000")
    reply = await say(client, cid, "I want to talk to a human please")
    assert reply["action"] == "handoff"
    assert reply["handoff"]["reason"] == "human_requested"

    waiting = (await client.get("/v1/handoffs")).json()["handoffs"]
    mine = [h for h in waiting if h["conversation_id"] == cid]
    assert len(mine) == 1
    handoff = mine[0]
    assert handoff["status"] == "waiting" and handoff["channel"] == "chat"
    assert handoff["reason"] == "human_requested"
    assert handoff["summary"] == reply["handoff"]["summary"]
    assert "asked for a person" in handoff["summary"]
    context = handoff["context"]  # the rest of the HandoffContext (summary and reason are columns)
    assert context["intent"] == reply["handoff"]["intent"]
    assert context["language"] == "en"
    assert context["customer"], "the verified customer travels with the handoff"
    assert "Ana" in str(context["customer"])
    said = [line["text"] for line in context["transcript"] if line["role"] == "customer"]
    assert said[:2] == ["Where is my order A1001?", "1000"]
    assert "I want to talk to a human please" in said

    everything = (await client.get("/v1/handoffs", params={"status": "all"})).json()["handoffs"]
    assert cid in {h["conversation_id"] for h in everything}
    conversation = (await client.get(f"/v1/conversations/{cid}")).json()
    assert conversation["status"] != "active"


async def test_csat_is_stored(client: httpx.AsyncClient) -> None:
    cid = (await start(client))["id"]
    await say(client, cid, "What is your returns policy?")
    end = await say(client, cid, "thanks, goodbye")
    assert end["action"] == "end"
    response = await client.post(f"/v1/conversations/{cid}/csat", json={"score": 4, "comment": "quick"})
    assert response.status_code == 200, response.text
    assert response.json() == {"conversation_id": cid, "csat": 4}
    assert (await client.get(f"/v1/conversations/{cid}")).json()["csat"] == 4


async def test_get_conversation_lists_its_turns(client: httpx.AsyncClient) -> None:
    cid = (await start(client))["id"]
    first = await say(client, cid, "What is your returns policy?")
    second = await say(client, cid, "Kdaj ste odprti?")
    data = (await client.get(f"/v1/conversations/{cid}")).json()
    assert data["id"] == cid
    assert data["first_response_ms"] is not None and data["first_response_ms"] >= 0
    listed = data["turns"]
    assert [t["role"] for t in listed] == ["customer", "bot", "customer", "bot"]
    assert [t["text"] for t in listed] == [
        "What is your returns policy?",
        first["text"],
        "Kdaj ste odprti?",
        second["text"],
    ]
    assert listed[1]["action"] == "answer" and listed[1]["citations"]
    assert listed[1]["intent"] == first["intent"]


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "ok" and data["tenant"] == "demo"
    assert data["knowledge"]


async def test_prometheus_metrics_count_replies(client: httpx.AsyncClient) -> None:
    cid = (await start(client))["id"]
    await say(client, cid, "What is your returns policy?")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert any(
        line.startswith("voicebot_replies_total{") and 'channel="chat"' in line and 'action="answer"' in line
        for line in lines
    ), [line for line in lines if "replies" in line]


async def test_widget_page_and_script_are_served(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200 and "/static/widget.js" in page.text
    script = await client.get("/static/widget.js")
    assert script.status_code == 200 and "/v1/chat" in script.text
    assert (await client.get("/static/widget.css")).status_code == 200


async def _metrics_scenario(client: httpx.AsyncClient) -> list[str]:
    """Three conversations: a KB answer rated 5, a handoff rated 2, a verified order status."""
    answered = (await start(client))["id"]
    await say(client, answered, "What is your returns policy?")
    await say(client, answered, "thanks, goodbye")
    assert (await client.post(f"/v1/conversations/{answered}/csat", json={"score": 5})).status_code == 200

    handed = (await start(client))["id"]
    assert (await say(client, handed, "Can I talk to a real person?"))["action"] == "handoff"
    assert (await client.post(f"/v1/conversations/{handed}/csat", json={"score": 2})).status_code == 200

    order = (await start(client, caller=CALLER))["id"]
    await say(client, order, "Where is my order A1001?")
    assert (await say(client, order, "1000"))["action"] == "answer"
    return [answered, handed, order]


async def _check_summary(client: httpx.AsyncClient, ids: list[str]) -> None:
    firsts = [(await client.get(f"/v1/conversations/{cid}")).json()["first_response_ms"] for cid in ids]
    assert all(isinstance(v, int | float) for v in firsts)
    summary = (await client.get("/v1/metrics/summary")).json()
    assert summary["conversations"] == 3
    assert summary["handoff_rate"] == pytest.approx(1 / 3)
    assert summary["csat"] == {"average": pytest.approx(3.5), "responses": 2}
    first = summary["first_response_ms"]
    assert first["p50"] == pytest.approx(percentile(firsts, 50))
    assert first["p95"] == pytest.approx(percentile(firsts, 95))
    assert first["p50"] <= first["p95"]
    assert summary["per_channel"]["chat"]["conversations"] == 3

    later = (await client.get("/v1/metrics/summary", params={"since": "2999-01-01T00:00:00+00:00"})).json()
    assert later["conversations"] == 0


async def test_metrics_summary_reflects_the_conversations(fresh_client: httpx.AsyncClient) -> None:
    empty = (await fresh_client.get("/v1/metrics/summary")).json()
    assert empty["conversations"] == 0
    ids = await _metrics_scenario(fresh_client)
    await _check_summary(fresh_client, ids)


@pytest.mark.postgres
async def test_the_api_on_postgresql(make_runtime: RuntimeFactory) -> None:
    """The same flows with the Runtime on PostgreSQL (a fresh database, dropped afterwards)."""
    runtime = await make_runtime("postgresql")
    assert runtime.db.url.startswith("postgresql+asyncpg://")
    async with client_for(runtime, await token_headers(runtime)) as client:
        ids = await _metrics_scenario(client)
        await _check_summary(client, ids)
        handoffs = (await client.get("/v1/handoffs")).json()["handoffs"]
        assert [h["conversation_id"] for h in handoffs] == [ids[1]]
        assert handoffs[0]["context"]["transcript"]
        listed = await turns(client, ids[2])
        assert [t["text"] for t in listed if t["role"] == "customer"] == ["Where is my order A1001?", "1000"]
