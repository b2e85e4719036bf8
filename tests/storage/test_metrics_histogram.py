"""The SQL histogram bins and the percentiles read from them."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import Float, literal, select

from voicebot.storage import Database, percentile
from voicebot.storage.histogram import COARSE, OCTAVES, SUB_BINS, Histogram, bin_expression, coarse


async def _bins(db: Database, values: list[float]) -> list[int]:
    dialect = db.engine.dialect.name
    async with db.reader.connect() as conn:
        return [
            int(await conn.scalar(select(bin_expression(literal(v, Float), dialect))) or 0) for v in values
        ]


async def test_bins_are_log_spaced_and_ordered(db: Database) -> None:
    values = [0.0, 0.5, 1.0, 1.99, 2.0, 3.0, 100.0, 1000.0, 1065.0, 2.0**OCTAVES * 3]
    bins = await _bins(db, values)
    assert bins[:2] == [0, 0]
    assert bins[2] == 1 and bins[3] == SUB_BINS  # the first doubling: 1..2 ms
    assert bins[4] == 1 + SUB_BINS
    assert bins[-1] == 1 + OCTAVES * SUB_BINS  # everything huge shares the last bin
    assert bins == sorted(bins)
    assert bins[7] != bins[8]  # 1000 and 1065 ms (6.5 % apart) never share a bin


async def test_percentiles_within_the_bin_width(db: Database) -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(6.5, 0.6) for _ in range(300)]
    histogram = Histogram()
    rows: dict[int, list[float]] = {}
    for value, number in zip(values, await _bins(db, values), strict=True):
        rows.setdefault(number, []).append(value)
    for number, inside in rows.items():
        histogram.add(number, len(inside), min(inside), max(inside))
    assert histogram.count == 300
    for q in (0, 10, 50, 90, 95, 99, 100):
        exact = percentile(values, q)
        assert exact is not None
        assert histogram.percentile(q) == pytest.approx(exact, rel=1 / SUB_BINS)
    assert histogram.percentile(0) == min(values) and histogram.percentile(100) == max(values)


def test_small_sets_are_exact() -> None:
    histogram = Histogram()
    histogram.add(5, 2, 10.0, 11.0)  # two values in one bin: both known
    histogram.add(9, 1, 40.0, 40.0)
    for q in (0, 25, 50, 80, 95, 100):
        assert histogram.percentile(q) == pytest.approx(percentile([10.0, 11.0, 40.0], q))
    assert Histogram().percentile(50) is None
    assert Histogram().summary() == {"p50": None, "p95": None}


def test_merge_adds_counts_and_widens_bins() -> None:
    a, b = Histogram(), Histogram()
    a.add(3, 2, 5.0, 6.0)
    b.add(3, 1, 4.5, 4.5)
    b.add(4, 1, 9.0, 9.0)
    merged = Histogram().merge([a, b])
    assert merged.count == 4
    assert (merged.bins[3].count, merged.bins[3].low, merged.bins[3].high) == (3, 4.5, 6.0)


async def test_coarse_bins_keep_order_and_a_quarter_of_the_resolution(db: Database) -> None:
    values = [0.5, 1.0, 1.2, 2.0, 3.9, 100.0, 130.0, 1000.0]
    dialect = db.engine.dialect.name
    async with db.reader.connect() as conn:
        fine = [int(await conn.scalar(select(bin_expression(literal(v, Float), dialect)))) for v in values]
        rough = [
            int(await conn.scalar(select(coarse(bin_expression(literal(v, Float), dialect))))) for v in values
        ]
    assert rough == sorted(rough) and rough[0] == 0
    assert rough == [(f + COARSE - 1) // COARSE for f in fine]
    assert rough[1] == rough[2] and rough[3] != rough[4]  # 1-1.25 ms share one bin; 2 and 3.9 ms do not
