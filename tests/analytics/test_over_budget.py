"""Money in an evaluation: the over_budget rule, the statistics' cost row, and what a leak costs a day."""

from __future__ import annotations

from datetime import date

import pytest

from analytics.alerts import AlertBook
from analytics.report import statistics
from analytics.runner import evaluate
from meterwatch.const import DEFAULT_CITIES, INSTITUTION_TYPES
from meterwatch.localtime import DAY, midnight_of
from meterwatch.registry import Device, Institution, Registry
from meterwatch.registry.tariffs import load_tariffs
from meterwatch.settings import AnalyticsSettings
from meterwatch.store import Batch, CostPoint, ReadingPoint, open_store
from tests.analytics.test_costs import TARIFFS

A = Institution("inst-a", "甲单位", "yinchuan", "office", "", 1000.0, 50)
DEVICES = {"e1": Device("e1", "inst-a", "electricity", "kWh", 1.0, ""), "w1": Device("w1", "inst-a", "water", "m3", 1.0, "")}
AT = midnight_of(date(2026, 4, 1)) + 6 * 3600  # 06:00 on 1 April: day 90 of the year


def registry(budget: float) -> Registry:
    tariffs, problems = load_tariffs(TARIFFS, DEFAULT_CITIES, INSTITUTION_TYPES)
    assert not problems
    return Registry({"inst-a": A}, DEVICES, {}, {}, tariffs, {("inst-a", 2026, "total"): budget})


def reading(device: str, kind: str, ts: int, consumption: float, interval: int) -> ReadingPoint:
    return ReadingPoint(device, "inst-a", "yinchuan", "office", kind, ts, 0.0, consumption, interval)


async def test_an_institution_heading_over_its_budget_is_alerted_and_its_statistic_says_so(tmp_path):
    """¥31,000 spent by day 90 (cost points already priced) against a budget of ¥100,000: heading for
    ¥125,722, passing the budget on 18 October (the hand calculation of tests/analytics/test_budget.py)."""
    store = open_store(f"duckdb://{tmp_path / 's.duckdb'}")
    await store.open()
    try:
        await store.write(Batch(costs=[CostPoint("inst-a", "yinchuan", "office", "electricity",
                                                 midnight_of(date(2026, 2, 1)), 1.0, 31000.0, 10.0)]))
        reg = registry(100000.0)
        result = await evaluate(store, reg, AnalyticsSettings(), AlertBook(), AT, [], rules=["over_budget"])
        points, lines = await statistics(store, reg, AT)
    finally:
        await store.close()
    assert result.failed == {}
    (event,) = [e for e in result.events if e.rule == "over_budget"]
    assert (event.state, event.device, event.severity) == ("open", "inst-a.budget", "warning")
    assert event.value == pytest.approx(31000 * 365 / 90 / 100000, abs=1e-3)
    assert "2026-10-18" in event.message and "¥100,000" in event.message and "¥31,000" in event.message
    (row,) = [p for p in points if p.indicator == "cost"]
    assert (row.use, row.quota_constraint, row.quota_status, row.crossing) == (31000.0, 100000.0, "over", "2026-10-18")
    assert row.quota_prorated == pytest.approx(100000 * 90 / 365) and row.projected == pytest.approx(31000 * 365 / 90)
    (electricity,) = [p for p in points if p.indicator == "electricity"]
    assert (electricity.cost_yuan, electricity.kgco2e) == (31000.0, 10.0)
    assert "budget: 1 institution(s) heading over their budget" in lines


async def test_a_leak_says_what_it_costs_a_day_at_the_current_water_price(tmp_path):
    """0.2 m3/h all night for 3 nights: 0.2 x 24 h x 4.40 yuan = ¥21 a day."""
    rows = [reading("w1", "water", AT - 5 * DAY + 900 * k, 0.05, 900) for k in range(1, 5 * 96)]
    store = open_store(f"duckdb://{tmp_path / 's.duckdb'}")
    await store.open()
    try:
        await store.write(Batch(readings=rows))
        result = await evaluate(store, registry(1e9), AnalyticsSettings(), AlertBook(), AT, [], rules=["leak"])
    finally:
        await store.close()
    (event,) = [e for e in result.events if e.rule == "leak"]
    assert "每天约损失 ¥21" in event.message and "about ¥21 a day" in event.message_en
