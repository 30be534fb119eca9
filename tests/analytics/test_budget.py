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
    assert ex.kgco2e["total"][a] == 6.0 and ex.kgco2e["electricity"][a] == 4.0
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


def _registry_dir(path, tariffs: bool = True):
    path.mkdir()
    (path / "institutions.csv").write_text("id,name,city,type,subclass,floor_area_m2,occupants\n"
                                           "inst-a,甲单位,yinchuan,office,,1000,50\n", encoding="utf-8")
    (path / "devices.csv").write_text("id,institution,kind,unit,multiplier,address\n"
                                      "e1,inst-a,electricity,kWh,1,\n", encoding="utf-8")
    (path / "budgets.csv").write_text("institution,year,kind,yuan\ninst-a,2026,total,500\n", encoding="utf-8")
    if tariffs:
        (path / "tariffs.toml").write_text(TARIFFS, encoding="utf-8")
    return path


def test_budget_command_prints_the_contract_json(tmp_path, monkeypatch, capsys):
    """`meterwatch budget --json`: cost from 1 January to --at, the budget, the projection and the status."""
    import asyncio
    import json

    from meterwatch.store import ReadingPoint
    from meterwatch_cli.main import main

    store_url = f"duckdb://{tmp_path / 'mw.duckdb'}"
    day0 = midnight_of(date(2026, 3, 2))
    readings = [ReadingPoint("e1", "inst-a", "yinchuan", "office", "electricity", day0 + 3600 * k, 0.0, 10.0, 3600)
                for k in range(1, 25)]  # 240 kWh on 2 March: sharp 20, peak 70, flat 70, valley 80

    async def load() -> None:
        store = open_store(store_url)
        await store.open()
        await store.write(Batch(readings=readings))
        await store.close()

    asyncio.run(load())
    monkeypatch.setenv("METERWATCH_STORE", store_url)
    monkeypatch.setenv("METERWATCH_REGISTRY", str(_registry_dir(tmp_path / "registry")))
    assert main(["budget", "--year", "2026", "--at", "2026-03-10T00:00:00+08:00", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (a,) = out["institutions"]
    expected = 20 * 1.10 + 70 * 0.95 + 70 * 0.62 + 80 * 0.30
    assert (out["year"], out["at"], a["institution"]) == (2026, "2026-03-09T16:00:00Z", "inst-a")
    assert a["cost_yuan"] == {"electricity": pytest.approx(expected), "water": 0.0, "heat": 0.0,
                              "total": pytest.approx(expected)}
    assert a["budget_yuan"] == 500.0 and a["budget_source"] == "finance"
    assert a["projected_yuan"] == pytest.approx(expected * 365 / 68, rel=1e-4)  # 68 days behind on 10 March
    assert a["status"] == "over" and a["crossing"] is not None


@pytest.mark.parametrize(("argv", "message"), [
    (["--year", "2026", "--at", "2030-01-01T00:00:00+08:00"], "is not in 2026"),
    (["--year", "2099"], "in the future"),
    (["--year", "2026", "--institution", "nobody"], "unknown institution 'nobody'"),
])
def test_budget_command_refuses_bad_input_with_a_message(tmp_path, monkeypatch, capsys, argv, message):
    from meterwatch_cli.main import main

    monkeypatch.setenv("METERWATCH_STORE", f"duckdb://{tmp_path / 'mw.duckdb'}")
    monkeypatch.setenv("METERWATCH_REGISTRY", str(_registry_dir(tmp_path / "registry")))
    assert main(["budget", *argv]) == 2
    assert message in capsys.readouterr().err


def test_budget_without_tariffs_says_so(tmp_path, monkeypatch, capsys):
    from meterwatch_cli.main import main

    monkeypatch.setenv("METERWATCH_STORE", f"duckdb://{tmp_path / 'mw.duckdb'}")
    monkeypatch.setenv("METERWATCH_REGISTRY", str(_registry_dir(tmp_path / "registry", tariffs=False)))
    assert main(["budget", "--year", "2026"]) == 1
    assert "tariffs.toml is missing" in capsys.readouterr().err


async def test_the_settled_days_sums_kept_between_evaluations_give_the_same_figures(store_url):
    """An evaluation process keeps the sums of days no longer re-priced: later, earlier and fresh runs agree."""
    from analytics.budget import clear_caches

    tariffs, _ = load_tariffs(TARIFFS, DEFAULT_CITIES, INSTITUTION_TYPES)
    registry = Registry({"inst-a": A}, {}, {}, QUOTAS, tariffs, {("inst-a", 2026, "total"): 100000.0})
    store = open_store(store_url)
    await store.open()
    try:
        await store.write(Batch(costs=[cost(A, "electricity", date(2026, 2, 1), 31000.0)]))
        first = await execution(store, registry, midnight_of(date(2026, 4, 1)), profile_min_days=300, monthly=False)
        await store.write(Batch(costs=[cost(A, "water", date(2026, 4, 5), 1000.0)]))
        later = await execution(store, registry, midnight_of(date(2026, 4, 10)), profile_min_days=300, monthly=False)
        clear_caches()
        fresh = await execution(store, registry, midnight_of(date(2026, 4, 10)), profile_min_days=300, monthly=False)
        earlier = await execution(store, registry, midnight_of(date(2026, 4, 1)), profile_min_days=300, monthly=False)
    finally:
        await store.close()
    assert first.cost["total"][0] == 31000.0 and earlier.cost["total"][0] == 31000.0
    assert later.cost["total"][0] == fresh.cost["total"][0] == 32000.0
    assert later.projected["total"][0] == pytest.approx(fresh.projected["total"][0])


def test_crossings_of_a_whole_province_at_once_are_those_of_each_institution_alone():
    """The vectorised crossing (blocks of institutions, each along its own mix of kinds and its type's
    profiles) gives what ``crossing_day`` gives one institution at a time, as the budget step did before."""
    from analytics.budget import KINDS, _crossings, _normalised
    from analytics.quota import FLAT, crossing_day

    rng = np.random.default_rng(3)
    n, day = 50, 120
    insts = [Institution(f"i{k}", "x", "yinchuan", ("office", "education", "medical")[k % 3], "", 1.0, 1)
             for k in range(n)]
    winter = np.where((np.arange(365) < 90) | (np.arange(365) > 300), 3.0, 1.0)
    profiles = {("office", "electricity"): winter, ("education", "water"): winter[::-1].copy(),
                ("medical", "heat"): np.zeros(365)}  # a profile summing to 0: flat
    budget = {k: np.where(rng.random(n) < 0.3, np.nan, rng.uniform(1e4, 1e5, n)) for k in KINDS}
    budget["total"] = np.nansum(np.vstack([budget[k] for k in KINDS]), axis=0)
    cost = budget["total"] * rng.uniform(0.1, 0.5, n)
    projected = cost * rng.uniform(2.0, 4.0, n)
    has = budget["total"] > 0
    got = _crossings(insts, budget, cost, projected, profiles, day, has)
    for k, inst in enumerate(insts):
        if not has[k]:
            assert got[k] == -1
            continue
        path = sum(np.nan_to_num(budget[kind][k]) * _normalised(profiles.get((inst.type, kind), FLAT))
                   for kind in KINDS)
        alone = crossing_day(cost[k:k + 1], projected[k:k + 1], budget["total"][k:k + 1],
                             path if np.sum(path) > 0 else FLAT, day)[0]
        assert got[k] == alone, k
    assert len(set(got[has].tolist())) > 5  # a spread of dates, not one answer for all


async def test_the_standard_kept_between_evaluations_follows_a_change_of_quotas(store_url):
    tariffs, _ = load_tariffs(TARIFFS, DEFAULT_CITIES, INSTITUTION_TYPES)
    at = midnight_of(date(2026, 4, 1))
    store = open_store(store_url)
    await store.open()
    try:
        first = await execution(store, Registry({"inst-a": A}, {}, {}, QUOTAS, tariffs), at, profile_min_days=300)
        half = {"institution": {"inst-a": {"water": {"per": "institution", "constraint": 600.0, "guide": 500.0}}}}
        second = await execution(store, Registry({"inst-a": A}, {}, {}, half, tariffs), at + 900, profile_min_days=300)
    finally:
        await store.close()
    assert first.standard.constraint["water"][0] == pytest.approx(1200 * 4.40)
    assert second.standard.constraint["water"][0] == pytest.approx(600 * 4.40)  # the new quotas, not the kept ones
    assert np.isnan(second.standard.constraint["electricity"][0])  # no electricity quota any more
