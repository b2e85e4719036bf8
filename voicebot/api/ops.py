"""Operational endpoints: health, Prometheus metrics, the KPI summary, and the widget page."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from voicebot import __version__
from voicebot.auth.guard import require
from voicebot.auth.roles import Permission
from voicebot.errors import InputError
from voicebot.runtime import Runtime

router = APIRouter()


@router.get("/healthz")
async def healthz(request: Request) -> dict[str, Any]:
    runtime: Runtime = request.app.state.runtime
    return {
        "status": "ok",
        "version": __version__,
        "tenant": runtime.tenant.id,
        "knowledge": runtime.knowledge.stats(),
        "voice": {"enabled": runtime.speech is not None, "tts_cache_warm": runtime.voice_cache_warm},
        "campaigns": campaigns.status()
        if (campaigns := getattr(request.app.state, "campaigns", None))
        else None,
    }


@router.get("/metrics")
async def prometheus_metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/metrics/summary", dependencies=[Depends(require(Permission.DASHBOARD))])
async def metrics_summary(request: Request, since: str | None = None) -> dict[str, Any]:
    runtime: Runtime = request.app.state.runtime
    start = None
    if since is not None:
        try:
            start = datetime.fromisoformat(since)
        except ValueError as exc:
            raise InputError("'since' must be an ISO 8601 date or date-time") from exc
    return await runtime.metrics.summary(runtime.tenant.id, since=start)


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    from voicebot.app import STATIC

    return FileResponse(STATIC / "index.html")
