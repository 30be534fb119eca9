"""Budget execution by hand: a budget from finance, costs so far, the projection, the crossing date, the standard."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from analytics.budget import execution, flat_day_price
from meterwatch.const import DEFAULT_CITIES, INSTITUTION_TYPES
from meterwatch.localtime import midnight_of
from meterwatch.registry.model import Institution, Registry
from meterwatch.registry.tariffs import load_tariffs
from meterwatch.store import Batch, CostPoint, open_store
from tests.analytics.test_costs import TARIFFS

A = Institution("inst-a", "甲单位", "yinchuan", "office", "", 1000.0, 50)
B = Institution("inst-b", "乙单位", "guyuan", "office", "", 500.0, 20)  # no quota, no budget: listed, not priced
QUOTAS = {"institution": {"inst-a": {"electricity": {"per": "institution", "constraint": 100000.0, "guide": 80000.0},
                                     "water": {"per": "institution", "constraint": 1200.0, "guide": 1000.0}}}}


def cost(inst: Institution, kind: str, day: date, yuan: float) -> CostPoint:
    return CostPoint(inst.id, inst.city, inst.type, kind, midnight_of(day), 1.0, yuan, 2.0)


async def test_execution_projects_the_year_and_dates_the_overrun(store_url):
    tariffs, _ = load_tariffs(TARIFFS, DEFAULT_CITIES, INSTITUTION_TYPES)
    budgets = {("inst-a", 2026, "electricity"): 60000.0, ("inst-a", 2026, "water"): 40000.0}
    registry = Registry({"inst-a": A, "inst-b": B}, {}, {}, QUOTAS, tariffs, budgets)
    at = midnight_of(date(2026, 4, 1))  # day 90 of the year: a flat profile has 90/365 of the year behind it
    points = [cost(A, "electricity", date(2026, 1, 15), 12000.0), cost(A, "electricity", date(2026, 3, 20), 8000.0),
              cost(A, "water", date(2026, 2, 1), 11000.0), cost(A, "water", date(2026, 4, 1), 999.0)]  # at: excluded
    store = open_store(store_url)
    await store.open()
    try:
        await store.write(Batch(costs=points))
        ex = await execution(store, registry, at, profile_min_days=300)
    finally:
        await store.close()
    a = 0
    assert [i.id for i in ex.institutions] == ["inst-a", "inst-b"]
    assert (ex.cost["electricity"][a], ex.cost["water"][a], ex.cost["total"][a]) == (20000.0, 11000.0, 31000.0)
    assert ex.kgco2e[a] == 6.0
    assert ex.monthly[a, 0, 0] == 12000.0 and ex.monthly[a, 2, 0] == 8000.0 and ex.monthly[a, 1, 1] == 11000.0
    assert ex.budget["total"][a] == 100000.0 and ex.budget_source[a] == "finance"
    assert ex.projected["total"][a] == pytest.approx(31000.0 * 365 / 90)  # 125,722.22
    assert ex.prorated[a] == pytest.approx(100000.0 * 90 / 365)
    assert ex.status[a] == "over"
    assert ex.overrun()[a] == pytest.approx(31000.0 * 365 / 90 - 100000.0)
    # the path from 31,000 today to 125,722 at year end, (d - 89) / 275 of the way on day d (0-based),
    # passes 100,000 when d - 89 > 69,000 x 275 / 94,722 = 200.3: day 290, 18 October
    assert ex.crossing_date(a) == date(2026, 10, 18)
    # standard: 100,000 / 80,000 kWh at a flat day's price, 1,200 / 1,000 m3 at 4.40; no heat (no energy quota)
    price = (2 * 1.10 + 7 * 0.95 + 7 * 0.62 + 8 * 0.30) / 24
    assert flat_day_price(tariffs, A, date(2026, 7, 1)) == pytest.approx(price)
    assert ex.standard.constraint["electricity"][a] == pytest.approx(100000 * price)
    assert ex.standard.guide["water"][a] == pytest.approx(1000 * 4.40)
    assert ex.overrun("guide")[a] == pytest.approx(31000.0 * 365 / 90 - (80000 * price + 4400))
    b = 1
    assert ex.status[b] == "" and np.isnan(ex.budget["total"][b]) and ex.cost["total"][b] == 0.0
    assert any("no electricity quota" in n for n in ex.notes), ex.notes
