"""Percentiles from SQL histograms, so the dashboard never fetches one row per conversation.

The database groups values into log-spaced bins: ``SUB_BINS`` per doubling (1-2 ms, 2-4 ms, ...),
so a bin is at most 1/16 = 6.25 % wide, and returns per bin its count, smallest and largest value.
``Histogram.percentile`` finds the bin holding the wanted rank and interpolates between the bin's
own smallest and largest value by rank. So a bin of one or two values gives them exactly (small
data sets get the same figures as :func:`voicebot.storage.metrics.percentile`), and otherwise the
error is bounded by the spread of the values inside one bin (< 6.25 % of the value).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Integer, case, cast, func, literal

SUB_BINS = 16  # bins per doubling
OCTAVES = 26  # 1 ms .. 2**26 ms (18.6 h); larger values share the last bin
COARSE = 4  # fine bins per coarse bin (4 per doubling: the per-intent figures, see coarse())


def bin_expression(value: ColumnElement[float], dialect: str) -> ColumnElement[int]:
    """The bin number of ``value`` (ms) as SQL: 0 below 1 ms, then SUB_BINS per doubling."""

    def trunc(expr: ColumnElement[float]) -> ColumnElement[int]:
        # SQLite's CAST truncates (values are >= 0 here, so that is floor); PostgreSQL's rounds.
        return cast(func.floor(expr) if dialect == "postgresql" else expr, Integer)

    whens: list[tuple[ColumnElement[bool], ColumnElement[int]]] = [(value < 1.0, literal(0))]
    for k in range(OCTAVES):
        low = float(2**k)
        whens.append((value < 2.0 * low, 1 + k * SUB_BINS + trunc((value - low) * (SUB_BINS / low))))
    return case(*whens, else_=literal(1 + OCTAVES * SUB_BINS))


def coarse(number: ColumnElement[int]) -> ColumnElement[int]:
    """The coarse bin of a fine bin number (0 stays 0; then COARSE fine bins each, in order).

    Per-intent histograms use them: a day of one intent holds few values, so fine bins would keep
    about one rollup row per conversation."""
    return (number + (COARSE - 1)) // COARSE


@dataclass(slots=True)
class Bin:
    count: int
    low: float  # the smallest value in the bin
    high: float  # the largest


@dataclass(slots=True)
class Histogram:
    bins: dict[int, Bin] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(b.count for b in self.bins.values())

    def add(self, number: int, count: int, low: float, high: float) -> None:
        """Add one SQL row (bin, count, min, max); bins of the same number merge."""
        if count <= 0:
            return
        have = self.bins.get(number)
        if have is None:
            self.bins[number] = Bin(count, float(low), float(high))
        else:
            have.count += count
            have.low = min(have.low, float(low))
            have.high = max(have.high, float(high))

    def merge(self, others: Iterable[Histogram]) -> Histogram:
        for other in others:
            for number, b in other.bins.items():
                self.add(number, b.count, b.low, b.high)
        return self

    def _value_at(self, rank: int) -> float:
        """The value at 0-based ``rank`` among all values, interpolated inside its bin."""
        before = 0
        for number in sorted(self.bins):
            b = self.bins[number]
            if rank < before + b.count:
                if b.count == 1:
                    return b.low
                return b.low + (b.high - b.low) * (rank - before) / (b.count - 1)
            before += b.count
        raise IndexError(rank)

    def percentile(self, q: float) -> float | None:
        """The q-th percentile (0..100), ranks interpolated as metrics.percentile; None when empty."""
        n = self.count
        if n == 0:
            return None
        rank = (n - 1) * q / 100.0
        low, high = math.floor(rank), math.ceil(rank)
        at_low = self._value_at(low)
        if low == high:
            return at_low
        return at_low + (self._value_at(high) - at_low) * (rank - low)

    def summary(self) -> dict[str, float | None]:
        p50, p95 = self.percentile(50), self.percentile(95)
        return {"p50": None if p50 is None else round(p50, 1), "p95": None if p95 is None else round(p95, 1)}


def percentile_of_bins(bins: Sequence[tuple[int, int, float, float]], total: int, q: float) -> float | None:
    """The q-th percentile from only the bins that hold its ranks: (before, count, low, high), where
    ``before`` counts the values in lower bins (what the SQL window gives, see dashboard_read)."""
    if total <= 0:
        return None
    rank = (total - 1) * q / 100.0

    def value_at(r: int) -> float:
        for before, count, low, high in bins:
            if before <= r < before + count:
                return low if count == 1 else low + (high - low) * (r - before) / (count - 1)
        raise IndexError(r)

    low, high = math.floor(rank), math.ceil(rank)
    at_low = value_at(low)
    return at_low if low == high else at_low + (value_at(high) - at_low) * (rank - low)
