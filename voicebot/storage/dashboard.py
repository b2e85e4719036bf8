"""The KPI dashboard's figures, computed in the database (see docs/dashboard.md for definitions).

The conversations started in ``[since, until)`` (optionally of one channel) are the cohort. One
GROUP BY (time bucket, channel, intent) gives every count and sum; percentiles come from
log-binned histograms (voicebot.storage.histogram), one GROUP BY per dimension; human handle time
from the handoffs of the cohort; voice-to-voice latency from the per-turn ``voice.turn_latency``
audit entries written by the call pipeline in the range. Python only merges a few thousand rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Float, Integer, Select, and_, case, cast, func, select

from voicebot.storage import tables
from voicebot.storage.histogram import Histogram, bin_expression

_C = tables.conversations
_H = tables.handoffs
_A = tables.audit_log

VOICE_LATENCY_ACTION = "voice.turn_latency"  # voicebot.pipeline.call_latency.LATENCY_ACTION
NO_INTENT = "(none)"
_CLOSED = ("resolved", "ended")


class Bucket(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"

    @property
    def seconds(self) -> int:
        return {"hour": 3600, "day": 86400, "week": 7 * 86400}[self.value]

    @property
    def shift(self) -> int:
        """Seconds added to the epoch before dividing, so weeks start on Monday (1970-01-01 was a
        Thursday)."""
        return 3 * 86400 if self is Bucket.WEEK else 0

    @classmethod
    def for_range(cls, since: datetime, until: datetime) -> Bucket:
        """Hours up to 2 days, days up to 90 days, weeks beyond."""
        span = until - since
        if span <= timedelta(days=2):
            return cls.HOUR
        if span <= timedelta(days=90):
            return cls.DAY
        return cls.WEEK


@dataclass(frozen=True, slots=True)
class DashboardRange:
    since: datetime  # aware, UTC
    until: datetime
    bucket: Bucket
    channel: str | None = None

    def bucket_numbers(self) -> range:
        first = (int(self.since.timestamp()) + self.bucket.shift) // self.bucket.seconds
        last = (int(self.until.timestamp()) - 1 + self.bucket.shift) // self.bucket.seconds
        return range(first, last + 1)

    def bucket_start(self, number: int) -> datetime:
        return datetime.fromtimestamp(number * self.bucket.seconds - self.bucket.shift, UTC)


def _epoch(column: Any, dialect: str) -> ColumnElement[int]:
    if dialect == "postgresql":
        return cast(func.floor(func.extract("epoch", column)), Integer)
    return cast(func.strftime("%s", column), Integer)


def _bucket(column: Any, rng: DashboardRange, dialect: str) -> ColumnElement[int]:
    return (_epoch(column, dialect) + rng.bucket.shift) // rng.bucket.seconds


def _millis_between(start: Any, end: Any, dialect: str) -> ColumnElement[float]:
    if dialect == "postgresql":
        return cast(func.extract("epoch", end - start), Float) * 1000.0
    return (func.julianday(end) - func.julianday(start)) * 86_400_000.0


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _avg(total: float, n: int) -> float | None:
    return round(total / n, 1) if n else None


# The sums of the main GROUP BY, in order (see _counts_query).
_FIELDS = (
    "conversations",
    "answered",
    "deflected",
    "handed",
    "csat_sum",
    "csat_n",
    "csat_1",
    "csat_2",
    "csat_3",
    "csat_4",
    "csat_5",
    "closed",
    "came_back",
    "bot_handle_sum",
    "bot_handle_n",
    "human_handle_sum",
    "human_handle_n",
)


class _Group:
    """The sums and histograms of one slice (everything, a channel, an intent, a time bucket)."""

    __slots__ = ("first", "sums", "voice")

    def __init__(self) -> None:
        self.sums = dict.fromkeys(_FIELDS, 0.0)
        self.first = Histogram()
        self.voice = Histogram()

    def add(self, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.sums[key] += value

    def figures(self) -> dict[str, Any]:
        s = {k: (v if k.endswith("_sum") else int(v)) for k, v in self.sums.items()}
        answered = int(s["answered"])
        return {
            "conversations": int(s["conversations"]),
            "answered": answered,
            "first_response_ms": self.first.summary(),
            "deflection_rate": _ratio(int(s["deflected"]), answered),
            "handoff_rate": _ratio(int(s["handed"]), answered),
            "handoffs": int(s["handed"]),
            "csat": {
                "average": _avg(s["csat_sum"], int(s["csat_n"])),
                "responses": int(s["csat_n"]),
                "distribution": {str(k): int(s[f"csat_{k}"]) for k in range(1, 6)},
            },
            "first_contact_resolution": {
                "rate": _ratio(int(s["closed"]) - int(s["came_back"]), int(s["closed"])),
                "closed": int(s["closed"]),
                "came_back": int(s["came_back"]),
            },
            "handle_ms": {
                "bot_average": _avg(s["bot_handle_sum"], int(s["bot_handle_n"])),
                "bot_conversations": int(s["bot_handle_n"]),
                "human_average": _avg(s["human_handle_sum"], int(s["human_handle_n"])),
                "human_handoffs": int(s["human_handle_n"]),
            },
            "voice_latency_ms": {**self.voice.summary(), "turns": self.voice.count},
        }


class DashboardQueries:
    """Builds and runs the dashboard's statements on one connection."""

    def __init__(self, tenant_id: str, rng: DashboardRange, dialect: str) -> None:
        self.tenant_id = tenant_id
        self.rng = rng
        self.dialect = dialect

    def _cohort(self) -> list[ColumnElement[bool]]:
        where = [
            _C.c.tenant_id == self.tenant_id,
            _C.c.created_at >= self.rng.since,
            _C.c.created_at < self.rng.until,
        ]
        if self.rng.channel is not None:
            where.append(_C.c.channel == self.rng.channel)
        return where

    def counts(self) -> Select[Any]:
        answered = _C.c.first_response_ms.is_not(None)
        without_human = _C.c.resolved_without_human
        closed = _C.c.status.in_(_CLOSED)

        def when(condition: ColumnElement[bool], value: Any = 1) -> ColumnElement[Any]:
            return func.sum(case((condition, value), else_=0))

        bot_only = answered & (without_human.is_(None) | without_human.is_(True))
        return (
            select(
                _bucket(_C.c.created_at, self.rng, self.dialect).label("b"),
                _C.c.channel,
                _C.c.intent,
                func.count(),
                func.count(_C.c.first_response_ms),
                when(answered & without_human.is_(True)),
                when(answered & without_human.is_(False)),
                func.coalesce(func.sum(_C.c.csat), 0),
                func.count(_C.c.csat),
                *(when(_C.c.csat == k) for k in range(1, 6)),
                when(closed),
                when(closed & _C.c.came_back.is_(True)),
                when(bot_only & _C.c.handle_ms.is_not(None), _C.c.handle_ms),
                when(bot_only & _C.c.handle_ms.is_not(None)),
            )
            .where(*self._cohort())
            .group_by("b", _C.c.channel, _C.c.intent)
        )

    def human_handle(self) -> Select[Any]:
        done = and_(_H.c.taken_at.is_not(None), _H.c.closed_at.is_not(None))
        return (
            select(
                _bucket(_C.c.created_at, self.rng, self.dialect).label("b"),
                _C.c.channel,
                _C.c.intent,
                func.sum(_millis_between(_H.c.taken_at, _H.c.closed_at, self.dialect)),
                func.count(),
            )
            .select_from(_H.join(_C, _C.c.id == _H.c.conversation_id))
            .where(*self._cohort(), done)
            .group_by("b", _C.c.channel, _C.c.intent)
        )

    def reasons(self) -> Select[Any]:
        return (
            select(_C.c.channel, _C.c.handoff_reason, func.count())
            .where(*self._cohort(), _C.c.handoff_reason.is_not(None))
            .group_by(_C.c.channel, _C.c.handoff_reason)
        )

    def first_response(self, dimension: str) -> Select[Any]:
        value = _C.c.first_response_ms
        key = self._dimension(dimension, _C.c.created_at)
        binned = bin_expression(value, self.dialect).label("bin")
        return (
            select(key, binned, func.count(), func.min(value), func.max(value))
            .where(*self._cohort(), value.is_not(None))
            .group_by(key, binned)
        )

    def voice_latency(self, dimension: str) -> Select[Any]:
        value = _A.c.details["v2v_ms"].as_float()
        key = self._dimension(dimension, _A.c.at)
        binned = bin_expression(value, self.dialect).label("bin")
        where = [
            _A.c.tenant_id == self.tenant_id,
            _A.c.action == VOICE_LATENCY_ACTION,
            _A.c.at >= self.rng.since,
            _A.c.at < self.rng.until,
            value.is_not(None),
        ]
        query = select(key, binned, func.count(), func.min(value), func.max(value))
        if dimension != "bucket" or self.rng.channel is not None:
            query = query.select_from(_A.join(_C, _C.c.id == _A.c.conversation_id))
            if self.rng.channel is not None:
                where.append(_C.c.channel == self.rng.channel)
        return query.where(*where).group_by(key, binned)

    def _dimension(self, dimension: str, at: Any) -> ColumnElement[Any]:
        if dimension == "channel":
            return _C.c.channel.label("k")
        if dimension == "intent":
            return _C.c.intent.label("k")
        return _bucket(at, self.rng, self.dialect).label("k")


def assemble(
    rng: DashboardRange,
    counts: Sequence[Sequence[Any]],
    human: Sequence[Sequence[Any]],
    reasons: Sequence[Sequence[Any]],
    first: dict[str, Sequence[Sequence[Any]]],
    voice: dict[str, Sequence[Sequence[Any]]],
) -> dict[str, Any]:
    """Merge the rows of every statement into the response (see docs/dashboard.md)."""
    overall = _Group()
    slices: dict[str, dict[Any, _Group]] = {"channel": {}, "intent": {}, "bucket": {}}

    def groups(b: int, channel: str, intent: str | None) -> list[_Group]:
        keys = {"bucket": b, "channel": channel, "intent": intent or NO_INTENT}
        return [overall] + [slices[d].setdefault(k, _Group()) for d, k in keys.items()]

    for b, channel, intent, *sums in counts:
        values = {name: float(v or 0) for name, v in zip(_FIELDS, sums, strict=False)}
        for group in groups(int(b), channel, intent):
            group.add(values)
    for b, channel, intent, total, n in human:
        for group in groups(int(b), channel, intent):
            group.add({"human_handle_sum": float(total or 0), "human_handle_n": float(n)})
    for kind, rows_by_dimension in (("first", first), ("voice", voice)):
        for dimension, rows in rows_by_dimension.items():
            for key, number, n, low, high in rows:
                k = int(key) if dimension == "bucket" else (key or NO_INTENT)
                group = slices[dimension].setdefault(k, _Group())
                getattr(group, kind).add(int(number), int(n), float(low), float(high))
    for kind in ("first", "voice"):  # everything = the union of the channels' histograms
        getattr(overall, kind).merge(getattr(g, kind) for g in slices["channel"].values())

    by_reason: dict[str, dict[str, int]] = {}
    for channel, reason, n in reasons:
        by_reason.setdefault(channel, {})[reason] = int(n)
    totals: dict[str, int] = {}
    for per in by_reason.values():
        for reason, n in per.items():
            totals[reason] = totals.get(reason, 0) + n

    def ordered(counts_by_reason: dict[str, int]) -> dict[str, int]:
        return dict(sorted(counts_by_reason.items(), key=lambda item: (-item[1], item[0])))

    per_channel = {
        ch: {**g.figures(), "handoff_reasons": ordered(by_reason.get(ch, {}))}
        for ch, g in sorted(slices["channel"].items())
    }
    per_intent = {k: g.figures() for k, g in sorted(slices["intent"].items())}
    series = []
    for number in rng.bucket_numbers():
        group = slices["bucket"].get(number) or _Group()
        series.append({"start": rng.bucket_start(number).isoformat(), **group.figures()})
    return {
        "range": {
            "since": rng.since.isoformat(),
            "until": rng.until.isoformat(),
            "bucket": rng.bucket.value,
            "channel": rng.channel,
        },
        **overall.figures(),
        "handoff_reasons": ordered(totals),
        "per_channel": per_channel,
        "per_intent": per_intent,
        "series": series,
    }
