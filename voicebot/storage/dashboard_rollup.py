"""Daily rollups of the dashboard's figures, so a 90-day view reads a few thousand rows, not every
conversation.

Whole UTC days are summed once into ``dashboard_daily`` (the sums by channel and intent),
``dashboard_histogram`` (histogram bins of all channels, by channel, by intent, by channel and
intent) and
``dashboard_reasons``; ``dashboard_days`` lists the days that are up to date. Conversations keep
changing after their day (a CSAT answer, an agent closing the handoff, the customer coming back),
so before a read :meth:`Rollup.refresh` finds what changed since the tenant's watermark, with the
indexes on ``conversations.updated_at``, the audit log's action and time and the handoffs, forgets
those days, and recomputes the days of the asked range that are not up to date from the base tables
with the same statements the dashboard runs on them (voicebot.storage.dashboard). ``MARGIN`` covers
transactions that took their time stamp before the watermark and committed after it.

A refresh writes in one transaction (on PostgreSQL under an advisory lock per tenant), so several
workers refreshing at once compute each day once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, insert, select, text, union
from sqlalchemy.ext.asyncio import AsyncConnection

from voicebot.storage import tables
from voicebot.storage.dashboard import (
    FIELDS,
    VOICE_LATENCY_ACTION,
    Bucket,
    DashboardQueries,
    DashboardRange,
    bucket_of,
)

DAY = 86_400
MARGIN = timedelta(minutes=2)
METRICS = ("first_response", "voice_latency")
# the rollup's histograms: of all channels and by channel (fine bins), by intent of all channels
# and by channel and intent (for a channel filter; both in coarse bins: histogram.coarse)
_HISTOGRAM_GROUPS = (
    ("day", ("bucket",)),
    ("channel", ("bucket", "channel")),
    ("intent", ("bucket", "intent")),
    ("chintent", ("bucket", "channel", "intent")),
)

_C = tables.conversations
_H = tables.handoffs
_A = tables.audit_log
_DAYS = tables.dashboard_days
_STATE = tables.dashboard_state
_DAILY = tables.dashboard_daily
_HIST = tables.dashboard_histogram
_REASONS = tables.dashboard_reasons


def day_start(day: int) -> datetime:
    return datetime.fromtimestamp(day * DAY, UTC)


def whole_days(since: datetime, until: datetime) -> tuple[int, int]:
    """The whole UTC days ``[first, end)`` inside ``[since, until)`` (first >= end: none)."""
    first = -(-int(since.timestamp()) // DAY)
    if day_start(first) < since:  # a fraction of a second past midnight
        first += 1
    return first, int(until.timestamp()) // DAY


def _spans(days: Sequence[int]) -> Iterator[tuple[int, int]]:
    """Runs of consecutive (sorted) days as [start, end)."""
    run: list[int] = []
    for day in days:
        if run and day != run[-1] + 1:
            yield run[0], run[-1] + 1
            run = []
        run.append(day)
    if run:
        yield run[0], run[-1] + 1


class Rollup:
    def __init__(self, tenant_id: str, dialect: str) -> None:
        self.tenant_id = tenant_id
        self.dialect = dialect

    # -- keeping it up to date ------------------------------------------------------------------
    async def refresh(self, conn: AsyncConnection, first: int, end: int, now: datetime) -> int:
        """Make days ``[first, end)`` up to date in this (write) transaction; how many were computed."""
        if self.dialect == "postgresql":
            lock = int.from_bytes(hashlib.sha256(f"dashboard:{self.tenant_id}".encode()).digest()[:4], "big")
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock})
        tenant = _STATE.c.tenant_id == self.tenant_id
        watermark = await conn.scalar(select(_STATE.c.watermark).where(tenant))
        if watermark is not None:
            stale = await self._changed_days(conn, watermark - MARGIN)
            if stale:
                await conn.execute(
                    delete(_DAYS).where(_DAYS.c.tenant_id == self.tenant_id, _DAYS.c.day.in_(stale))
                )
            await conn.execute(_STATE.update().where(tenant).values(watermark=now))
        else:
            await conn.execute(insert(_STATE).values(tenant_id=self.tenant_id, watermark=now))
        have = set(
            (
                await conn.execute(
                    select(_DAYS.c.day).where(
                        _DAYS.c.tenant_id == self.tenant_id, _DAYS.c.day >= first, _DAYS.c.day < end
                    )
                )
            ).scalars()
        )
        missing = [d for d in range(first, end) if d not in have]
        for start, stop in _spans(missing):
            await self._compute(conn, start, stop, now)
        return len(missing)

    async def _changed_days(self, conn: AsyncConnection, since: datetime) -> list[int]:
        """The days whose figures changed after ``since``: conversations written, voice turns
        measured, handoffs closed."""
        rng = DashboardRange(since=since, until=since, bucket=Bucket.DAY)

        def day(column: Any) -> ColumnElement[int]:
            return bucket_of(column, rng, self.dialect)

        changed = union(
            select(day(_C.c.created_at)).where(_C.c.tenant_id == self.tenant_id, _C.c.updated_at >= since),
            select(day(_A.c.at)).where(
                _A.c.tenant_id == self.tenant_id, _A.c.action == VOICE_LATENCY_ACTION, _A.c.at >= since
            ),
            select(day(_C.c.created_at))
            .select_from(_H.join(_C, _C.c.id == _H.c.conversation_id))
            .where(_H.c.tenant_id == self.tenant_id, _H.c.status == "closed", _H.c.closed_at >= since),
        )
        return sorted(int(d) for d in (await conn.execute(changed)).scalars() if d is not None)

    async def _compute(self, conn: AsyncConnection, first: int, end: int, now: datetime) -> None:
        """Recompute days ``[first, end)`` from the base tables."""
        in_days: dict[str, Any] = {"tenant_id": self.tenant_id}
        for table in (_DAILY, _HIST, _REASONS, _DAYS):
            await conn.execute(
                delete(table).where(
                    table.c.tenant_id == self.tenant_id, table.c.day >= first, table.c.day < end
                )
            )
        rng = DashboardRange(since=day_start(first), until=day_start(end), bucket=Bucket.DAY)
        queries = DashboardQueries(self.tenant_id, rng, self.dialect)

        sums: dict[tuple[int, str, str], list[float]] = {}
        for b, channel, intent, *values in (await conn.execute(queries.counts())).all():
            row = sums.setdefault((int(b), channel, intent or ""), [0.0] * len(FIELDS))
            for i, value in enumerate(values):
                row[i] += float(value or 0)
        for b, channel, intent, total, n in (await conn.execute(queries.human_handle())).all():
            row = sums.setdefault((int(b), channel, intent or ""), [0.0] * len(FIELDS))
            row[-2] += float(total or 0)
            row[-1] += float(n)
        daily = [
            {**in_days, "day": b, "channel": ch, "intent": it, **dict(zip(FIELDS, values, strict=True))}
            for (b, ch, it), values in sums.items()
        ]
        bins: list[dict[str, Any]] = []
        for metric in METRICS:
            for dim, group in _HISTOGRAM_GROUPS:
                for row in (await conn.execute(queries.histogram(metric, group))).all():
                    keys = dict(zip(group, row[: len(group)], strict=True))
                    number, n, low, high = row[len(group) :]
                    bins.append(
                        {**in_days, "metric": metric, "dim": dim, "day": int(keys["bucket"]),
                         "channel": keys.get("channel") or "", "key": keys.get("intent") or "",
                         "bin": int(number), "count": int(n), "low": float(low), "high": float(high)}
                    )  # fmt: skip
        reasons = [
            {**in_days, "day": int(b), "channel": ch, "reason": reason, "count": int(n)}
            for b, ch, reason, n in (await conn.execute(queries.reasons(per_day=True))).all()
        ]
        for table, rows in ((_DAILY, daily), (_HIST, bins), (_REASONS, reasons)):
            if rows:
                await conn.execute(insert(table), rows)
        await conn.execute(
            insert(_DAYS), [{**in_days, "day": d, "computed_at": now} for d in range(first, end)]
        )
