"""The report's figures equal what the province dashboard's query returns for the same month, on influxd."""

from __future__ import annotations

from collections import defaultdict

import pytest

from dashboards.boards import province
from dashboards.rollups import apply
from dashboards.validate import CustomAll, expand
from meterwatch.const import DEFAULT_CITIES
from tests.reports.conftest import local
from tests.reports.test_model import report_of


@pytest.mark.parametrize("store_url", ["influxdb"], indirect=True)
async def test_report_by_city_equals_the_province_dashboards_table(province_store):
    start, end = local(2026, 10, 1), local(2026, 11, 1)
    await apply(province_store, start - 86400, end + 86400)  # the daily rollups the dashboards read
    board = province.board(DEFAULT_CITIES, {})
    panel = next(p for row in board.rows for p in row if p.title.startswith("本年各市分类用量"))
    query = expand(panel.queries[0], {"city": CustomAll(".*"), "type": CustomAll(".*")}, start, end - 1, 86400)
    used: dict[tuple[str, str], float] = defaultdict(float)
    for series in await province_store.query(query):
        for row in series["values"]:
            used[(series["tags"]["city"], series["tags"]["kind"])] += row[1]
    report = await report_of(province_store, "2026-10")
    by_city = {r["group"]: r for r in report["structure"]["by_city"]}
    assert used[("yinchuan", "electricity")] == pytest.approx(by_city["yinchuan"]["electricity_kwh"]) == 3107 + 31 * 50
    assert used[("yinchuan", "water")] == pytest.approx(by_city["yinchuan"]["water_m3"]) == 280.0
    assert used[("guyuan", "water")] == pytest.approx(by_city["guyuan"]["water_m3"]) == 80.0
