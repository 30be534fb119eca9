"""A simulated province's year, priced and budgeted: `meterwatch budget` agrees with the store's own sums.

Three institutions, 2025 at the simulator's full density (every meter every 15 minutes).  Electricity costs
0.50 yuan/kWh until 30 June and 0.60 from 1 July; water 4.00 per m3 (no quota, so no surcharge); heat 40 per
GJ.  Each institution's cost is then computable straight from the store's sums of the consumption that the
readings close in each half-year: the check below does that, independently of the pricing code.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date

import pytest

from meterwatch.localtime import midnight_of
from meterwatch.store import ReadingPoint, open_store
from meterwatch.store.aggregate import Aggregate
from meterwatch_cli.main import main
from simulators.backfill import backfill
from simulators.province import generate_province, write_registry

pytestmark = pytest.mark.servers

TARIFFS = """\
[[electricity]]
from = 2025-01-01
price = { flat = 0.50 }

[[electricity]]
from = 2025-07-01
price = { flat = 0.60 }

[[water]]
from = 2025-01-01
price = 4.00

[[heat]]
from = 2025-01-01
basis = "gj"
price = 40.0
"""
JAN1, JUL1, NEXT = midnight_of(date(2025, 1, 1)), midnight_of(date(2025, 7, 1)), midnight_of(date(2026, 1, 1))


async def _load_and_sum(store_url: str, province) -> dict[tuple[str, str, int], float]:
    store = open_store(store_url, timeout_s=120)
    await store.open()
    try:
        await backfill(store, province, JAN1 - 86400, NEXT, seed=5)
        sums = {}
        for half, (a, b) in enumerate(((JAN1, JUL1), (JUL1, NEXT))):
            res = await store.aggregate(Aggregate(ReadingPoint, {"c": ("sum", "consumption")}, a, b,
                                                  by=("institution", "kind"), closing=True))
            for inst, kind, value in zip(res["institution"], res["kind"], res["c"], strict=True):
                sums[(inst, kind, half)] = float(value)
        return sums
    finally:
        await store.close()


def test_a_priced_year_equals_the_stores_own_sums_at_each_half_years_price(store_url, tmp_path, monkeypatch, capsys):
    province = generate_province(3, seed=8)
    write_registry(province, tmp_path / "registry")
    (tmp_path / "registry" / "tariffs.toml").write_text(TARIFFS, encoding="utf-8")
    first = province.institutions[0].id
    (tmp_path / "registry" / "budgets.csv").write_text(f"institution,year,kind,yuan\n{first},2025,total,1\n",
                                                       encoding="utf-8")
    sums = asyncio.run(_load_and_sum(store_url, province))
    monkeypatch.setenv("METERWATCH_STORE", store_url)
    monkeypatch.setenv("METERWATCH_REGISTRY", str(tmp_path / "registry"))
    assert main(["budget", "--year", "2025", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["at"] == "2025-12-31T16:00:00Z" and len(out["institutions"]) == 3
    for row in out["institutions"]:
        inst = row["institution"]
        electricity = sums.get((inst, "electricity", 0), 0) * 0.50 + sums.get((inst, "electricity", 1), 0) * 0.60
        water = (sums.get((inst, "water", 0), 0) + sums.get((inst, "water", 1), 0)) * 4.00
        heat = (sums.get((inst, "heat", 0), 0) + sums.get((inst, "heat", 1), 0)) * 40.0
        assert row["cost_yuan"]["electricity"] == pytest.approx(electricity, rel=1e-6)
        assert row["cost_yuan"]["water"] == pytest.approx(water, rel=1e-6)
        assert row["cost_yuan"]["heat"] == pytest.approx(heat, rel=1e-6)
        assert row["cost_yuan"]["total"] == pytest.approx(electricity + water + heat, rel=1e-6)
        assert electricity > 0 and water > 0
        if row["budget_yuan"] is not None:  # at the year's end the projection is what was spent
            assert row["projected_yuan"] == pytest.approx(row["cost_yuan"]["total"], rel=1e-6)
        monthly = sum(m["electricity"] for m in row["monthly_yuan"])
        assert monthly == pytest.approx(electricity, rel=1e-6)
    (a,) = [r for r in out["institutions"] if r["institution"] == first]
    assert (a["budget_yuan"], a["budget_source"], a["status"]) == (1.0, "finance", "over")
    assert out["groups"]["province"]["province"]["cost_yuan"] == pytest.approx(
        sum(r["cost_yuan"]["total"] for r in out["institutions"]), rel=1e-6)
