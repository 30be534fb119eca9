"""A long window is read from InfluxDB a week at a time and the parts add up to what one query gives."""

from __future__ import annotations

from datetime import date

import pytest

from meterwatch.localtime import DAY, midnight_of
from meterwatch.store import Batch, ReadingPoint, open_store
from meterwatch.store.aggregate import Aggregate

pytestmark = pytest.mark.servers
START = midnight_of(date(2026, 3, 2))


def reading(device: str, ts: int, consumption: float) -> ReadingPoint:
    return ReadingPoint(device, "i1", "yinchuan", "office", "water", ts, 100.0, consumption, 3600)


async def test_a_three_week_window_in_daily_parts_gives_the_figures_of_one_query(influxd) -> None:
    # d1: one reading a day at 12:00 for 20 days, consumption = the day number; d2: day 3 and midnight of day 16.
    points = [reading("d1", START + k * DAY + 12 * 3600, float(k)) for k in range(20)]
    points += [reading("d2", START + 3 * DAY + 6 * 3600, 5.0), reading("d2", START + 16 * DAY, 0.5)]  # a part edge
    store = open_store(f"influxdb://127.0.0.1:{influxd.port}/chunks")
    await store.open()
    queries: list[str] = []
    query = store.query

    async def recording(q: str, **kwargs):
        queries.append(q)
        return await query(q, **kwargs)

    store.query = recording
    try:
        await store.write(Batch(readings=points))
        store.chunk_s = 2 * DAY  # parts of two days: ten of them over these 20 days (a week in production)
        values = {"s": ("sum", "consumption"), "lo": ("min", "consumption"), "hi": ("max", "consumption"),
                  "n": ("count", "consumption")}
        queries.clear()
        per_device = await store.aggregate(Aggregate(ReadingPoint, values, START, START + 20 * DAY, by=("device",)))
        assert len(queries) == 10 and all(q.startswith("SELECT sum(") for q in queries)
        daily = await store.aggregate(Aggregate(ReadingPoint, {"s": ("sum", "consumption")}, START,
                                                START + 20 * DAY, by=("device",), bucket_s=DAY, closing=True))
        whole = await store.aggregate(Aggregate(ReadingPoint, {"m": ("median", "consumption")}, START,
                                                START + 20 * DAY, by=("device",)))
    finally:
        await store.close()
    assert per_device["device"] == ["d1", "d2"]
    assert per_device["s"].tolist() == [190.0, 5.5]  # 0 + 1 + ... + 19; 5 + 0.5
    assert per_device["lo"].tolist() == [0.0, 0.5] and per_device["hi"].tolist() == [19.0, 5.0]
    assert per_device["n"].tolist() == [20.0, 2.0]
    got = dict(zip(zip(daily["device"], daily["bucket"].tolist(), strict=True), daily["s"].tolist(), strict=True))
    assert got[("d1", START + 19 * DAY)] == 19.0 and len([k for k in got if k[0] == "d1"]) == 20
    # closing: the reading at midnight of day 16 closes day 15, though a part ends at that very midnight
    assert got[("d2", START + 3 * DAY)] == 5.0 and got[("d2", START + 15 * DAY)] == 0.5
    assert whole["m"].tolist() == [9.5, 2.75]  # a median cannot be made of parts: one query, the true median
