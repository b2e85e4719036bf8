"""Reading the dashboard: four statements over the daily rollup and the base tables, and the JSON.

Each statement is a UNION ALL of the rollup's whole days (voicebot.storage.dashboard_rollup) and the
base tables' partial days around them (or the whole range, with hourly buckets), grouped again by
dimension (``d``: all, channel, intent, bucket) and key (``k``):

* the sums of every slice (conversations, answers, handoffs, CSAT, resolution, handle times);
* the handoff reasons by channel;
* per metric (first response, voice-to-voice), the histogram bins that hold the ranks of p50 and
  p95 of each slice: a window function counts the values below each bin (``before``), so at most
  four bins per slice leave the database (voicebot.storage.histogram.percentile_of_bins).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, String, and_, cast, func, literal_column, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from voicebot.storage import tables
from voicebot.storage.dashboard import DIMENSIONS, FIELDS, NO_INTENT, DashboardQueries, DashboardRange
from voicebot.storage.dashboard_rollup import DAY, METRICS
from voicebot.storage.histogram import percentile_of_bins

_DAILY = tables.dashboard_daily
_HIST = tables.dashboard_histogram
_REASONS = tables.dashboard_reasons
_SLICES = ("channel", "intent", "bucket")  # the sums of "all" add up those of the channels


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _avg(total: float, n: float) -> float | None:
    return round(total / n, 1) if n else None


class DashboardReader:
    """The statements of one request: ``rollup_days`` [first, end) from the rollup (empty: none),
    ``base`` over the rest (None: nothing left)."""

    def __init__(
        self,
        tenant_id: str,
        rng: DashboardRange,
        rollup_days: tuple[int, int],
        base: DashboardQueries | None,
    ) -> None:
        self.tenant_id = tenant_id
        self.rng = rng
        self.first, self.end = rollup_days
        self.base = base

    @property
    def _rolled(self) -> bool:
        return self.first < self.end

    def _days(self, table: Any) -> list[ColumnElement[bool]]:
        where = [table.c.tenant_id == self.tenant_id, table.c.day >= self.first, table.c.day < self.end]
        if self.rng.channel is not None:
            where.append(table.c.channel == self.rng.channel)
        return where

    def _day_bucket(self, day: Any) -> ColumnElement[str]:
        return cast((day * DAY + self.rng.bucket.shift) // self.rng.bucket.seconds, String)

    # -- statements -----------------------------------------------------------------------------
    def sums(self) -> Select[Any]:
        parts: list[Select[Any]] = []
        for dimension in _SLICES:
            if self._rolled:
                key: ColumnElement[Any] = (
                    _DAILY.c.channel
                    if dimension == "channel"
                    else _DAILY.c.intent
                    if dimension == "intent"
                    else self._day_bucket(_DAILY.c.day)
                )
                parts.append(
                    select(
                        literal_column(f"'{dimension}'").label("d"),
                        key.label("k"),
                        *(func.sum(_DAILY.c[f]).label(f) for f in FIELDS),
                    )
                    .where(*self._days(_DAILY))
                    .group_by(key)
                )
        if self.base is not None:
            parts += self.base.sums_parts(_SLICES)
        u = union_all(*parts).subquery()
        return select(u.c.d, u.c.k, *(func.sum(u.c[f]) for f in FIELDS)).group_by(u.c.d, u.c.k)

    def reasons(self) -> Select[Any]:
        parts: list[Select[Any]] = []
        if self._rolled:
            parts.append(
                select(
                    _REASONS.c.channel, _REASONS.c.reason.label("reason"), _REASONS.c.count.label("n")
                ).where(*self._days(_REASONS))
            )
        if self.base is not None:
            counted = self.base.reasons().subquery()
            parts.append(
                select(counted.c.channel, counted.c.handoff_reason.label("reason"), counted.c[2].label("n"))
            )
        u = union_all(*parts).subquery()
        return select(u.c.channel, u.c.reason, func.sum(u.c.n)).group_by(u.c.channel, u.c.reason)

    def percentile_bins(self, metric: str) -> Select[Any]:
        """(d, k, n, lo, hi, before, total) of the bins holding the p50 and p95 ranks of each slice."""
        parts: list[Select[Any]] = []
        for dimension in DIMENSIONS:
            if self._rolled:
                parts.append(self._rolled_bins(metric, dimension))
        if self.base is not None:
            parts += self.base.histogram_parts(metric, DIMENSIONS)
        u = union_all(*parts).subquery()
        merged = (
            select(
                u.c.d,
                u.c.k,
                u.c.bin,
                func.sum(u.c.n).label("n"),
                func.min(u.c.lo).label("lo"),
                func.max(u.c.hi).label("hi"),
            )
            .group_by(u.c.d, u.c.k, u.c.bin)
            .subquery()
        )
        slice_ = [merged.c.d, merged.c.k]
        counted = select(
            *merged.c,
            func.sum(merged.c.n).over(partition_by=slice_, order_by=merged.c.bin).label("cum"),
            func.sum(merged.c.n).over(partition_by=slice_).label("total"),
        ).subquery()
        before = counted.c.cum - counted.c.n

        def holds(q: float) -> ColumnElement[bool]:
            rank = (counted.c.total - 1) * q
            # the bin holds floor(rank) or ceil(rank)
            return or_(
                and_(before <= rank, rank < counted.c.cum), and_(rank > before - 1, rank <= counted.c.cum - 1)
            )

        return select(
            counted.c.d, counted.c.k, counted.c.n, counted.c.lo, counted.c.hi, before, counted.c.total
        ).where(or_(holds(0.5), holds(0.95)))

    def _rolled_dim(self, dimension: str) -> str:
        """Which rollup histogram a dimension reads: per intent of all channels or of the filtered
        one (coarse bins); everything and the series from the all-channel one unless filtered."""
        filtered = self.rng.channel is not None
        if dimension == "intent":
            return "chintent" if filtered else "intent"
        if dimension in ("all", "bucket") and not filtered:
            return "day"
        return "channel"

    def _rolled_bins(self, metric: str, dimension: str) -> Select[Any]:
        by_intent = dimension == "intent"
        where = [
            *self._days(_HIST),
            _HIST.c.metric == metric,
            _HIST.c.dim == self._rolled_dim(dimension),
        ]
        key: ColumnElement[Any]
        if dimension == "all":
            key = literal_column("''")
        elif dimension == "channel":
            key = _HIST.c.channel
        elif by_intent:
            key = _HIST.c.key
        else:
            key = self._day_bucket(_HIST.c.day)
        query = select(
            literal_column(f"'{dimension}'").label("d"),
            key.label("k"),
            _HIST.c.bin.label("bin"),
            func.sum(_HIST.c.count).label("n"),
            func.min(_HIST.c.low).label("lo"),
            func.max(_HIST.c.high).label("hi"),
        ).where(*where)
        return query.group_by(_HIST.c.bin) if dimension == "all" else query.group_by(key, _HIST.c.bin)

    # -- running ----------------------------------------------------------------------------------
    async def run(self, conn: AsyncConnection) -> dict[str, Any]:
        sums = (await conn.execute(self.sums())).all()
        reasons = (await conn.execute(self.reasons())).all()
        bins = {metric: (await conn.execute(self.percentile_bins(metric))).all() for metric in METRICS}
        return assemble(self.rng, sums, reasons, bins)


def _slice(sums: Sequence[float], first: dict[str, Any], voice: dict[str, Any]) -> dict[str, Any]:
    s = dict(zip(FIELDS, (float(v or 0) for v in sums), strict=True))
    answered = s["answered"]
    return {
        "conversations": int(s["conversations"]),
        "answered": int(answered),
        "first_response_ms": {"p50": first["p50"], "p95": first["p95"]},
        "deflection_rate": _ratio(s["deflected"], answered),
        "handoff_rate": _ratio(s["handed"], answered),
        "handoffs": int(s["handed"]),
        "csat": {
            "average": _avg(s["csat_sum"], s["csat_n"]),
            "responses": int(s["csat_n"]),
            "distribution": {str(k): int(s[f"csat_{k}"]) for k in range(1, 6)},
        },
        "first_contact_resolution": {
            "rate": _ratio(s["closed"] - s["came_back"], s["closed"]),
            "closed": int(s["closed"]),
            "came_back": int(s["came_back"]),
        },
        "handle_ms": {
            "bot_average": _avg(s["bot_handle_sum"], s["bot_handle_n"]),
            "bot_conversations": int(s["bot_handle_n"]),
            "human_average": _avg(s["human_handle_sum"], s["human_handle_n"]),
            "human_handoffs": int(s["human_handle_n"]),
        },
        "voice_latency_ms": {"p50": voice["p50"], "p95": voice["p95"], "turns": voice["count"]},
    }


_NONE = {"p50": None, "p95": None, "count": 0}


def _percentiles(rows: Sequence[Sequence[Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], list[Any]] = {}
    for d, k, n, lo, hi, before, total in rows:
        found.setdefault((d, k), []).append((int(before), int(n), float(lo), float(hi), int(total)))
    result = {}
    for slice_, bins in found.items():
        total = bins[0][4]
        parts = [b[:4] for b in bins]
        values = [percentile_of_bins(parts, total, q) for q in (50, 95)]
        result[slice_] = {
            "p50": None if values[0] is None else round(values[0], 1),
            "p95": None if values[1] is None else round(values[1], 1),
            "count": total,
        }
    return result


def assemble(
    rng: DashboardRange,
    sums: Sequence[Sequence[Any]],
    reasons: Sequence[Sequence[Any]],
    bins: dict[str, Sequence[Sequence[Any]]],
) -> dict[str, Any]:
    """The response (see docs/dashboard.md) from the rows of the four statements."""
    first = _percentiles(bins["first_response"])
    voice = _percentiles(bins["voice_latency"])
    by: dict[str, dict[str, list[float]]] = {d: {} for d in _SLICES}
    for d, k, *values in sums:
        by[d][k or ""] = [float(v or 0) for v in values]
    everything = [sum(column) for column in zip(*by["channel"].values(), strict=True)] or [0.0] * len(FIELDS)

    def figures(d: str, k: str, values: Sequence[float] | None) -> dict[str, Any]:
        return _slice(values or [0.0] * len(FIELDS), first.get((d, k), _NONE), voice.get((d, k), _NONE))

    by_reason: dict[str, dict[str, int]] = {}
    totals: dict[str, int] = {}
    for channel, reason, n in reasons:
        by_reason.setdefault(channel, {})[reason] = by_reason.get(channel, {}).get(reason, 0) + int(n)
        totals[reason] = totals.get(reason, 0) + int(n)

    def ordered(counts: dict[str, int]) -> dict[str, int]:
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    channels = sorted(set(by["channel"]) | {k for d, k in voice if d == "channel"})
    intents = sorted(set(by["intent"]) | {k for d, k in voice if d == "intent"})
    return {
        "range": {
            "since": rng.since.isoformat(),
            "until": rng.until.isoformat(),
            "bucket": rng.bucket.value,
            "channel": rng.channel,
        },
        **figures("all", "", everything),
        "handoff_reasons": ordered(totals),
        "per_channel": {
            ch: {
                **figures("channel", ch, by["channel"].get(ch)),
                "handoff_reasons": ordered(by_reason.get(ch, {})),
            }
            for ch in channels
        },
        "per_intent": {(k or NO_INTENT): figures("intent", k, by["intent"].get(k)) for k in intents},
        "series": [
            {"start": rng.bucket_start(n).isoformat(), **figures("bucket", str(n), by["bucket"].get(str(n)))}
            for n in rng.bucket_numbers()
        ],
    }
