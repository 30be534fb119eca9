"""Last year's seasonal profiles are read once per store and window, and again after readings are imported.

The overuse rule, the budget step and the statistics each ask for the same
profiles every evaluation; at 50,100 institutions the grouped year of sums
is the most expensive query analytics makes.  An import of last year's
readings (``meterwatch import``) must reach the next evaluation.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from analytics.inputs import type_profiles
from collector.imports import import_file
from meterwatch.localtime import CHINA, DAY
from meterwatch.settings import Settings
from meterwatch.store import Batch, ReadingPoint, open_store
from tests.helpers import tiny_registry

pytestmark = pytest.mark.servers

START = int(datetime(2025, 1, 1, tzinfo=CHINA).timestamp())
END = START + 365 * DAY
MARCH_1 = 59  # day index of 2025-03-01 in the window


def local(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=CHINA).timestamp())


def electricity(ts: int, register: float, consumption: float | None) -> ReadingPoint:
    return ReadingPoint("a-e1", "inst-a", "yinchuan", "education", "electricity", ts, register, consumption, 86400)


async def test_profiles_are_read_once_and_again_after_an_import(tmp_path: Path, store_url: str) -> None:
    registry = tiny_registry(tmp_path / "registry")
    store = open_store(store_url)
    await store.open()
    grouped: list[tuple[str, ...]] = []
    aggregate = store.aggregate

    async def recording(agg):  # the real store's answer; only the grouped queries are noted
        if agg.by:
            grouped.append(agg.by)
        return await aggregate(agg)

    store.aggregate = recording
    try:
        await store.write(Batch(readings=[electricity(local("2025-02-28 12:00"), 3990.0, None),
                                          electricity(local("2025-03-01 12:00"), 4000.0, 10.0),
                                          electricity(local("2025-03-02 12:00"), 4030.0, 30.0)]))
        first = await type_profiles(store, START, END, min_days=2)
        series = first[("education", "electricity")]
        assert series[MARCH_1:MARCH_1 + 2].tolist() == [10.0, 30.0]
        assert series[0] == series[MARCH_1 + 2] == 20.0  # the days without data: the mean of those with
        assert await type_profiles(store, START, END, min_days=2) is first  # the same window: not read again
        assert grouped == [("type", "kind")]

        # Two readings of 3 March imported from an office's file (multiplier 40): 4050 and 4060 kWh.
        (tmp_path / "march.csv").write_text("device,time,register\na-e1,2025/03/03 08:00,101.25\n"
                                            "a-e1,2025/03/03 09:00,101.5\n", encoding="utf-8")
        report = await import_file(tmp_path / "march.csv", registry, Settings(), store)
        assert report.problems == []

        after = await type_profiles(store, START, END, min_days=2)
        assert after[("education", "electricity")][MARCH_1:MARCH_1 + 3].tolist() == [10.0, 30.0, 30.0]  # 20 + 10
        assert grouped == [("type", "kind"), ("type", "kind")]  # read again, once
    finally:
        await store.close()


async def test_the_year_so_far_is_summed_once_then_the_days_since_and_again_after_an_import(
        tmp_path: Path, store_url: str) -> None:
    from analytics.inputs import year_to_date

    registry = tiny_registry(tmp_path / "registry")
    store = open_store(store_url)
    await store.open()
    windows: list[tuple[int, int]] = []
    aggregate = store.aggregate

    ungrouped: list[tuple[int, int]] = []

    async def recording(agg):  # the real store's answer; the windows of the grouped sums are noted
        if agg.by == ("institution", "kind"):
            windows.append((agg.start, agg.end))
        elif agg.record_type is ReadingPoint:
            ungrouped.append((agg.start, agg.end))
        return await aggregate(agg)

    store.aggregate = recording
    try:
        await store.write(Batch(readings=[electricity(local("2025-02-28 12:00"), 3990.0, None),
                                          electricity(local("2025-03-01 12:00"), 4000.0, 10.0),
                                          electricity(local("2025-03-20 12:00"), 4030.0, 30.0)]))
        at = local("2025-03-21 08:00")
        first = await year_to_date(store, ["inst-a", "inst-b"], START, at)
        assert first["electricity"].tolist() == [40.0, 0.0] and first["water"].tolist() == [0.0, 0.0]
        settled = local("2025-03-17 00:00")  # four days before the day holding ``at``
        assert windows == [(START, settled), (settled, at)]

        windows.clear()
        assert (await year_to_date(store, ["inst-a", "inst-b"], START, at + 900))["electricity"].tolist() == [40.0, 0.0]
        assert windows == [(settled, at + 900)]  # the kept days are not summed again

        # An office imports two water readings of inst-b from 3 March (50.0 then 52.5 m3): the kept days
        # changed, so they are summed again.
        (tmp_path / "march.csv").write_text("device,time,register\nb-w1,2025/03/03 08:00,50.0\n"
                                            "b-w1,2025/03/03 09:00,52.5\n", encoding="utf-8")
        assert (await import_file(tmp_path / "march.csv", registry, Settings(), store)).problems == []
        windows.clear()
        again = await year_to_date(store, ["inst-a", "inst-b"], START, at + 1800)
        assert again["electricity"].tolist() == [40.0, 0.0] and again["water"].tolist() == [0.0, 2.5]
        assert windows == [(START, settled), (settled, at + 1800)]

        # A point of the kept days rewritten with another consumption (as the collector rewrites the reading
        # after a late one): as many readings as before, but the write left a mark in the kept days, so they
        # are summed again (a count of readings missed this).
        await store.write(Batch(readings=[electricity(local("2025-03-01 12:00"), 4000.0, 15.0)]))
        windows.clear()
        corrected = await year_to_date(store, ["inst-a", "inst-b"], START, at + 2700)
        assert corrected["electricity"].tolist() == [45.0, 0.0] and corrected["water"].tolist() == [0.0, 2.5]
        assert windows == [(START, settled), (settled, at + 2700)]
        windows.clear()
        await year_to_date(store, ["inst-a", "inst-b"], START, at + 3600)
        assert windows == [(settled, at + 3600)]  # the mark is seen: not summed a third time
        assert ungrouped == []  # no query over the kept days but the sums themselves
    finally:
        await store.close()


async def test_profiles_are_read_again_after_bills_are_imported(tmp_path: Path, duck_url: str) -> None:
    """A new deployment imports last year's bills: no reading changes, yet the next evaluation must see them."""
    from meterwatch.store import BillPoint

    store = open_store(duck_url)
    await store.open()
    try:
        assert await type_profiles(store, START, END, min_days=300) == {}
        months = [datetime(2025, m, 1, tzinfo=CHINA) for m in range(1, 13)]
        await store.write(Batch(bills=[BillPoint("inst-a", "yinchuan", "education", "electricity",
                                                 int(m.timestamp()), 3100.0, 1800.0, "bills.xlsx") for m in months]))
        again = await type_profiles(store, START, END, min_days=300)
        assert again[("education", "electricity")][0] == pytest.approx(100.0)  # 3,100 kWh over January's 31 days
    finally:
        await store.close()
