import pytest
from tests.conftest import SESSION_LOOP
pytestmark = SESSION_LOOP

async def test_explore(client):
    r = await client.post("/v1/conversations", json={})
    cid = r.json()["id"]
    cases = [
        ("surrogate", dict(content=b'{"text": "hello there how are you today my friend \\ud800"}', headers={"content-type": "application/json"})),
        ("ws", dict(json={"text": "   \n\t "})),
        ("emoji", dict(json={"text": "📦📦📦 where is my order?"})),
        ("caller-long", dict(json={"text": "hi", "caller": "1"*65})),
        ("caller-junk", dict(json={"text": "hi", "caller": "!!!\x01"})),
        ("null", dict(json={"text": None})),
        ("missing", dict(json={})),
        ("4000", dict(json={"text": "where is my order " * 222})),
        ("rtl", dict(json={"text": "\u202e\u202d where"})),
        ("bidi", dict(json={"text": "\ufeff\u200b\u200b\u200b\u200b\u200b\u200b\u200b\u200b\u200b\u200b"})),
    ]
    for name, kw in cases:
        r = await client.post(f"/v1/conversations/{cid}/messages", **kw)
        print(name, r.status_code, r.text[:200])
    for body in [{"caller": 5}, {"language": "de"}, {"channel": "voice"}, {"language": "english"}]:
        r = await client.post("/v1/conversations", json=body); print(body, r.status_code, r.text[:200])
    r = await client.get(f"/v1/conversations/{cid}"); print(len(r.json()["turns"]))
    r = await client.get("/v1/handoffs?status=bogus"); print(r.status_code, r.text)
    r = await client.get("/v1/metrics/summary?since=bogus"); print(r.status_code, r.text)
    r = await client.get("/nonexistent"); print(r.status_code, r.text)
    r = await client.delete("/v1/conversations"); print(r.status_code, r.text)
    r = await client.get("/v1/conversations/" + "x"*5000); print(r.status_code, r.text[:100])
