"""The KPI dashboard: its figures (GET /v1/dashboard), its page, and the Chart.js build it draws with.

Query parameters of /v1/dashboard (all optional):

* ``since`` / ``until``: ISO 8601 date or date-time (a time without offset is UTC); the range is
  ``[since, until)``, default the last 7 days up to now;
* ``channel``: chat | voice | email (default all);
* ``bucket``: hour | day | week for the series (default from the range: hours up to 2 days, days
  up to 90 days, weeks beyond); at most MAX_BUCKETS buckets, hours only for ranges up to 3 days.

Figures and their definitions: docs/dashboard.md.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response

from voicebot.auth.guard import require
from voicebot.auth.roles import Permission
from voicebot.dialogue.types import Channel
from voicebot.errors import InputError, NotFoundError
from voicebot.runtime import Runtime
from voicebot.storage.dashboard import Bucket, DashboardRange

router = APIRouter()

DEFAULT_SPAN = timedelta(days=7)
MAX_BUCKETS = 800
MAX_HOURLY_SPAN = timedelta(days=3)
CHART_JS = Path(__file__).resolve().parents[1] / "web" / "vendor" / "node_modules" / "chart.js" / "dist"


def _moment(name: str, text: str) -> datetime:
    """An ISO 8601 date (midnight UTC) or date-time (UTC when it has no offset)."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InputError(f"'{name}' must be an ISO 8601 date or date-time, not {text!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def dashboard_range(
    now: datetime,
    since: str | None = None,
    until: str | None = None,
    channel: str | None = None,
    bucket: str | None = None,
) -> DashboardRange:
    """The validated range of a request; InputError (422) names the bad parameter."""
    end = _moment("until", until) if until else now.astimezone(UTC)
    start = _moment("since", since) if since else end - DEFAULT_SPAN
    if start >= end:
        raise InputError("'since' must be before 'until'")
    if channel is not None and channel not in {c.value for c in Channel}:
        raise InputError(f"'channel' must be one of {', '.join(c.value for c in Channel)}, not {channel!r}")
    if bucket is None or bucket == "":
        size = Bucket.for_range(start, end)
    else:
        try:
            size = Bucket(bucket)
        except ValueError as exc:
            raise InputError(f"'bucket' must be hour, day or week, not {bucket!r}") from exc
    if size is Bucket.HOUR and end - start > MAX_HOURLY_SPAN:
        # hourly points are computed from the conversations themselves (the rollup is daily)
        raise InputError("hourly points are for ranges up to 3 days: choose 'day' or a shorter range")
    rng = DashboardRange(since=start, until=end, bucket=size, channel=channel or None)
    if len(rng.bucket_numbers()) > MAX_BUCKETS:
        raise InputError(
            f"{len(rng.bucket_numbers())} {size.value}s is too many points (at most {MAX_BUCKETS}): "
            "choose a coarser 'bucket' or a shorter range"
        )
    return rng


@router.get("/v1/dashboard", dependencies=[Depends(require(Permission.DASHBOARD))])
async def dashboard(
    request: Request,
    since: str | None = None,
    until: str | None = None,
    channel: str | None = None,
    bucket: str | None = None,
) -> dict[str, Any]:
    runtime: Runtime = request.app.state.runtime
    now = runtime.clock()
    rng = dashboard_range(now, since, until, channel, bucket)
    return await runtime.metrics.dashboard(runtime.tenant.id, rng, now=now)


@router.get("/dashboard", include_in_schema=False)
async def dashboard_page() -> FileResponse:
    from voicebot.app import STATIC

    return FileResponse(STATIC / "dashboard.html")


@router.get("/vendor/chart.umd.js", include_in_schema=False)
async def chart_js() -> Response:
    """Chart.js, installed from npm by scripts/setup (voicebot/web/vendor/package.json)."""
    path = CHART_JS / "chart.umd.js"
    if not path.is_file():
        raise NotFoundError(
            "Chart.js is not installed: run scripts/setup (npm ci --prefix voicebot/web/vendor)"
        )
    return FileResponse(path, media_type="text/javascript", headers={"Cache-Control": "max-age=3600"})
