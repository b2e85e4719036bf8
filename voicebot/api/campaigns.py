"""Campaign endpoints: create from a campaign file and a contacts CSV, control, progress, results.

    GET  /v1/campaigns                          the tenant's campaigns with progress
    POST /v1/campaigns                          {"definition": YAML, "contacts_csv": CSV, "name"?, "region"?}
    GET  /v1/campaigns/{id}                     one campaign: definition, status, progress
    POST /v1/campaigns/{id}/start|pause|resume|stop
    GET  /v1/campaigns/{id}/results?format=json|csv   every contact with attempts and outcome

Status changes are audited (``campaign.<action>``). The dialer that works a running campaign is
not part of this module.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from voicebot.api.schemas import NewCampaign
from voicebot.errors import ConfigError, InputError, NotFoundError
from voicebot.outbound.campaign_config import parse_campaign
from voicebot.outbound.contacts import import_contacts
from voicebot.runtime import Runtime
from voicebot.storage.campaigns import CampaignRepository
from voicebot.storage.records import CampaignRecord, CampaignStatus

router = APIRouter()

_ACTIONS = {
    "start": CampaignStatus.RUNNING,
    "pause": CampaignStatus.PAUSED,
    "resume": CampaignStatus.RUNNING,
    "stop": CampaignStatus.STOPPED,
}


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _repo(request: Request) -> CampaignRepository:
    return CampaignRepository(_runtime(request).db)


async def _owned(repo: CampaignRepository, campaign_id: str, tenant_id: str) -> CampaignRecord:
    record = await repo.get(campaign_id)
    if record.tenant_id != tenant_id:
        raise NotFoundError(f"campaign {campaign_id} does not exist")
    return record


async def _json(
    repo: CampaignRepository, record: CampaignRecord, *, definition: bool = False
) -> dict[str, Any]:
    progress = await repo.progress(record.id)
    data: dict[str, Any] = {
        "id": record.id,
        "name": record.name,
        "kind": record.kind,
        "status": record.status.value,
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
        "contacts": progress["status"],
        "outcomes": progress["outcomes"],
    }
    if definition:
        data["definition"] = record.definition
    return data


@router.get("/v1/campaigns")
async def list_campaigns(request: Request) -> dict[str, Any]:
    repo = _repo(request)
    return {"campaigns": [await _json(repo, c) for c in await repo.list(_runtime(request).tenant.id)]}


@router.post("/v1/campaigns", status_code=201)
async def create_campaign(body: NewCampaign, request: Request) -> dict[str, Any]:
    runtime = _runtime(request)
    try:
        definition = parse_campaign(body.definition, "definition")
    except ConfigError as exc:
        raise InputError(exc.message) from exc
    imported = import_contacts(
        body.contacts_csv, default_region=body.region.upper(), default_timezone=runtime.tenant.timezone
    )
    if not imported.contacts:
        raise InputError(
            "no valid contact in contacts_csv: "
            + "; ".join(f"line {e.line}: {e.message}" for e in imported.errors[:5])
        )
    repo = _repo(request)
    now = runtime.clock()
    record = await repo.create(
        tenant_id=runtime.tenant.id,
        name=body.name or definition.name,
        kind=definition.kind.value,
        definition=definition.model_dump(mode="json"),
        contacts=imported.contacts,
        now=now,
    )
    await runtime.audit.record(
        tenant_id=runtime.tenant.id,
        actor="operator",
        action="campaign.created",
        now=now,
        details={"campaign_id": record.id, "contacts": len(imported.contacts)},
    )
    data = await _json(repo, record)
    data["errors"] = [{"line": e.line, "message": e.message} for e in imported.errors]
    data["notes"] = [{"line": n.line, "message": n.message} for n in imported.notes]
    return data


@router.get("/v1/campaigns/{campaign_id}")
async def get_campaign(campaign_id: str, request: Request) -> dict[str, Any]:
    repo = _repo(request)
    return await _json(repo, await _owned(repo, campaign_id, _runtime(request).tenant.id), definition=True)


@router.post("/v1/campaigns/{campaign_id}/{action}")
async def control_campaign(campaign_id: str, action: str, request: Request) -> dict[str, Any]:
    if action not in _ACTIONS:
        raise InputError(f"unknown action {action!r}: use one of {', '.join(_ACTIONS)}")
    runtime = _runtime(request)
    repo = _repo(request)
    record = await _owned(repo, campaign_id, runtime.tenant.id)
    if action == "resume" and record.status is not CampaignStatus.PAUSED:
        raise InputError(f"only a paused campaign can be resumed (this one is {record.status.value})")
    now = runtime.clock()
    moved = await repo.set_status(campaign_id, _ACTIONS[action], now)
    await runtime.audit.record(
        tenant_id=runtime.tenant.id,
        actor="operator",
        action=f"campaign.{action}",
        now=now,
        details={"campaign_id": campaign_id, "from": record.status.value},
    )
    return await _json(repo, moved)


@router.get("/v1/campaigns/{campaign_id}/results", response_model=None)
async def campaign_results(
    campaign_id: str, request: Request, format: str = Query("json", pattern="^(json|csv)$")
) -> Response | dict[str, Any]:
    repo = _repo(request)
    await _owned(repo, campaign_id, _runtime(request).tenant.id)
    rows = [
        {
            "phone": c.phone,
            "name": c.name,
            "timezone": c.timezone,
            "status": c.status.value,
            "attempts": c.attempts,
            "outcome": c.outcome,
            "next_due_at": c.next_due_at.isoformat() if c.next_due_at else None,
            "line": c.source_line,
        }
        for c in await repo.contacts(campaign_id, limit=1_000_000)
    ]
    if format == "json":
        return {"campaign_id": campaign_id, "contacts": rows}
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer,
        fieldnames=["phone", "name", "timezone", "status", "attempts", "outcome", "next_due_at", "line"],
    )
    writer.writeheader()
    writer.writerows(rows)
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="campaign-{campaign_id}.csv"'},
    )
