"""Campaign endpoints: create from a campaign file and a contacts CSV, control, progress, results.

    GET  /v1/campaigns                          the tenant's campaigns with progress
    POST /v1/campaigns                          {"definition": YAML, "contacts_csv": CSV, "name"?, "region"?}
    GET  /v1/campaigns/{id}                     one campaign: definition, status, progress
    POST /v1/campaigns/{id}/start|pause|resume|stop
    GET  /v1/campaigns/{id}/results?format=json|csv&limit=N   contacts with attempts, outcome, answers
    GET  /v1/campaigns/{id}/attempts?contact_id=N   every attempt: timings, outcome, transcript, answers
    GET  /campaigns                             the campaigns page of the web UI

Status changes are audited (``campaign.<action>``, actor ``operator``); the rules live in
:mod:`voicebot.outbound.operations`, shared with the CLI. The dialer that works a running campaign
is not part of this module.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response

from voicebot.api.schemas import NewCampaign
from voicebot.auth.guard import require
from voicebot.auth.roles import Permission
from voicebot.errors import ConfigError, InputError
from voicebot.outbound.campaign_config import parse_campaign
from voicebot.outbound.operations import Operations, results_csv
from voicebot.runtime import Runtime
from voicebot.storage.campaigns import CampaignRepository

router = APIRouter()


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _ops(request: Request) -> Operations:
    runtime = _runtime(request)
    return Operations(CampaignRepository(runtime.db), runtime.audit, runtime.tenant.id, actor="operator")


@router.get("/v1/campaigns", dependencies=[Depends(require(Permission.CAMPAIGNS))])
async def list_campaigns(request: Request) -> dict[str, Any]:
    ops = _ops(request)
    return {"campaigns": [await ops.summary(c) for c in await ops.repo.list(ops.tenant_id)]}


@router.post("/v1/campaigns", status_code=201, dependencies=[Depends(require(Permission.CAMPAIGNS))])
async def create_campaign(body: NewCampaign, request: Request) -> dict[str, Any]:
    runtime = _runtime(request)
    try:
        definition = parse_campaign(body.definition, "definition")
    except ConfigError as exc:
        raise InputError(exc.message) from exc
    ops = _ops(request)
    record, imported = await ops.create(
        definition,
        body.contacts_csv,
        name=body.name,
        region=body.region,
        timezone=runtime.tenant.timezone,
        now=runtime.clock(),
    )
    data = await ops.summary(record)
    data["errors"] = [{"line": e.line, "message": e.message} for e in imported.errors]
    data["notes"] = [{"line": n.line, "message": n.message} for n in imported.notes]
    return data


@router.get("/v1/campaigns/{campaign_id}", dependencies=[Depends(require(Permission.CAMPAIGNS))])
async def get_campaign(campaign_id: str, request: Request) -> dict[str, Any]:
    ops = _ops(request)
    return await ops.summary(await ops.owned(campaign_id), definition=True)


@router.post("/v1/campaigns/{campaign_id}/{action}", dependencies=[Depends(require(Permission.CAMPAIGNS))])
async def control_campaign(campaign_id: str, action: str, request: Request) -> dict[str, Any]:
    ops = _ops(request)
    return await ops.summary(await ops.control(campaign_id, action, _runtime(request).clock()))


@router.get(
    "/v1/campaigns/{campaign_id}/results",
    response_model=None,
    dependencies=[Depends(require(Permission.CAMPAIGNS))],
)
async def campaign_results(
    campaign_id: str,
    request: Request,
    format: str = Query("json", pattern="^(json|csv)$"),
    limit: int = Query(1_000_000, ge=1, le=1_000_000),
) -> Response | dict[str, Any]:
    rows = await _ops(request).results(campaign_id, limit=limit)
    if format == "json":
        return {"campaign_id": campaign_id, "contacts": rows}
    return Response(
        results_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="campaign-{campaign_id}.csv"'},
    )


@router.get("/v1/campaigns/{campaign_id}/attempts", dependencies=[Depends(require(Permission.CAMPAIGNS))])
async def campaign_attempts(
    campaign_id: str,
    request: Request,
    contact_id: int | None = Query(None, ge=1),
    limit: int = Query(100_000, ge=1, le=1_000_000),
) -> dict[str, Any]:
    rows = await _ops(request).attempts(campaign_id, contact_id=contact_id, limit=limit)
    return {"campaign_id": campaign_id, "attempts": rows}


@router.get("/campaigns", include_in_schema=False)
async def campaigns_page() -> FileResponse:
    from voicebot.app import STATIC

    return FileResponse(STATIC / "campaigns.html")
