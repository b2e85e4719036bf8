"""The KPI dashboard's figures, computed in the database (see docs/dashboard.md for definitions).

The conversations started in ``[since, until)`` (optionally of one channel) are the cohort. One
GROUP BY (time bucket, channel, intent) gives every count and sum; percentiles come from
log-binned histograms (voicebot.storage.histogram), one GROUP BY per dimension; human handle time
from the handoffs of the cohort; voice-to-voice latency from the per-turn ``voice.turn_latency``
audit entries written by the call pipeline in the range. Python only merges a few thousand rows.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Select,
    String,
    and_,
    case,
    cast,
    func,
    literal_column,
    or_,
    select,
)

from voicebot.storage import tables
from voicebot.storage.histogram import bin_expression, coarse

_C = tables.conversations
_H = tables.handoffs
_A = tables.audit_log

VOICE_LATENCY_ACTION = "voice.turn_latency"  # voicebot.pipeline.call_latency.LATENCY_ACTION
NO_INTENT = "(none)"
DIMENSIONS = ("all", "channel", "intent", "bucket")
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


def bucket_of(column: Any, rng: DashboardRange, dialect: str) -> ColumnElement[int]:
    """The series bucket number of a time column (its epoch seconds, shifted, divided)."""
    return (_epoch(column, dialect) + rng.bucket.shift) // rng.bucket.seconds


def _millis_between(start: Any, end: Any, dialect: str) -> ColumnElement[float]:
    if dialect == "postgresql":
        return cast(func.extract("epoch", end - start), Float) * 1000.0
    return (func.julianday(end) - func.julianday(start)) * 86_400_000.0


# The sums of the main GROUP BY, in order (``counts`` gives all but the last two, ``human_handle``
# those), also the columns of the daily rollup (voicebot.storage.dashboard_rollup).
FIELDS = tables.DASHBOARD_SUMS


# The voice latency, read from the audit entry's JSON once per row into this column of a
# materialized CTE (the bin's CASE would otherwise extract it again in every branch it tries).
_VOICE_VALUE = "voice_v2v_ms"


def _value(metric: str) -> ColumnElement[float]:
    if metric == "first_response":
        return _C.c.first_response_ms
    return literal_column(_VOICE_VALUE, Float)


@functools.lru_cache(maxsize=16)
def _binned(metric: str, dialect: str, is_coarse: bool) -> ColumnElement[int]:
    """The bin of ``metric``'s value; built once (a CASE of OCTAVES branches costs to construct)."""
    fine = bin_expression(_value(metric), dialect)
    return coarse(fine) if is_coarse else fine


class DashboardQueries:
    """Builds and runs the dashboard's statements on one connection."""

    def __init__(
        self,
        tenant_id: str,
        rng: DashboardRange,
        dialect: str,
        spans: Sequence[tuple[datetime, datetime]] | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.rng = rng
        self.dialect = dialect
        self.spans = list(spans) if spans is not None else [(rng.since, rng.until)]

    def _in_spans(self, column: Any) -> ColumnElement[bool]:
        """``column`` within one of the spans (the range, or the partial days around the rollup)."""
        return or_(*(and_(column >= since, column < until) for since, until in self.spans))

    def _cohort(self) -> list[ColumnElement[bool]]:
        where = [_C.c.tenant_id == self.tenant_id, self._in_spans(_C.c.created_at)]
        if self.rng.channel is not None:
            where.append(_C.c.channel == self.rng.channel)
        return where

    # -- the base tables' parts of the read statements (voicebot.storage.dashboard_read) -----------
    # One scan per table into a CTE grouped by (bucket, channel, intent[, bin]); each dimension
    # regroups that CTE, so the base tables are read once per statement, whatever the dimensions.
    @staticmethod
    def _key(cte: Any, dimension: str) -> ColumnElement[Any]:
        """The text key of a slice: "" for everything, the channel, the intent ("" for none), or the
        series bucket's number."""
        if dimension == "all":
            return literal_column("''")
        if dimension == "channel":
            return cast(cte.c.channel, String)
        if dimension == "intent":
            return func.coalesce(cte.c.intent, literal_column("''"))
        return cast(cte.c.b, String)

    def sums_parts(self, dimensions: Sequence[str]) -> list[Select[Any]]:
        """(d, k, *FIELDS) per dimension, from the conversations and from the handoffs."""
        counts, human = self.counts().cte("base_counts"), self.human_handle().cte("base_human")
        zero: ColumnElement[Any] = literal_column("0.0")
        parts: list[Select[Any]] = []
        for dimension in dimensions:
            for cte, own in ((counts, FIELDS[:-2]), (human, FIELDS[-2:])):
                key = self._key(cte, dimension)
                columns = [func.sum(cte.c[f]).label(f) if f in own else zero.label(f) for f in FIELDS]
                parts.append(
                    select(literal_column(f"'{dimension}'").label("d"), key.label("k"), *columns).group_by(
                        key
                    )
                )
        return parts

    def histogram_parts(self, metric: str, dimensions: Sequence[str]) -> list[Select[Any]]:
        """(d, k, bin, n, lo, hi) of ``metric`` per dimension (coarse bins per intent)."""
        value, at, where, source = self._metric(metric, needs_conversation=True)
        fine = _binned(metric, self.dialect, False).label("bin")
        query: Any = select(
            bucket_of(at, self.rng, self.dialect).label("b"),
            _C.c.channel,
            _C.c.intent,
            fine,
            func.count().label("n"),
            func.min(value).label("lo"),
            func.max(value).label("hi"),
        ).select_from(source)
        cte = query.where(*where).group_by("b", _C.c.channel, _C.c.intent, fine).cte(f"base_{metric}")
        parts: list[Select[Any]] = []
        for dimension in dimensions:
            key = self._key(cte, dimension)
            binned = coarse(cte.c.bin) if dimension == "intent" else cte.c.bin
            part = select(
                literal_column(f"'{dimension}'").label("d"),
                key.label("k"),
                binned.label("bin"),
                func.sum(cte.c.n).label("n"),
                func.min(cte.c.lo).label("lo"),
                func.max(cte.c.hi).label("hi"),
            )
            parts.append(part.group_by(binned) if dimension == "all" else part.group_by(key, binned))
        return parts

    def _metric(
        self, metric: str, *, needs_conversation: bool
    ) -> tuple[ColumnElement[float], Any, list[ColumnElement[bool]], Any]:
        """(value, its time column, the WHERE, the FROM) of a metric's values in the spans."""
        value = _value(metric)
        if metric == "first_response":
            return value, _C.c.created_at, [*self._cohort(), value.is_not(None)], _C
        turns = (
            select(
                _A.c.at,
                _A.c.conversation_id,
                _A.c.details["v2v_ms"].as_float().label(_VOICE_VALUE),
            )
            .where(
                _A.c.tenant_id == self.tenant_id,
                _A.c.action == VOICE_LATENCY_ACTION,
                self._in_spans(_A.c.at),
            )
            .cte("voice_turns")
            .prefix_with("MATERIALIZED")
        )
        where: list[ColumnElement[bool]] = [turns.c[_VOICE_VALUE].is_not(None)]
        source: Any = turns
        if needs_conversation or self.rng.channel is not None:
            source = turns.join(_C, _C.c.id == turns.c.conversation_id)
            if self.rng.channel is not None:
                where.append(_C.c.channel == self.rng.channel)
        return value, turns.c.at, where, source

    def counts(self) -> Select[Any]:
        answered = _C.c.first_response_ms.is_not(None)
        without_human = _C.c.resolved_without_human
        closed = _C.c.status.in_(_CLOSED)

        def when(condition: ColumnElement[bool], value: Any = 1) -> ColumnElement[Any]:
            return func.sum(case((condition, value), else_=0))

        bot_only = answered & (without_human.is_(None) | without_human.is_(True))
        return (
            select(
                bucket_of(_C.c.created_at, self.rng, self.dialect).label("b"),
                _C.c.channel,
                _C.c.intent,
                *(
                    column.label(name)
                    for column, name in zip(
                        (
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
                        ),
                        FIELDS,
                        strict=False,
                    )
                ),
            )
            .where(*self._cohort())
            .group_by("b", _C.c.channel, _C.c.intent)
        )

    def human_handle(self) -> Select[Any]:
        done = and_(_H.c.taken_at.is_not(None), _H.c.closed_at.is_not(None))
        return (
            select(
                bucket_of(_C.c.created_at, self.rng, self.dialect).label("b"),
                _C.c.channel,
                _C.c.intent,
                func.sum(_millis_between(_H.c.taken_at, _H.c.closed_at, self.dialect)).label(FIELDS[-2]),
                func.count().label(FIELDS[-1]),
            )
            .select_from(_H.join(_C, _C.c.id == _H.c.conversation_id))
            .where(*self._cohort(), done)
            .group_by("b", _C.c.channel, _C.c.intent)
        )

    def reasons(self, *, per_day: bool = False) -> Select[Any]:
        """(channel, reason, n), or (day, channel, reason, n) with ``per_day``."""
        keys: list[Any] = [_C.c.channel, _C.c.handoff_reason]
        if per_day:
            keys.insert(0, bucket_of(_C.c.created_at, self.rng, self.dialect).label("b"))
        return (
            select(*keys, func.count())
            .where(*self._cohort(), _C.c.handoff_reason.is_not(None))
            .group_by(*keys)
        )

    def histogram(self, metric: str, group: Sequence[str]) -> Select[Any]:
        """(*group keys, bin, count, min, max) of ``metric`` (first_response | voice_latency)
        grouped by ``group``, a sequence of bucket / channel / intent (the rollup's days); coarse
        bins when grouped by intent."""
        value, at, where, source = self._metric(metric, needs_conversation=any(d != "bucket" for d in group))
        keys = [self._dimension(d, at).label(f"k{i}") for i, d in enumerate(group)]
        binned = _binned(metric, self.dialect, "intent" in group).label("bin")
        query = select(*keys, binned, func.count(), func.min(value), func.max(value)).select_from(source)
        return query.where(*where).group_by(*keys, binned)

    def _dimension(self, dimension: str, at: Any) -> ColumnElement[Any]:
        if dimension == "channel":
            return _C.c.channel
        if dimension == "intent":
            return _C.c.intent
        return bucket_of(at, self.rng, self.dialect)
