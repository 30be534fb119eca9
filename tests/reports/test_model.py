"""The report's figures against the store's own aggregates and against figures worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from meterwatch.store import ReadingPoint
from meterwatch.store.aggregate import Aggregate
from reports.model import build
from reports.period import parse_period, windows
from reports.scope import parse_scope
from meterwatch.const import DEFAULT_CITIES
from tests.reports.conftest import local, registry

NOV_5 = local(2026, 11, 5, 18)


async def report_of(store, period: str, scope: str = "province", at: int = NOV_5):
    reg = registry()
    return await build(store, reg, parse_scope(scope, reg, DEFAULT_CITIES), windows(parse_period(period), at),
                       yoy_threshold=0.3, target_share=0.35, profile_min_days=300, generated_at=at)


async def test_figures_equal_the_stores_aggregates_and_the_hand_sums(province_store):
    report = await report_of(province_store, "2026-10")
    start, end = local(2026, 10, 1), local(2026, 11, 1)
    res = await province_store.aggregate(Aggregate(ReadingPoint, {"c": ("sum", "consumption")}, start, end,
                                                   by=("institution", "kind")))
    store = {(i, k): c for i, k, c in zip(res["institution"], res["kind"], res["c"], strict=True)}
    rows = {r["institution"]: r for r in report["institutions"]}
    for inst in ("inst-a", "inst-b", "inst-c"):
        assert rows[inst]["electricity_kwh"] == pytest.approx(store.get((inst, "electricity"), 0.0))
        assert rows[inst]["water_m3"] == pytest.approx(store.get((inst, "water"), 0.0))
    assert rows["inst-a"]["heat_gj"] == pytest.approx(store[("inst-a", "heat")])
    assert rows["inst-b"]["heat_gj"] == pytest.approx(store[("inst-b", "heat")] * 0.0036)  # kWh heat meter in GJ
    # by hand: 31 days x 100 kWh and the last second's 7 kWh (1 November's midnight reading is November's)
    assert rows["inst-a"]["electricity_kwh"] == 3107.0
    assert rows["inst-a"]["water_m3"] == 280.0  # 28 days with a reading x 10 m3
    assert rows["inst-b"]["heat_gj"] == pytest.approx(31 * 12.96)
    assert rows["inst-c"]["water_m3"] == 80.0  # 1-20 October x 4 m3, silent after
    totals = report["totals"]
    assert totals["electricity_kwh"] == 3107.0 + 31 * 50.0
    assert totals["heat_gj"] == pytest.approx(31 * 2.0 + 31 * 12.96)
    assert totals["energy_kgce"] == pytest.approx(4657.0 * 0.1229 + (62.0 + 31 * 12.96) * 34.12, rel=1e-6)
    assert totals["cost_yuan"] == 31 * 60.0 and totals["kgco2e"] == 31 * 50.0
    assert totals["garbage_kg"]["recyclable"] == 30.0 and totals["garbage_kg"]["unknown"] == 5.0
    # comparisons: last year 80 kWh a day in October 2025, September 2026 100 a day over 30 days
    assert report["totals_last_year"]["electricity_kwh"] == 31 * 80.0 + 31 * 50.0
    assert report["totals_previous"]["electricity_kwh"] == 30 * 100.0 + 30 * 50.0
    assert report["period"] == "2026-10" and report["scope"] == "province" and report["ended"] is True


@pytest.mark.parametrize("store_url", ["duckdb"], indirect=True)
async def test_sections_by_hand(province_store):
    report = await report_of(province_store, "2026-10")
    a = next(r for r in report["institutions"] if r["institution"] == "inst-a")
    a_kgce = 3107 * 0.1229 + 62 * 34.12
    assert a["energy_kgce"] == pytest.approx(a_kgce, rel=1e-6)
    assert a["energy_kgce_per_m2"] == pytest.approx(a_kgce / 1000, rel=1e-4)
    assert a["energy_yoy"] == pytest.approx(a_kgce / (31 * 80 * 0.1229 + 62 * 34.12) - 1, abs=1e-4)
    ranked = [r for r in report["comparisons"]["best"] if r["energy_kgce_per_m2"] is not None]
    for city in {r["city"] for r in ranked}:  # within each city: 1 = the lowest energy per m2, whatever the type
        rows = sorted((r for r in ranked if r["city"] == city), key=lambda r: r["energy_kgce_per_m2"])
        assert [r["rank_city"] for r in rows] == list(range(1, len(rows) + 1))
    by_city = {r["group"]: r for r in report["structure"]["by_city"]}
    assert by_city["guyuan"]["energy_kgce"] == 0.0 and by_city["yinchuan"]["share"] == 1.0
    kinds = {r["kind"]: r["share"] for r in report["structure"]["by_kind"]}
    assert kinds["electricity"] + kinds["heat"] == pytest.approx(1.0, abs=1e-4)
    # alerts: L1 opened in September and resolved after 120 h in October, L2 opened and resolved after 24 h,
    # S1 opened on 21 October and still open; S2 opened in November is not October's
    alerts = {r["rule"]: r for r in report["alerts"]}
    assert alerts["leak"] == {"rule": "leak", "opened": 1, "resolved": 2, "mean_hours_to_resolve": 72.0,
                              "open_at_end": 0}
    assert alerts["silent"] == {"rule": "silent", "opened": 1, "resolved": 0, "mean_hours_to_resolve": None,
                                "open_at_end": 1}
    # quality: the verification list, one row per item with its figure and why
    quality = {(r["check"], r["device"] or r["institution"]): r for r in report["quality"]}
    assert quality[("missing_days", "a-w")]["figure"] == 3
    assert "31 天中 28 天有读数，覆盖 90%" in quality[("missing_days", "a-w")]["why"]
    assert quality[("silent", "c-w")]["figure"] == 11  # 21-31 October
    assert ("missing_days", "c-w") not in quality  # one row per meter: its silence says what it covered
    assert quality[("jump", "a-e")]["figure"] == 1
    assert "登记人数 0、面积 0 m²" in quality[("registry", "inst-c")]["why"]
    assert quality[("yoy", "inst-c")]["figure"] == pytest.approx(80 / 31 - 1, abs=1e-4)  # water 80 against 31 m3
    assert ("yoy", "inst-b") not in quality  # the same as last year
    # quota standing of inst-a as of 1 November: year to date 25 Aug - 31 Oct, 304 days of a flat year behind
    ytd = 7 * 100.0 + 30 * 100 + 3107
    st = next(r for r in report["standing"] if r["institution"] == "inst-a" and r["indicator"] == "electricity")
    assert st["year_to_date"] == ytd and st["projected"] == pytest.approx(ytd * 365 / 304, abs=1e-3)
    assert st["status"] == "guide" and st["constraint"] == 20000.0
    assert any("without a quota for water" in n for n in report["notes"])
    # garbage: 30 of 105 kg recyclable, below a 35% target; the unknown card on its scale
    g = report["garbage"]
    assert g["recyclable_share"] == pytest.approx(30 / 105, abs=1e-4)
    assert g["institutions"][0]["below_target"] is True
    assert g["unknown_cards"] == [{"institution": "inst-a", "scale": "a-s", "kg": 5.0, "weighings": 1}]


@pytest.mark.parametrize("store_url", ["duckdb"], indirect=True)
async def test_institution_scope_has_garbage_by_zone_owner_and_cleaner(province_store):
    report = await report_of(province_store, "2026-10", "institution:inst-a")
    assert [r["institution"] for r in report["institutions"]] == ["inst-a"]
    zones = {r["zone"]: r for r in report["garbage"]["by_zone"]}
    assert zones["教学楼"]["kg"] == 50.0 and zones["教学楼"]["recyclable_share"] == 0.6
    cleaners = {r["cleaner"]: r["kg"] for r in report["garbage"]["by_cleaner"]}
    assert cleaners == {"保洁员甲": 50.0, "保洁员乙": 50.0, "unknown": 5.0}


@pytest.mark.parametrize("store_url", ["duckdb"], indirect=True)
async def test_a_period_not_ended_covers_up_to_at_and_compares_like_with_like(province_store):
    at = local(2026, 11, 3)  # 1 and 2 November
    report = await report_of(province_store, "2026-11", at=at)
    assert report["ended"] is False and report["end"] == "2026-11-02T16:00:00Z"
    assert any("period not ended" in n for n in report["notes"])
    a = next(r for r in report["institutions"] if r["institution"] == "inst-a")
    assert a["electricity_kwh"] == 1000.0 + 2 * 100.0
    assert report["previous"]["end"] == "2026-10-02T16:00:00Z"  # October cut to two days as well
    assert report["totals_previous"]["electricity_kwh"] == 2 * 100.0 + 2 * 50.0


@pytest.mark.parametrize("store_url", ["duckdb"], indirect=True)
async def test_year_boundary_quarter_and_year(province_store):
    from meterwatch.store import Batch

    a_e = registry().devices["a-e"]
    from tests.reports.conftest import _reading
    await province_store.write(Batch(readings=[_reading(a_e, local(2025, 12, 31, 23, 59, 59), 11.0),
                                               _reading(a_e, local(2026, 1, 1), 13.0)]))
    q1 = await report_of(province_store, "2026-Q1")
    assert q1["previous"]["period"] == "2025-Q4" and q1["last_year"]["period"] == "2025-Q1"
    assert q1["totals"]["electricity_kwh"] == 13.0 and q1["totals_previous"]["electricity_kwh"] == pytest.approx(
        11.0 + 36 * 130.0)  # October 2025 and 1-5 November at 80 + 50 kWh a day, and the last second of the year
    jan = await report_of(province_store, "2026-01")
    assert jan["previous"]["period"] == "2025-12" and jan["totals_previous"]["electricity_kwh"] == 11.0
    year = await report_of(province_store, "2025", at=NOV_5)  # 1 September - 5 November 2025: 66 days
    assert year["ended"] is True and year["totals"]["electricity_kwh"] == pytest.approx(66 * 130.0 + 11.0)
    assert year["previous"]["period"] == "2024" and year["totals_previous"]["electricity_kwh"] == 0.0


def test_periods_and_their_neighbours():
    assert parse_period("2026-Q3").bounds() == (local(2026, 7, 1), local(2026, 10, 1))
    assert parse_period("2026").previous().label == "2025"
    assert parse_period("2026-01").previous().label == "2025-12"
    for bad in ("2026-13", "2026-Q5", "26-10", "october"):
        with pytest.raises(ValueError, match="expected a month 2026-10"):
            parse_period(bad)
    with pytest.raises(ValueError, match="in the future"):
        windows(parse_period("2026-12"), NOV_5)
    assert np.isclose(windows(parse_period("2026-11"), NOV_5).days, 4.75)


@pytest.mark.parametrize("store_url", ["duckdb"], indirect=True)
async def test_budget_standing_from_the_cost_measurement(province_store):
    from meterwatch.const import INSTITUTION_TYPES
    from meterwatch.registry import Registry
    from meterwatch.registry.tariffs import load_tariffs
    from tests.analytics.test_costs import TARIFFS

    tariffs, _ = load_tariffs(TARIFFS, DEFAULT_CITIES, INSTITUTION_TYPES)
    base = registry()
    reg = Registry(base.institutions, base.devices, base.cards, base.quotas, tariffs, {("inst-a", 2026, "total"): 2000.0})
    report = await build(province_store, reg, parse_scope("institution:inst-a", reg, DEFAULT_CITIES),
                         windows(parse_period("2026-10"), NOV_5), yoy_threshold=0.3, target_share=0.35,
                         profile_min_days=300)
    (budget,) = [r for r in report["standing"] if r["indicator"] == "budget"]
    # 31 days x 60 yuan in October, nothing before: 1,860 yuan; 304 days of a flat year behind on 1 November
    assert budget["year_to_date"] == 1860.0 and budget["constraint"] == 2000.0 and budget["unit"] == "yuan"
    assert budget["projected"] == pytest.approx(1860 * 365 / 304, abs=1e-3)
    assert budget["status"] == "over" and budget["crossing"] is not None
    assert report["standing"][0] is budget  # over first


async def test_bills_stand_in_where_last_year_has_no_meter(province_store):
    """A new deployment's last year from bills: inst-c had no electricity meter in October 2025 (its bill's
    300 kWh count), inst-b's heat was metered (the meters win for the quantity, but nothing was priced, so the
    bill's yuan is the cost)."""
    from meterwatch.store import Batch, BillPoint

    oct_2025 = local(2025, 10, 1)
    await province_store.write(Batch(bills=[
        BillPoint("inst-c", "guyuan", "medical", "electricity", oct_2025, 300.0, 180.0, "bills.csv"),
        BillPoint("inst-b", "yinchuan", "office", "heat", oct_2025, 500.0, 20000.0, "bills.csv")]))
    report = await report_of(province_store, "2026-10")
    last = report["totals_last_year"]
    assert last["electricity_kwh"] == 31 * 80.0 + 31 * 50.0 + 300.0
    assert last["heat_gj"] == pytest.approx(31 * 2.0 + 31 * 12.96)  # inst-b's 500 GJ bill not added to its meter
    assert last["cost_yuan"] == 180.0 + 20000.0
    c = next(r for r in report["institutions"] if r["institution"] == "inst-c")
    assert c["energy_kgce_last_year"] == pytest.approx(300 * 0.1229)
    assert "last year: 1 institution-months of a kind from utility bills (no meter readings in them)" in report["notes"]
    assert report["totals"]["cost_yuan"] == 31 * 60.0  # this period: no bill, the priced meters only
