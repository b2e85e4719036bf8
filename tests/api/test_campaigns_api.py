"""/v1/campaigns: create from a campaign file and a contacts CSV, control, progress, results."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tests.conftest import SESSION_LOOP
from voicebot.runtime import Runtime
from voicebot.storage.campaigns import CampaignRepository

pytestmark = SESSION_LOOP

DEFINITION = (Path(__file__).resolve().parents[2] / "campaigns" / "csat-survey.yaml").read_text()
CONTACTS = "phone,name\n+38640111222,Ana\n0401 11 333,Marko\nbad,Nobody\n"


async def test_a_campaign_is_created_controlled_and_exported(fresh_client: httpx.AsyncClient) -> None:
    created = await fresh_client.post(
        "/v1/campaigns", json={"definition": DEFINITION, "contacts_csv": CONTACTS}
    )
    assert created.status_code == 201, created.text
    campaign = created.json()
    assert campaign["status"] == "draft" and campaign["contacts"] == {"pending": 2}
    assert [e["line"] for e in campaign["errors"]] == [4]
    cid = campaign["id"]
    assert (await fresh_client.post(f"/v1/campaigns/{cid}/resume")).status_code == 422  # not paused
    assert (await fresh_client.post(f"/v1/campaigns/{cid}/start")).json()["status"] == "running"
    assert (await fresh_client.post(f"/v1/campaigns/{cid}/pause")).json()["status"] == "paused"
    assert (await fresh_client.post(f"/v1/campaigns/{cid}/resume")).json()["status"] == "running"
    assert (await fresh_client.post(f"/v1/campaigns/{cid}/stop")).json()["status"] == "stopped"
    again = await fresh_client.post(f"/v1/campaigns/{cid}/start")
    assert again.status_code == 409 and "cannot move from stopped" in again.json()["error"]["message"]
    assert (await fresh_client.post(f"/v1/campaigns/{cid}/explode")).status_code == 422
    detail = (await fresh_client.get(f"/v1/campaigns/{cid}")).json()
    assert detail["definition"]["kind"] == "csat_survey" and detail["definition"]["calling_window"]["start"]
    listed = (await fresh_client.get("/v1/campaigns")).json()["campaigns"]
    assert [c["id"] for c in listed] == [cid]
    results = (await fresh_client.get(f"/v1/campaigns/{cid}/results")).json()["contacts"]
    assert [r["phone"] for r in results] == ["+38640111222", "+38640111333"]
    exported = await fresh_client.get(f"/v1/campaigns/{cid}/results", params={"format": "csv"})
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["phone"] for r in rows] == ["+38640111222", "+38640111333"] and rows[0]["status"] == "pending"


async def test_bad_campaigns_get_clear_errors(fresh_client: httpx.AsyncClient) -> None:
    broken = DEFINITION.replace("max_attempts:", "max_attempts: 0 #")
    response = await fresh_client.post("/v1/campaigns", json={"definition": broken, "contacts_csv": CONTACTS})
    assert response.status_code == 422 and "max_attempts" in response.json()["error"]["message"]
    not_yaml = await fresh_client.post(
        "/v1/campaigns", json={"definition": "[unclosed", "contacts_csv": CONTACTS}
    )
    assert not_yaml.status_code == 422
    no_contacts = await fresh_client.post(
        "/v1/campaigns", json={"definition": DEFINITION, "contacts_csv": "phone\nx\n"}
    )
    assert no_contacts.status_code == 422 and "line 2" in no_contacts.json()["error"]["message"]
    no_header = await fresh_client.post(
        "/v1/campaigns", json={"definition": DEFINITION, "contacts_csv": "name\nAna\n"}
    )
    assert no_header.status_code == 422
    assert (await fresh_client.get("/v1/campaigns/nope")).status_code == 404


async def test_attempts_show_timings_transcripts_and_answers(
    fresh_client: httpx.AsyncClient, runtime: Runtime
) -> None:
    created = await fresh_client.post(
        "/v1/campaigns", json={"definition": DEFINITION, "contacts_csv": CONTACTS}
    )
    cid = created.json()["id"]
    await fresh_client.post(f"/v1/campaigns/{cid}/start")
    repo = CampaignRepository(runtime.db)
    now = datetime.now(UTC)
    (attempt,) = await repo.plan_due(cid, now, lease_s=30, horizon_s=0)
    assert await repo.begin_attempt(attempt.id, now, worker="test", lease_s=30)
    answers = {"answers": {"satisfaction": 4, "recommend": True, "comment": "fine"}}
    transcript = [{"role": "bot", "text": "From 1 to 5?"}, {"role": "customer", "text": "Four."}]
    await repo.finish_attempt(
        attempt.id,
        outcome="survey_completed",
        next_due_at=None,
        now=now,
        transcript=transcript,
        result=answers,
    )
    listed = (await fresh_client.get(f"/v1/campaigns/{cid}/attempts")).json()["attempts"]
    assert len(listed) == 1 and listed[0]["outcome"] == "survey_completed"
    assert listed[0]["transcript"] == transcript and listed[0]["result"] == answers
    assert listed[0]["started_at"] and listed[0]["due_at"] and listed[0]["planned_at"]
    one = await fresh_client.get(f"/v1/campaigns/{cid}/attempts", params={"contact_id": attempt.contact_id})
    assert [a["id"] for a in one.json()["attempts"]] == [attempt.id]
    results = (await fresh_client.get(f"/v1/campaigns/{cid}/results")).json()["contacts"]
    assert results[0]["result"] == answers and results[1]["result"] is None
    exported = await fresh_client.get(f"/v1/campaigns/{cid}/results", params={"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert json.loads(rows[0]["result"]) == answers and rows[1]["result"] == ""
    assert (await fresh_client.get("/v1/campaigns/nope/attempts")).status_code == 404
