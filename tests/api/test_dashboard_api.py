"""GET /v1/dashboard (figures through the real chat API), its parameters, roles, the page and
the Chart.js build."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import client_for
from tests.auth_helpers import token_headers
from voicebot.api import dashboard as dashboard_api
from voicebot.auth.roles import Role
from voicebot.runtime import Runtime
from voicebot.storage.dashboard import Bucket, DashboardRange


async def _chat(client: httpx.AsyncClient, *messages: str) -> str:
    cid = (await client.post("/v1/conversations", json={})).json()["id"]
    for text in messages:
        response = await client.post(f"/v1/conversations/{cid}/messages", json={"text": text})
        assert response.status_code == 200, response.text
    return str(cid)


async def test_figures_of_real_conversations(runtime: Runtime) -> None:
    async with client_for(runtime, await token_headers(runtime, Role.SUPERVISOR)) as client:
        answered = await _chat(client, "what are your opening hours on Monday?")
        await client.post(f"/v1/conversations/{answered}/csat", json={"score": 4})
        await _chat(client, "I want to talk to a human")
        await _chat(client)  # started, never answered
        now = runtime.clock()
        since, until = (now - timedelta(hours=1)).isoformat(), (now + timedelta(hours=1)).isoformat()
        response = await client.get("/v1/dashboard", params={"since": since, "until": until})
    assert response.status_code == 200, response.text
    board = response.json()
    assert board["conversations"] == 3 and board["answered"] == 2
    assert board["handoffs"] == 1 and board["handoff_rate"] == 0.5
    assert board["handoff_reasons"] == {"human_requested": 1}
    assert board["csat"]["responses"] == 1 and board["csat"]["distribution"]["4"] == 1
    assert board["first_response_ms"]["p50"] is not None
    assert set(board["per_channel"]) == {"chat"}
    assert sum(i["conversations"] for i in board["per_intent"].values()) == 3
    assert board["per_intent"]["(none)"]["conversations"] >= 1  # the one never answered
    assert board["range"]["bucket"] == "hour" and len(board["series"]) in (2, 3)
    assert sum(s["conversations"] for s in board["series"]) == 3
    # the same figures the repository gives for that range
    rng = DashboardRange(
        since=datetime.fromisoformat(since), until=datetime.fromisoformat(until), bucket=Bucket.HOUR
    )
    assert board == await runtime.metrics.dashboard(runtime.tenant.id, rng, now=runtime.clock())


async def test_defaults_last_seven_days_by_day(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/dashboard", params={"channel": "voice"})
    assert response.status_code == 200
    board = response.json()
    assert board["range"]["bucket"] == "day" and board["range"]["channel"] == "voice"
    since = datetime.fromisoformat(board["range"]["since"])
    until = datetime.fromisoformat(board["range"]["until"])
    assert until - since == timedelta(days=7)
    assert set(board["per_channel"]) <= {"voice"}
    weekly = (await client.get("/v1/dashboard", params={"since": "2026-01-01", "until": "2026-05-01"})).json()
    assert weekly["range"]["bucket"] == "week" and weekly["range"]["since"] == "2026-01-01T00:00:00+00:00"


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"since": "yesterday"}, "'since' must be an ISO 8601"),
        ({"until": "2026-13-01"}, "'until' must be an ISO 8601"),
        ({"since": "2026-03-02", "until": "2026-03-01"}, "'since' must be before 'until'"),
        ({"channel": "fax"}, "'channel' must be one of chat, voice, email"),
        ({"bucket": "month"}, "'bucket' must be hour, day or week"),
        ({"since": "2024-01-01", "until": "2026-12-01", "bucket": "day"}, "too many points"),
        (
            {"since": "2026-03-01", "until": "2026-03-05", "bucket": "hour"},
            "hourly points are for ranges up to 3",
        ),
    ],
)
async def test_bad_parameters_are_422(client: httpx.AsyncClient, params: dict[str, str], says: str) -> None:
    response = await client.get("/v1/dashboard", params=params)
    assert response.status_code == 422
    assert says in response.json()["error"]["message"]


async def test_roles(shared_runtime: Runtime, anon_client: httpx.AsyncClient) -> None:
    assert (await anon_client.get("/v1/dashboard")).status_code == 401
    for role, status in ((Role.AGENT, 403), (Role.OPERATOR, 200), (Role.SUPERVISOR, 200)):
        async with client_for(shared_runtime, await token_headers(shared_runtime, role)) as c:
            assert (await c.get("/v1/dashboard")).status_code == status, role
    # the page itself is public static HTML (its data is guarded)
    page = await anon_client.get("/dashboard")
    assert page.status_code == 200 and "dashboard.js" in page.text


async def test_chart_js_is_served_or_explained(
    anon_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if not (dashboard_api.CHART_JS / "chart.umd.js").is_file():
        pytest.skip("Chart.js is not installed (scripts/setup runs npm ci)")
    served = await anon_client.get("/vendor/chart.umd.js")
    assert served.status_code == 200 and "javascript" in served.headers["content-type"]
    assert "Chart" in served.text[:2000]
    monkeypatch.setattr(dashboard_api, "CHART_JS", tmp_path)
    missing = await anon_client.get("/vendor/chart.umd.js")
    assert missing.status_code == 404
    assert "npm ci --prefix voicebot/web/vendor" in missing.json()["error"]["message"]


async def test_summary_still_answers(client: httpx.AsyncClient) -> None:
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    response = await client.get("/v1/metrics/summary", params={"since": since})
    assert response.status_code == 200 and "per_channel" in response.json()
