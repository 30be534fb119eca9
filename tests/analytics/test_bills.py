"""Bills stand in for the meters in a new deployment's first year: cost so far, own price, seasonal profile."""

from __future__ import annotations

from datetime import date

import pytest

from analytics.budget import clear_caches, execution
from analytics.inputs import type_profiles
from meterwatch.const import DEFAULT_CITIES, INSTITUTION_TYPES
from meterwatch.localtime import DAY, midnight_of
from meterwatch.registry.model import Registry
from meterwatch.registry.tariffs import load_tariffs
from meterwatch.store import Batch, BillPoint, open_store
from tests.analytics.test_budget import QUOTAS, A, cost
from tests.analytics.test_costs import TARIFFS


def bill(kind: str, year: int, month: int, quantity: float, yuan: float | None) -> BillPoint:
    return BillPoint(A.id, A.city, A.type, kind, midnight_of(date(year, month, 1)), quantity, yuan, "bills.xlsx")


# Last year: only bills, electricity rising month by month (1,000 kWh in January ... 12,000 in December) at 0.5 yuan.
LAST_YEAR = [bill("electricity", 2025, m, 1000.0 * m, 500.0 * m) for m in range(1, 13)]


async def test_bills_fill_the_months_the_meters_have_not_priced(store_url):
    tariffs, _ = load_tariffs(TARIFFS, DEFAULT_CITIES, INSTITUTION_TYPES)
    registry = Registry({A.id: A}, {}, {}, QUOTAS, tariffs, {})
    at = midnight_of(date(2026, 3, 15))  # day 73: January, February and 14 days of March behind
    this_year = [bill("electricity", 2026, 1, 9000.0, 5000.0),  # no meter cost in January: the bill counts
                 bill("electricity", 2026, 2, 9000.0, 7000.0),  # February is metered (6,500): the meters win
                 bill("water", 2026, 2, 100.0, None),  # a bill without yuan adds nothing
                 bill("electricity", 2026, 3, 9000.0, 3000.0)]  # March has not ended at ``at``: not yet
    metered = [cost(A, "electricity", date(2026, 2, 10), 6500.0)]
    clear_caches()
    store = open_store(store_url)
    await store.open()
    try:
        await store.write(Batch(bills=LAST_YEAR + this_year, costs=metered))
        ex = await execution(store, registry, at, profile_min_days=300)
        profiles = await type_profiles(store, midnight_of(date(2025, 1, 1)), midnight_of(date(2026, 1, 1)), 300)
    finally:
        await store.close()
    assert ex.cost["electricity"][0] == 5000.0 + 6500.0
    assert ex.cost["water"][0] == 0.0
    assert (ex.monthly[0, 0, 0], ex.monthly[0, 1, 0], ex.monthly[0, 2, 0]) == (5000.0, 6500.0, 0.0)
    assert any("from bills" in n for n in ex.notes), ex.notes
    assert not any("projections are low" in n for n in ex.notes), ex.notes
    # own price from last year's bills: 39,000 yuan / 78,000 kWh = 0.5; the standard is the quota at that price
    assert ex.standard.constraint["electricity"][0] == pytest.approx(100000 * 0.5)
    # the profile is last year's bills spread over each month's days: the share behind on 15 March is
    # (1,000 + 2,000 + 3,000 x 14/31) / 78,000
    office = profiles[("office", "electricity")]
    assert office[0] == pytest.approx(1000.0 / 31) and office[31 + 27] == pytest.approx(2000.0 / 28)
    assert office[364] == pytest.approx(12000.0 / 31)
    share = (1000 + 2000 + 3000 * 14 / 31) / 78000
    assert ex.projected["electricity"][0] == pytest.approx(11500.0 / share)


async def test_bills_do_not_make_a_profile_when_they_cover_too_few_days(duck_url):
    store = open_store(duck_url)
    await store.open()
    try:
        await store.write(Batch(bills=LAST_YEAR[:9]))  # January to September: 273 days < 300
        start = midnight_of(date(2025, 1, 1))
        assert await type_profiles(store, start, start + 365 * DAY, 300) == {}
        assert set(await type_profiles(store, start, start + 365 * DAY, 270)) == {("office", "electricity"),
                                                                                    ("office", "energy")}
    finally:
        await store.close()


async def test_bills_imported_while_analytics_runs_reach_its_next_evaluation(duck_url):
    """The own price and the standard are kept between evaluations: a bills import must be seen by the next one
    (it kept the flat-day price until a restart; found in review)."""
    tariffs, _ = load_tariffs(TARIFFS, DEFAULT_CITIES, INSTITUTION_TYPES)
    registry = Registry({A.id: A}, {}, {}, QUOTAS, tariffs, {})
    at = midnight_of(date(2026, 3, 15))
    clear_caches()
    store = open_store(duck_url)
    await store.open()
    try:
        before = await execution(store, registry, at, profile_min_days=300)
        await store.write(Batch(bills=LAST_YEAR))  # `meterwatch import` while `analyze` keeps running
        after = await execution(store, registry, at, profile_min_days=300)
    finally:
        await store.close()
    assert before.standard.constraint["electricity"][0] != pytest.approx(100000 * 0.5)  # no bills yet: flat day
    assert after.standard.constraint["electricity"][0] == pytest.approx(100000 * 0.5)  # the bills' 0.5 yuan/kWh
