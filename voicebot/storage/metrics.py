"""Service metrics for the operator's dashboard: two queries, percentiles in Python.

``summary`` returns::

    {"conversations": n,                              # started since `since`
     "first_response_ms": {"p50": x, "p95": y},       # over conversations with a bot turn
     "deflection_rate": r,   # resolved without a human / conversations with at least one bot turn
     "handoff_rate": r,      # handed to a human / the same
     "csat": {"average": a, "responses": n},
     "per_channel": {channel: {the same keys but per_channel}}}

Values that have no data (no bot turn yet, no CSAT answer) are None.

``dashboard`` returns the console's full set of figures per channel, per intent and over time,
computed in the database (voicebot.storage.dashboard; definitions in docs/dashboard.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select

from voicebot.storage import tables
from voicebot.storage._common import utc
from voicebot.storage.dashboard import Bucket, DashboardQueries, DashboardRange
from voicebot.storage.dashboard_read import DashboardReader
from voicebot.storage.dashboard_rollup import Rollup, day_start, whole_days
from voicebot.storage.db import Database

_C = tables.conversations


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation between ranks; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    if low == high:
        return float(ordered[low])
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _block(counts: Sequence[int], firsts: list[float]) -> dict[str, Any]:
    conversations, answered, deflected, handed, csat_sum, csat_n = counts
    return {
        "conversations": conversations,
        "first_response_ms": {"p50": percentile(firsts, 50), "p95": percentile(firsts, 95)},
        "deflection_rate": _ratio(deflected, answered),
        "handoff_rate": _ratio(handed, answered),
        "csat": {"average": csat_sum / csat_n if csat_n else None, "responses": csat_n},
    }


class MetricsRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def summary(self, tenant_id: str, *, since: datetime | None = None) -> dict[str, Any]:
        where = [_C.c.tenant_id == tenant_id]
        if since is not None:
            where.append(_C.c.created_at >= utc(since))
        answered = _C.c.first_response_ms.is_not(None)  # at least one bot turn
        counts = (
            select(
                _C.c.channel,
                func.count(),
                func.count(_C.c.first_response_ms),
                func.sum(case((answered & _C.c.resolved_without_human.is_(True), 1), else_=0)),
                func.sum(case((answered & _C.c.resolved_without_human.is_(False), 1), else_=0)),
                func.coalesce(func.sum(_C.c.csat), 0),
                func.count(_C.c.csat),
            )
            .where(*where)
            .group_by(_C.c.channel)
        )
        firsts = select(_C.c.channel, _C.c.first_response_ms).where(*where, answered)
        async with self._db.reader.connect() as conn:
            count_rows = (await conn.execute(counts)).all()
            first_rows = (await conn.execute(firsts)).all()

        by_channel: dict[str, list[float]] = {}
        for channel, value in first_rows:
            by_channel.setdefault(channel, []).append(float(value))
        totals = [0, 0, 0, 0, 0, 0]
        per_channel: dict[str, Any] = {}
        for channel, *values in sorted(count_rows, key=lambda r: str(r[0])):
            numbers = [int(n or 0) for n in values]
            totals = [t + n for t, n in zip(totals, numbers, strict=True)]
            per_channel[channel] = _block(numbers, by_channel.get(channel, []))
        everything = [v for values in by_channel.values() for v in values]
        result = _block(totals, everything)
        result["per_channel"] = per_channel
        return result

    async def dashboard(self, tenant_id: str, rng: DashboardRange, *, now: datetime) -> dict[str, Any]:
        """Every dashboard figure for the conversations started in ``rng``.

        Whole UTC days come from the daily rollup (brought up to date first, in a write
        transaction); the hours before the first and after the last whole day, and ranges with hourly
        buckets, from the base tables (voicebot.storage.dashboard_read)."""
        dialect = self._db.engine.dialect.name
        first, end = whole_days(rng.since, rng.until)
        if rng.bucket is Bucket.HOUR or first >= end:
            first = end = 0
            spans = [(rng.since, rng.until)]
        else:
            async with self._db.engine.begin() as conn:
                await Rollup(tenant_id, dialect).refresh(conn, first, end, utc(now))
            edges = ((rng.since, day_start(first)), (day_start(end), rng.until))
            spans = [(since, until) for since, until in edges if since < until]
        base = DashboardQueries(tenant_id, rng, dialect, spans) if spans else None
        reader = DashboardReader(tenant_id, rng, (first, end), base)
        async with self._db.reader.connect() as conn:
            return await reader.run(conn)

    async def warm_rollups(self, tenant_id: str, *, now: datetime, days: int = 90) -> int:
        """Bring the daily rollups of the last ``days`` whole days up to date (a server does this
        once as it starts, so nobody waits seconds for the first 90-day view); how many days were
        computed."""
        now = utc(now)
        first, end = whole_days(now - timedelta(days=days), now)
        if first >= end:
            return 0
        async with self._db.engine.begin() as conn:
            return await Rollup(tenant_id, self._db.engine.dialect.name).refresh(conn, first, end, now)
