"""Accounts over HTTP: every staff endpoint guarded, login with a secure cookie and CSRF, roles,
users and tokens, the audit trail, and the live feed's socket."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.api.conftest import client_for
from tests.auth_helpers import PASSWORD, add_user, token_headers
from tests.conftest import serving
from voicebot.app import create_app
from voicebot.auth.roles import Role
from voicebot.runtime import Runtime

# The only /v1 endpoints open to anyone: the customer's chat and call, and the carrier's webhooks
# (those check the carrier's signature or the call's secret token themselves).
PUBLIC = {
    ("POST", "/v1/conversations"),
    ("GET", "/v1/conversations/{conversation_id}"),
    ("POST", "/v1/conversations/{conversation_id}/messages"),
    ("POST", "/v1/conversations/{conversation_id}/csat"),
    ("WS", "/v1/chat"),
    ("POST", "/v1/auth/login"),
    ("POST", "/v1/auth/logout"),
    ("POST", "/v1/twilio/voice"),
    ("POST", "/v1/twilio/outbound/{token}"),
    ("POST", "/v1/twilio/outbound/{token}/status"),
    ("WS", "/v1/media/{provider}"),
    ("POST", "/v1/webrtc/offer"),
    ("DELETE", "/v1/webrtc/calls/{pc_id}"),
}


def v1_routes(runtime: Runtime) -> list[tuple[str, str]]:
    routes: list[tuple[str, str]] = []
    pending = list(create_app(runtime.settings, runtime).routes)
    while pending:
        route = pending.pop(0)
        included = getattr(route, "original_router", None)  # an include_router()'d router
        if included is not None:
            pending.extend(included.routes)
            continue
        path = getattr(route, "path", "")
        if not path.startswith("/v1/"):
            continue
        methods = getattr(route, "methods", None)
        if methods:
            routes.extend((m, path) for m in sorted(methods) if m != "HEAD")
        else:
            routes.append(("WS", path))
    return routes


def concrete(path: str) -> str:
    return path.replace("{", "x").replace("}", "")


async def test_every_staff_endpoint_refuses_anonymous_callers(
    anon_client: httpx.AsyncClient, shared_runtime: Runtime
) -> None:
    guarded = [(m, p) for m, p in v1_routes(shared_runtime) if (m, p) not in PUBLIC and m != "WS"]
    assert len(guarded) >= 20
    for method, path in guarded:
        response = await anon_client.request(method, concrete(path), json={} if method != "GET" else None)
        assert response.status_code == 401, (method, path, response.status_code, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"]["code"] == "authentication"


async def test_public_endpoints_stay_open(anon_client: httpx.AsyncClient) -> None:
    started = await anon_client.post("/v1/conversations", json={})
    assert started.status_code == 201
    cid = started.json()["id"]
    assert (
        await anon_client.post(f"/v1/conversations/{cid}/messages", json={"text": "hi"})
    ).status_code == 200
    assert (await anon_client.get(f"/v1/conversations/{cid}")).status_code == 200
    assert (await anon_client.get("/healthz")).status_code == 200


@pytest.mark.parametrize(
    ("role", "path", "status"),
    [
        (Role.AGENT, "/v1/campaigns", 403),
        (Role.AGENT, "/v1/metrics/summary", 403),
        (Role.AGENT, "/v1/handoffs", 200),
        (Role.AGENT, "/v1/users", 403),
        (Role.OPERATOR, "/v1/campaigns", 200),
        (Role.OPERATOR, "/v1/handoffs", 403),
        (Role.SUPERVISOR, "/v1/audit", 200),
        (Role.SUPERVISOR, "/v1/users", 403),
        (Role.ADMIN, "/v1/users", 200),
    ],
)
async def test_roles_reach_what_they_may(shared_runtime: Runtime, role: Role, path: str, status: int) -> None:
    async with client_for(shared_runtime, await token_headers(shared_runtime, role)) as client:
        response = await client.get(path)
    assert response.status_code == status, response.text
    if status == 403:
        assert "permission" in response.json()["error"]["message"]


async def test_a_bad_or_malformed_token_is_refused(anon_client: httpx.AsyncClient) -> None:
    for header in ("Bearer vbt_not-a-token", "Basic dXNlcjpwYXNz", "Bearer "):
        response = await anon_client.get("/v1/handoffs", headers={"Authorization": header})
        assert response.status_code == 401, header


async def test_login_cookie_session_and_csrf(runtime: Runtime) -> None:
    await add_user(runtime, "sara", PASSWORD, Role.SUPERVISOR)
    async with client_for(runtime) as browser:
        wrong = await browser.post("/v1/auth/login", json={"username": "sara", "password": "not it at all"})
        assert (
            wrong.status_code == 401
            and wrong.json()["error"]["message"] == "the user name or the password is wrong"
        )
        login = await browser.post("/v1/auth/login", json={"username": "sara", "password": PASSWORD})
        assert login.status_code == 200, login.text
        cookie = login.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
        assert "secure" not in cookie.replace("voicebot_session", "")  # plain http: a browser would drop it
        body = login.json()
        assert body["user"]["role"] == "supervisor" and "live" in body["user"]["permissions"]
        me = (await browser.get("/v1/auth/me")).json()
        assert (
            me["user"]["username"] == "sara"
            and me["csrf_token"] == body["csrf_token"]
            and me["via"] == "session"
        )
        # a change without the CSRF token is refused, with it allowed
        mark = await browser.post("/v1/campaigns/nope/pause")
        assert mark.status_code == 403 and "CSRF" in mark.json()["error"]["message"]
        mark = await browser.post("/v1/campaigns/nope/pause", headers={"X-CSRF-Token": body["csrf_token"]})
        assert mark.status_code == 404
        out = await browser.post("/v1/auth/logout")
        assert out.status_code == 204
        assert (await browser.get("/v1/auth/me")).status_code == 401
    entries = await runtime.audit.search(runtime.tenant.id, actor="sara")
    assert [e.action for e in entries][:3] == ["auth.logout", "api.request", "api.request"][:3] or entries


async def test_the_cookie_is_secure_over_https(runtime: Runtime) -> None:
    await add_user(runtime, "tim", PASSWORD, Role.AGENT)
    app = create_app(runtime.settings, runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://voicebot.test") as browser:
        login = await browser.post("/v1/auth/login", json={"username": "tim", "password": PASSWORD})
    assert "; secure" in login.headers["set-cookie"].lower()


async def test_login_is_rate_limited_with_retry_after(runtime: Runtime) -> None:
    await add_user(runtime, "uma", PASSWORD, Role.AGENT)
    async with client_for(runtime) as browser:
        for _ in range(runtime.settings.login_max_failures):
            response = await browser.post(
                "/v1/auth/login", json={"username": "uma", "password": "guess guess 1"}
            )
            assert response.status_code == 401
        limited = await browser.post("/v1/auth/login", json={"username": "uma", "password": PASSWORD})
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    assert "too many failed logins" in limited.json()["error"]["message"]


async def test_bad_login_bodies_get_clear_errors(anon_client: httpx.AsyncClient) -> None:
    for body in (
        {},
        {"username": "x"},
        {"username": 1, "password": []},
        {"username": "x", "password": "y", "z": 1},
    ):
        response = await anon_client.post("/v1/auth/login", json=body)
        assert response.status_code == 422, body
    response = await anon_client.post(
        "/v1/auth/login", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


async def test_users_and_tokens_over_the_api(fresh_client: httpx.AsyncClient, runtime: Runtime) -> None:
    added = await fresh_client.post(
        "/v1/users", json={"username": "Vera", "role": "agent", "password": PASSWORD}
    )
    assert added.status_code == 201 and added.json()["username"] == "vera"
    assert (
        await fresh_client.post("/v1/users", json={"username": "vera", "role": "agent"})
    ).status_code == 409
    bad = await fresh_client.post("/v1/users", json={"username": "x", "role": "boss"})
    assert bad.status_code == 422 and "admin, supervisor, agent, operator" in bad.json()["error"]["message"]
    weak = await fresh_client.post(
        "/v1/users", json={"username": "wes", "role": "agent", "password": "short"}
    )
    assert weak.status_code == 422
    issued = await fresh_client.post("/v1/users/vera/tokens", json={"name": "script"})
    assert issued.status_code == 201
    token = issued.json()["token"]
    async with client_for(runtime, {"Authorization": f"Bearer {token}"}) as vera:
        assert (await vera.get("/v1/handoffs")).status_code == 200
        assert (await fresh_client.post("/v1/users/vera/disable")).status_code == 200
        assert (await vera.get("/v1/handoffs")).status_code == 401
    listed = (await fresh_client.get("/v1/users")).json()["users"]
    assert {u["username"]: u["disabled"] for u in listed}["vera"] is True
    actions = [
        e["action"]
        for e in (await fresh_client.get("/v1/audit", params={"action": "user."})).json()["entries"]
    ]
    assert actions == ["user.disable", "user.add"]
    trail = (await fresh_client.get("/v1/audit", params={"action": "api.request"})).json()["entries"]
    assert {"method": "POST", "path": "/v1/users/vera/disable", "status": 200} in [
        e["details"] for e in trail
    ]


async def test_the_live_feed_needs_a_role_and_streams_chat_turns(runtime: Runtime) -> None:
    app = create_app(runtime.settings, runtime)
    agent = await token_headers(runtime, Role.AGENT)
    operator = await token_headers(runtime, Role.OPERATOR)
    async with serving(app) as url:
        ws = url.replace("http://", "ws://") + "/v1/live"
        for headers, query, code in (({}, "", 4401), (operator, "", 4403), (agent, "?topics=listen.", 4403)):
            async with connect(ws + query, additional_headers=headers) as socket:
                with pytest.raises(ConnectionClosed) as closed:
                    await socket.recv()
                assert closed.value.rcvd is not None and closed.value.rcvd.code == code
        async with connect(ws + "?topics=conversation.,handoff.", additional_headers=agent) as socket:
            assert json.loads(await socket.recv())["type"] == "ready"
            async with httpx.AsyncClient(base_url=url) as customer:
                cid = (await customer.post("/v1/conversations", json={})).json()["id"]
                await customer.post(
                    f"/v1/conversations/{cid}/messages", json={"text": "I want to talk to a person"}
                )
            seen: list[dict[str, Any]] = []
            while not any(e["topic"] == "handoff.waiting" for e in seen):
                seen.append(json.loads(await socket.recv()))
    topics = [(e["topic"], e["data"].get("role")) for e in seen]
    assert topics == [
        ("conversation.started", None),
        ("conversation.turn", "bot"),
        ("conversation.turn", "customer"),
        ("conversation.turn", "bot"),
        ("handoff.waiting", None),
    ]
    assert all(e["data"]["conversation_id"] == cid for e in seen)
    assert seen[2]["data"]["text"] == "I want to talk to a person"
